#!/usr/bin/python3
"""`make bench`: measures ingest and the whole pipeline against floors measured in the same run
on the same machine, and prints one markdown table (also written to build/bench/results.md,
with the raw figures in build/bench/results.json).

Floors: nginx answering `return 200`, redis-benchmark XADD with the append-only file fsynced
every second, and PostgreSQL upserting rows shaped like ours with fsync on (bench/pgfloor.c).
Everything runs on 127.0.0.1 on free ports in a temporary folder; every server started here
is stopped by its PID at the end, also on an error or Ctrl-C.

Settings (environment): BENCH_SECONDS (10), BENCH_RUNS (3), BENCH_QUICK=1 (3 s and one run),
BENCH_E2E (20000), BENCH_CONNECTIONS (64), BENCH_THREADS (2), BENCH_WORKERS (2),
BENCH_WORKER_BATCH (the shipped WORKER_BATCH), BENCH_E2E_TIMEOUT (300 s), BENCH_KEEP=1 (keep the
temporary folder with every log), BENCH_ONLY=nginx,redis,ingest,callgrind,redrive,memory,postgres,
e2e,cluster,soak (a subset; soak runs only when named), BENCH_INGEST (the ingest binary,
bin/switchboard-ingest: to measure another build).

The cluster step runs the end-to-end load again against a Redis Cluster of 3 masters (no
replicas) with SWITCHBOARD_SHARDS=6, its nodes started by tests/integration/rcluster.py with
the same persistence as the one Redis; it is skipped, with the reason logged, when redis-cli
has no --cluster.
"""

import glob
import http.client
import json
import math
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from netutil import PgCluster, free_port, pg_bindir, wait_until  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(ROOT, "bin")
INGEST_BIN = os.environ.get("BENCH_INGEST") or os.path.join(BIN, "switchboard-ingest")
OUT = os.path.join(ROOT, "build", "bench")
PGFLOOR = os.path.join(OUT, "pgfloor")
SECRET = "bench-secret-0123456789abcdef"
STREAM = "switchboard:webhooks"
DEAD = "switchboard:webhooks:dead"
GROUP = "workers"
WEBHOOK = "/api/vapi/webhook"


def env_num(name, default):
    """An integer setting from the environment."""
    v = os.environ.get(name, "")
    if v == "":
        return default
    try:
        return int(float(v))
    except ValueError:
        sys.exit("bench: %s=%r is not a number" % (name, v))


QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
SECONDS = max(1, env_num("BENCH_SECONDS", 3 if QUICK else 10))
RUNS = max(1, env_num("BENCH_RUNS", 1 if QUICK else 3))
E2E = max(1, env_num("BENCH_E2E", 20000))
CONNS = env_num("BENCH_CONNECTIONS", 64)
THREADS = env_num("BENCH_THREADS", 2)
WORKERS = env_num("BENCH_WORKERS", 2)
# 0: the workers run with their shipped WORKER_BATCH, as a user runs them.
WORKER_BATCH = env_num("BENCH_WORKER_BATCH", 0)
BATCH_LABEL = str(WORKER_BATCH) if WORKER_BATCH else "default"
E2E_TIMEOUT = env_num("BENCH_E2E_TIMEOUT", 300)
SOAK_SECONDS = max(60, env_num("BENCH_SOAK_SECONDS", 600))
SOAK_CALLS = 5000  # distinct call ids per wrk thread in the soak, cycled
# Each soak connection pauses this long before each post: 64 connections then send at most
# about 5,000 reports/s, under what 2 workers file here, so Redis holds a steady backlog.
SOAK_PAUSE_MS = env_num("BENCH_SOAK_PAUSE_MS", 12)
KEEP = os.environ.get("BENCH_KEEP", "") not in ("", "0")
ONLY = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
PG_SECONDS = max(2, SECONDS // 2)  # each PostgreSQL variant, per run

# Filled as the run goes; rendered into the table at the end.
R = {}


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def want(step):
    """Steps of the default run, or those BENCH_ONLY names. The soak runs only when named."""
    return (not ONLY and step != "soak") or step in ONLY


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# Prerequisites

def which(tool):
    return shutil.which(tool) or next(
        (p for p in ("/usr/sbin/" + tool, "/sbin/" + tool) if os.access(p, os.X_OK)), None)


def preflight():
    """Exits with the list of what is missing (and the Debian package to install)."""
    missing = []
    for tool, pkg in (("nginx", "nginx"), ("wrk", "wrk"), ("redis-server", "redis-server"),
                      ("redis-benchmark", "redis-tools"), ("valgrind", "valgrind")):
        if which(tool) is None and (tool != "valgrind" or want("callgrind")):
            missing.append((tool, pkg))
    if pg_bindir() is None:
        missing.append(("PostgreSQL server binaries (initdb, pg_ctl)", "postgresql"))
    for mod, pkg in (("psycopg2", "python3-psycopg2"), ("redis", "python3-redis")):
        try:
            __import__(mod)
        except ImportError:
            missing.append(("python module " + mod, pkg))
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            missing.append(("user postgres (initdb refuses root)", "postgresql"))
        if which("runuser") is None:
            missing.append(("runuser", "util-linux"))
    for f in (INGEST_BIN, os.path.join(BIN, "switchboard-worker"), PGFLOOR):
        if not os.access(f, os.X_OK):
            missing.append((f, "make"))
    if missing:
        log("cannot run, missing:")
        for what, pkg in missing:
            print("  %s  (%s)" % (what, pkg if pkg == "make" else "apt-get install " + pkg),
                  file=sys.stderr)
        pkgs = sorted({p for _, p in missing if p != "make"})
        if pkgs:
            print("  as root: apt-get install -y %s" % " ".join(pkgs), file=sys.stderr)
        sys.exit(2)


# ---------------------------------------------------------------------------------------------
# Processes: each one in its own session (Ctrl-C reaches only this script), stopped by PID.

class Proc:
    def __init__(self, name, argv, logdir, env=None):
        self.name = name
        self.log_path = os.path.join(logdir, name + ".log")
        self.log = open(self.log_path, "ab")
        self.p = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, cwd=ROOT, start_new_session=True)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.p.poll() is None:
            try:
                os.kill(self.pid, sig)
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.p.wait()
            except ProcessLookupError:
                pass
        self.log.close()
        return self.p.returncode

    def tail(self, n=20):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""


class Cleanup:
    """What to stop at the end, newest first."""

    def __init__(self):
        self.items = []

    def add(self, name, fn):
        self.items.append((name, fn))

    def remove(self, name):
        self.items = [(n, f) for n, f in self.items if n != name]

    def run(self):
        while self.items:
            name, fn = self.items.pop()
            try:
                fn()
            except Exception as e:  # keep stopping the others
                log("stopping %s: %s" % (name, e))


CLEANUP = Cleanup()


def start(name, argv, logdir, env=None):
    p = Proc(name, argv, logdir, env)
    CLEANUP.add(name, p.stop)
    return p


def stop(p, sig=signal.SIGTERM):
    CLEANUP.remove(p.name)
    return p.stop(sig)


def vm_status_kib(pid, field):
    """A size from /proc/PID/status (VmHWM: peak resident set, VmRSS: now), in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def vm_hwm_kib(pid):
    return vm_status_kib(pid, "VmHWM")


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid):
    """(parent pid, [utime, stime, cutime, cstime]) of a process, in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[1]), [int(x) for x in rest[11:15]]


def cpu_seconds(roots):
    """CPU seconds used so far by each named process tree ({name: root pid}, or {name: [root
    pids]} for several trees summed under one name). A root's own count includes its children
    that have already exited (cutime, cstime)."""
    stats, kids = {}, {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stats[int(d)] = _proc_stat(int(d))
            except (OSError, ValueError, IndexError):
                pass
    for pid, (ppid, _) in stats.items():
        kids.setdefault(ppid, []).append(pid)
    out = {}
    for name, root in roots.items():
        live = [r for r in (root if isinstance(root, (list, tuple)) else [root]) if r in stats]
        if not live:
            continue
        total, todo = sum(sum(stats[r][1]) for r in live), [k for r in live
                                                             for k in kids.get(r, [])]
        while todo:
            p = todo.pop()
            total += sum(stats[p][1][:2])
            todo.extend(kids.get(p, []))
        out[name] = total / float(CLK_TCK)
    return out


def machine_busy():
    """(busy, steal) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq) / float(CLK_TCK), steal / float(CLK_TCK)


class CpuMeter:
    """Cores kept busy, per process tree, between start and stop(); the client (a command
    run to completion meanwhile, e.g. wrk) is counted from this script's reaped children."""

    def __init__(self, roots):
        self.roots = roots
        self.t0 = time.monotonic()
        self.c0 = cpu_seconds(roots)
        self.r0 = self._children()
        self.m0 = machine_busy()

    @staticmethod
    def _children():
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    def stop(self, client=None, wall=None):
        wall = wall or (time.monotonic() - self.t0)
        c1 = cpu_seconds(self.roots)
        out = {n: (c1[n] - self.c0.get(n, 0.0)) / wall for n in c1}
        if client:
            out[client] = (self._children() - self.r0) / wall
        return self.add_other(out, wall)

    def add_other(self, out, wall, m1=None):
        """Adds what the rest of the machine used meanwhile ("other": not measured here,
        e.g. another job on the host; "steal": taken by the hypervisor)."""
        busy, steal = m1 or machine_busy()
        out["other"] = max(0.0, (busy - self.m0[0]) / wall - sum(out.values()))
        out["steal"] = (steal - self.m0[1]) / wall
        return out


def fmt_cpu(cpu):
    if not cpu:
        return ""
    return ", ".join("%s %.2f" % (n, v) for n, v in
                     sorted(cpu.items(), key=lambda kv: -kv[1]) if v >= 0.005)


# ---------------------------------------------------------------------------------------------
# Load generators

def run_wrk(url, script, args, seconds, roots, latency=True, proc_timeout=None):
    meter = CpuMeter(roots)
    argv = [which("wrk"), "-t", str(THREADS), "-c", str(CONNS), "-d", "%ds" % seconds,
            "--timeout", "5s"] + (["--latency"] if latency else []) + \
        ["-s", os.path.join(ROOT, "bench", script), url, "--"] + [str(a) for a in args]
    r = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT,
                       timeout=proc_timeout or seconds + 60)
    res = parse_wrk(r)
    res["cpu"] = meter.stop("wrk")
    return res


def parse_wrk(r):
    m = re.search(r"^BENCH-RESULT (\{.*\})$", r.stdout, re.M)
    if r.returncode != 0 or not m:
        raise RuntimeError("wrk failed (exit %s): %s %s" % (r.returncode, r.stdout[-800:],
                                                            r.stderr[-800:]))
    d = json.loads(m.group(1))
    secs = d["duration_us"] / 1e6
    return {"rps": d["requests"] / secs, "p50_ms": d["p50_us"] / 1000.0,
            "p99_ms": d["p99_us"] / 1000.0, "max_ms": d["max_us"] / 1000.0,
            "requests": d["requests"], "seconds": secs,
            "errors": d["connect"] + d["read"] + d["write"] + d["timeout"],
            "non2xx": d["status"]}


def median_runs(label, fn):
    """Runs fn RUNS times; returns the medians of rps and p99 and every run."""
    runs = []
    for i in range(RUNS):
        res = fn()
        runs.append(res)
        log("%s run %d/%d: %s req/s, p99 %.2f ms%s" % (
            label, i + 1, RUNS, fmt_int(res["rps"]), res["p99_ms"],
            "" if not (res["errors"] or res["non2xx"]) else
            ", %d socket errors, %d non-2xx answers" % (res["errors"], res["non2xx"])))
    mid = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
    return {"rps": statistics.median(r["rps"] for r in runs), "cpu": mid.get("cpu"),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "errors": sum(r["errors"] for r in runs),
            "non2xx": sum(r["non2xx"] for r in runs), "runs": runs}


# ---------------------------------------------------------------------------------------------
# nginx

def nginx_floor(tmp, bodies):
    d = os.path.join(tmp, "nginx")
    os.makedirs(d)
    port = free_port()
    with open(os.path.join(ROOT, "bench", "nginx.conf.in")) as f:
        conf = f.read().replace("@DIR@", d).replace("@PORT@", str(port))
    conf_path = os.path.join(d, "nginx.conf")
    with open(conf_path, "w") as f:
        f.write(conf)
    p = start("nginx", [which("nginx"), "-p", d, "-e", os.path.join(d, "error.log"),
                        "-c", conf_path], d)
    try:
        wait_until(lambda: port_open(port) or not p.alive(), 10, "nginx to listen")
        if not p.alive():
            raise RuntimeError("nginx exited:\n" + p.tail())
        url = "http://127.0.0.1:%d%s" % (port, WEBHOOK)
        for key in ("small", "large"):
            R["nginx_" + key] = median_runs(
                "nginx %s" % SIZE_LABEL[key],
                lambda: run_wrk(url, "post.lua", [bodies[key], SECRET], SECONDS,
                                {"nginx": p.pid}))
    finally:
        stop(p, signal.SIGQUIT)  # graceful: the master waits for its workers


# ---------------------------------------------------------------------------------------------
# Redis

class Redis:
    def __init__(self, tmp):
        import redis as redislib
        self.dir = os.path.join(tmp, "redis")
        os.makedirs(self.dir)
        self.port = free_port()
        # deploy/redis.conf (AOF, noeviction) plus a private port and dir, with the AOF fsynced
        # every second as the floors are defined (fsync_always() switches to the shipped way).
        argv = [which("redis-server"), os.path.join(ROOT, "deploy", "redis.conf"),
                "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                "--save", "", "--daemonize", "no", "--logfile", "",
                "--appendonly", "yes", "--appendfsync", "everysec"]
        self.proc = start("redis", argv, self.dir)
        self.client = redislib.Redis(host="127.0.0.1", port=self.port, socket_timeout=30)
        wait_until(self.ping, 10, "redis-server to answer PING")

    def ping(self):
        try:
            return self.client.ping()
        except Exception:
            if not self.proc.alive():
                raise RuntimeError("redis-server exited:\n" + self.proc.tail())
            return False

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def persistence(self):
        return self.client.info("persistence")

    def reset(self):
        """Empties Redis and rewrites the append-only file, so every run starts alike."""
        idle = lambda: (lambda i: not i["aof_rewrite_in_progress"] and  # noqa: E731
                        not i["aof_rewrite_scheduled"])(self.persistence())
        wait_until(idle, 120, "an append-only file rewrite to finish")
        self.client.flushall()
        try:
            self.client.bgrewriteaof()
        except Exception as e:  # Redis may have started its own rewrite meanwhile: fine
            if "already in progress" not in str(e):
                raise
        time.sleep(0.05)
        wait_until(idle, 120, "the append-only file rewrite after FLUSHALL")


def redis_benchmark_xadd(redis, body_path, seconds):
    """XADD of the raw body by redis-benchmark for about `seconds`; returns ops/s."""
    with open(body_path, "rb") as f:
        payload = f.read().decode()

    def once(n):
        argv = [which("redis-benchmark"), "-h", "127.0.0.1", "-p", str(redis.port), "-n",
                str(n), "-c", str(CONNS), "-P", "1", "--csv", "XADD", "benchstream", "*",
                "body", payload]
        meter = CpuMeter({"redis": redis.proc.pid})
        r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds * 4 + 60)
        cpus.append(meter.stop("redis-benchmark"))
        m = re.search(r'"([\d.]+)"(?:,"[\d.]+"){6}\s*$', r.stdout)
        if r.returncode != 0 or not m:
            raise RuntimeError("redis-benchmark failed: %s %s" % (r.stdout[-300:],
                                                                   r.stderr[-300:]))
        return float(m.group(1))

    cpus = []
    redis.reset()
    pilot = once(max(200, int(40000000 / len(payload))))  # about 40 MB, to size the run
    runs = []
    for i in range(RUNS):
        redis.reset()
        n = max(1000, int(pilot * seconds))
        runs.append(once(n))
        log("redis-benchmark XADD %s run %d/%d: %s ops/s (n=%d)" % (
            fmt_bytes(len(payload)), i + 1, RUNS, fmt_int(runs[-1]), n))
    redis.reset()
    mid = sorted(range(RUNS), key=lambda i: runs[i])[RUNS // 2]
    return {"rps": statistics.median(runs), "runs": runs, "cpu": cpus[1 + mid]}


# ---------------------------------------------------------------------------------------------
# Ingest

def ingest_env(redis_url, port, spool, admin_port):
    e = dict(os.environ)
    e.update({"REDIS_URL": redis_url, "WEBHOOK_SECRET": SECRET,
              "INGEST_LISTEN": "127.0.0.1:%d" % port, "INGEST_SPOOL_DIR": spool,
              "INGEST_ADMIN_LISTEN": "127.0.0.1:%d" % admin_port, "LOG_LEVEL": "info"})
    return e


def start_ingest(tmp, redis_url, name="ingest", spool=None, **extra):
    """An ingest on a free port, once its /healthz answers 200; extra: more settings."""
    port = free_port()
    spool = spool or os.path.join(tmp, "spool")
    os.makedirs(spool, exist_ok=True)
    admin_port = free_port()
    env = ingest_env(redis_url, port, spool, admin_port)
    env.update({k: str(v) for k, v in extra.items()})
    p = start(name, [INGEST_BIN], tmp, env)
    p.port = port
    p.admin_port = admin_port

    def healthy():
        if not p.alive():
            raise RuntimeError("%s exited:\n%s" % (name, p.tail()))
        try:
            return http_req(port, "GET", "/healthz")[0] == 200
        except OSError:
            return False

    wait_until(healthy, 15, "%s /healthz" % name)
    return p


def spool_entries(port):
    """The spool gauge, from the admin listener at port."""
    text = http_req(port, "GET", "/metrics")[1].decode()
    return int(re.search(r"^switchboard_ingest_spool_entries (\d+)", text, re.M).group(1))


def spool_redrive(tmp, redis, bodies, run=0):
    """A backlog after a Redis outage: 7.9 KB reports spooled for BENCH_SECONDS / 2 by an
    ingest whose Redis is down, then re-driven by a new ingest on the same spool with Redis
    up and `appendfsync always` (deploy/redis.conf): entries per second from its start (which
    scans the spool) until the spool is empty, and its peak RSS."""
    spool = os.path.join(tmp, "spool-backlog-%d" % run)
    down = start_ingest(tmp, "redis://127.0.0.1:%d/0" % free_port(),
                        "ingest-spooling-%d" % run, spool)
    run_wrk("http://127.0.0.1:%d%s" % (down.port, WEBHOOK), "post.lua",
            [bodies["report"], SECRET], max(2, SECONDS // 2), {"ingest": down.pid})
    spooled = spool_entries(down.admin_port)
    stop(down)
    spool_bytes = os.path.getsize(os.path.join(spool, "spool.log"))
    redis.reset()
    with fsync_always(redis):
        t0 = time.monotonic()
        up = start_ingest(tmp, redis.url, "ingest-redrive-%d" % run, spool)
        meter = CpuMeter({"ingest": up.pid, "redis": redis.proc.pid})
        wait_until(lambda: spool_entries(up.admin_port) == 0, 300, "the spool to be re-driven")
        took = time.monotonic() - t0
        cpu = meter.stop()
    moved = redis.client.xlen(STREAM)
    hwm = vm_hwm_kib(up.pid)
    stop(up)
    shutil.rmtree(spool, ignore_errors=True)
    redis.reset()
    log("re-drive run %d/%d: %s spooled, %s in the stream after %.2f s" % (
        run + 1, RUNS, fmt_int(spooled), fmt_int(moved), took))
    if moved < spooled:
        raise RuntimeError("re-drive: %d spooled, only %d reached the stream" % (spooled, moved))
    return {"rps": moved / took, "entries": moved, "seconds": took, "hwm_kib": hwm,
            "spool_bytes": spool_bytes, "cpu": cpu}


def http_req(port, method, path, body=None, headers=None, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        if conn is None:
            c.close()


def callgrind_total(tmp, redis, body, n, run):
    """Instructions of the event loop of one ingest process (INGEST_THREADS=1) under
    callgrind, from its start to its exit, that accepted n webhooks of body posted one at a
    time on one connection. The loop's thread is the last one ingest starts (callgrind numbers
    the files in that order); the others (main, spool writers, re-drive, the admin listener)
    do no work per webhook here, only start-up and timer wake-ups."""
    out = os.path.join(tmp, "callgrind-%s.out" % run)
    port, admin_port = free_port(), free_port()
    spool = os.path.join(tmp, "spool-%s" % run)
    os.makedirs(spool, exist_ok=True)
    env = ingest_env(redis.url, port, spool, admin_port)
    env["INGEST_THREADS"] = "1"
    p = start("callgrind-" + run, [which("valgrind"), "--tool=callgrind",
                                   "--separate-threads=yes", "--callgrind-out-file=" + out,
                                   INGEST_BIN], tmp, env)

    def listening():
        if not p.alive():
            raise RuntimeError("ingest under callgrind exited:\n" + p.tail())
        return port_open(port)
    wait_until(listening, 120, "ingest under callgrind to listen")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"X-Vapi-Secret": SECRET, "Content-Type": "application/json"}
    for _ in range(n):
        status, _ = http_req(port, "POST", WEBHOOK, body, headers, conn)
        if status != 200:
            raise RuntimeError("callgrind run: ingest answered %d" % status)
    conn.close()
    if stop(p) != 0:
        raise RuntimeError("ingest under callgrind exited with %s:\n%s" % (
            p.p.returncode, p.tail()))
    loop = max(glob.glob(out + "-*"), key=lambda path: int(path.rsplit("-", 1)[1]))
    with open(loop) as f:
        return int(re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M).group(1))


CALLGRIND_POSTS = (100, 600)


def callgrind_counts(tmp, redis, bodies):
    """Instructions per accepted webhook, 0.8 KB and 64 KB: two processes accept n1 and n2
    webhooks; the difference of their totals over n2 - n1 leaves out start-up and exit.
    Unlike seconds, the count hardly moves on a busy machine (timer wake-ups and how the
    replies arrive still vary it a little)."""
    n1, n2 = CALLGRIND_POSTS
    for key in ("small", "large"):
        with open(bodies[key], "rb") as f:
            body = f.read()
        redis.reset()
        t1 = callgrind_total(tmp, redis, body, n1, "%s-%d" % (key, n1))
        t2 = callgrind_total(tmp, redis, body, n2, "%s-%d" % (key, n2))
        R["callgrind_" + key] = {"ir": (t2 - t1) / float(n2 - n1), "totals": [t1, t2],
                                 "posts": [n1, n2]}
        log("callgrind %s: %s instructions per webhook" % (
            SIZE_LABEL[key], fmt_int(R["callgrind_" + key]["ir"])))


def ingest_loads(ingest, redis, bodies):
    url = "http://127.0.0.1:%d%s" % (ingest.port, WEBHOOK)

    def one(key):
        redis.reset()
        return run_wrk(url, "post.lua", [bodies[key], SECRET], SECONDS,
                       {"ingest": ingest.pid, "redis": redis.proc.pid})

    for key in ("small", "report", "large"):
        R["ingest_" + key] = median_runs("ingest %s" % SIZE_LABEL[key], lambda: one(key))
    # The shipped deploy/redis.conf fsyncs before replying: what that costs ingest.
    with fsync_always(redis):
        R["ingest_report_always"] = median_runs("ingest 7.9 KB, appendfsync always",
                                                lambda: one("report"))
    redis.reset()


class fsync_always:
    """Redis with `appendfsync always` (deploy/redis.conf) inside the block, everysec (the
    floors' setting) after it."""

    def __init__(self, redis):
        self.redis = redis

    def __enter__(self):
        self.redis.client.config_set("appendfsync", "always")

    def __exit__(self, *exc):
        self.redis.client.config_set("appendfsync", "everysec")


def entry_bytes(ingest, redis, body_path, count):
    """Redis memory and append-only-file bytes per stream entry, for entries written by ingest
    and for the same entries with the body as received (no `enc`)."""
    with open(body_path, "rb") as f:
        body = f.read()
    redis.reset()
    c = http.client.HTTPConnection("127.0.0.1", ingest.port, timeout=30)
    hdr = {"Content-Type": "application/json", "X-Vapi-Secret": SECRET}
    aof0 = redis.persistence()["aof_current_size"]
    for _ in range(count):
        st, out = http_req(ingest.port, "POST", WEBHOOK, body, hdr, conn=c)
        if st != 200:
            raise RuntimeError("ingest answered %d: %r" % (st, out[:200]))
    c.close()
    cl = redis.client
    n = cl.xlen(STREAM)
    via_ingest = cl.memory_usage(STREAM, samples=0) / n
    aof_ingest = (redis.persistence()["aof_current_size"] - aof0) / n
    _, fields = cl.xrange(STREAM, count=1)[0]
    enc = fields.get(b"enc", b"").decode() or "none"
    stored_body = len(fields[b"body"])
    # The same entries with the body as received, written straight to Redis.
    raw = dict(fields)
    raw[b"body"] = body
    raw.pop(b"enc", None)
    aof1 = redis.persistence()["aof_current_size"]
    pipe = cl.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd("bench:raw", raw)
        if i % 100 == 99:
            pipe.execute()
    pipe.execute()
    raw_mem = cl.memory_usage("bench:raw", samples=0) / n
    raw_aof = (redis.persistence()["aof_current_size"] - aof1) / n
    redis.reset()
    return {"body": len(body), "stored_body": stored_body, "enc": enc, "entries": n,
            "mem_ingest": via_ingest, "mem_raw": raw_mem,
            "aof_ingest": aof_ingest, "aof_raw": raw_aof}


# ---------------------------------------------------------------------------------------------
# PostgreSQL

class Postgres(PgCluster):
    # Durable as in production: fsync, synchronous_commit and full_page_writes on (the
    # defaults, said out loud); everything else is PostgreSQL's default.
    SETTINGS = "-c fsync=on -c synchronous_commit=on -c full_page_writes=on"

    def __init__(self, tmp):
        super().__init__(tmp, self.SETTINGS)
        self.start()
        CLEANUP.add("postgres", self.stop)

    def pid(self):
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            return int(f.readline())

    def url(self, db):
        return self.dsn(db)

    def connect(self, db):
        import psycopg2
        c = psycopg2.connect(self.url(db))
        c.autocommit = True
        return c

    def sql(self, db, *stmts):
        c = self.connect(db)
        try:
            with c.cursor() as cur:
                for s in stmts:
                    cur.execute(s)
                    if cur.description:
                        return cur.fetchall()
        finally:
            c.close()


def prepare_db(pg, redis_url, db):
    pg.sql("postgres", "CREATE DATABASE %s" % db)
    e = dict(os.environ)
    e.update({"DATABASE_URL": pg.url(db), "REDIS_URL": redis_url})
    r = subprocess.run([os.path.join(BIN, "switchboard-worker"), "migrate"], env=e, cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("migrate failed: " + r.stderr[-1000:])
    pg.sql(db, "INSERT INTO organizations (id, name) VALUES ('%s', 'Bench')" % fixtures.ORG,
           "INSERT INTO assistants (provider_assistant_id, organization_id, name)"
           " VALUES ('%s', '%s', 'bench')" % (fixtures.ASSISTANT, fixtures.ORG),
           "INSERT INTO phone_numbers (provider_phone_id, organization_id, number)"
           " VALUES ('%s', '%s', '+15550100001')" % (fixtures.PHONE, fixtures.ORG))


PG_VARIANTS = (
    # key, mode, body, rows per transaction
    ("pg_row", "row", "report", 1),
    ("pg_batch", "batch", "report", 1000),
    ("pg_copy", "copy", "report", 1000),
    ("pg_batch_large", "batch", "large", 100),
)


def pg_floors(pg, bodies):
    for key, mode, body, batch in PG_VARIANTS:
        runs, cpus = [], []
        for i in range(RUNS):
            pg.sql("floor", "TRUNCATE calls", "CHECKPOINT")
            argv = [PGFLOOR, pg.url("floor"), mode, str(PG_SECONDS), bodies[body],
                    "%s-%d" % (key, i), str(batch)]
            meter = CpuMeter({"postgres": pg.pid()})
            r = subprocess.run(argv, capture_output=True, text=True,
                               timeout=PG_SECONDS * 10 + 120)
            cpus.append(meter.stop("pgfloor"))
            if r.returncode != 0:
                raise RuntimeError("pgfloor %s failed: %s" % (mode, r.stderr[-1000:]))
            runs.append(json.loads(r.stdout)["rows_per_s"])
            log("postgres %s (%s, %d per transaction) run %d/%d: %s rows/s" % (
                mode, SIZE_LABEL[body], batch, i + 1, RUNS, fmt_int(runs[-1])))
        mid = sorted(range(RUNS), key=lambda i: runs[i])[RUNS // 2]
        R[key] = {"rps": statistics.median(runs), "runs": runs, "cpu": cpus[mid]}
    pg.sql("floor", "TRUNCATE calls", "CHECKPOINT")


# ---------------------------------------------------------------------------------------------
# End to end

class Streams:
    """The webhook streams the workers read: [(stream, its dead letters, a client of the
    server that holds both)]; one entry for one Redis, one per shard for a cluster."""

    def __init__(self, shards):
        self.shards = shards

    def _group(self, client, stream):
        for g in client.xinfo_groups(stream):
            if g["name"] in (GROUP, GROUP.encode()):
                return g
        return None

    def accepted(self):
        """Entries ingest has written (XLEN of every stream)."""
        return sum(c.xlen(s) for s, _, c in self.shards)

    def acked(self):
        """Entries the group has acknowledged, which workers do only after the COMMIT."""
        total = 0
        for s, _, c in self.shards:
            g = self._group(c, s)
            if g:
                total += (g.get("entries-read") or 0) - g["pending"]
        return total

    def dead(self):
        return sum(c.xlen(d) for _, d, c in self.shards)

    def grouped(self):
        """Whether every stream has the workers' consumer group."""
        try:
            return all(self._group(c, s) for s, _, c in self.shards)
        except Exception:
            return False


def one_redis(redis):
    return Streams([(STREAM, DEAD, redis.client)])


def start_workers(tmp, pg, redis_url, streams, **extra):
    """WORKERS workers on the bench database, once their consumer group exists on every
    stream; extra: more settings."""
    workers = []
    for i in range(WORKERS):
        e = dict(os.environ)
        e.update({"REDIS_URL": redis_url, "DATABASE_URL": pg.url("switchboard"),
                  "WORKER_CONSUMER": "bench-%d" % (i + 1), "LOG_LEVEL": "info"})
        if WORKER_BATCH:
            e["WORKER_BATCH"] = str(WORKER_BATCH)
        e.update({k: str(v) for k, v in extra.items()})
        workers.append(start("worker-%d" % (i + 1), [os.path.join(BIN, "switchboard-worker")],
                             tmp, e))

    def group_ready():
        for w in workers:
            if not w.alive():
                raise RuntimeError("%s exited:\n%s" % (w.name, w.tail()))
        return streams.grouped()

    wait_until(group_ready, 30, "the workers' consumer group")
    time.sleep(0.5)  # every worker blocked in XREADGROUP
    return workers


def end_to_end(tmp, key, label, ingest, pg, bodies, redis_url, streams, redis_roots, **env):
    """N end-of-call reports posted by wrk to ingest until the workers have acknowledged all
    of them, into R[key]. streams: what ingest writes and the workers read (its accepted() and
    acked() are the clock); redis_roots: the Redis server pid(s), metered together as "redis";
    env: settings of the workers besides REDIS_URL (ingest was started with its own)."""
    per_thread = int(math.ceil(E2E / float(THREADS)))
    n = per_thread * THREADS
    pg.sql("switchboard", "TRUNCATE calls, call_events, unrouted_messages", "CHECKPOINT")
    workers = start_workers(tmp, pg, redis_url, streams, **env)
    url = "http://127.0.0.1:%d%s" % (ingest.port, WEBHOOK)
    argv = [which("wrk"), "-t", str(THREADS), "-c", str(CONNS), "-d", "%ds" % E2E_TIMEOUT,
            "--timeout", "10s", "-s", os.path.join(ROOT, "bench", "e2e.lua"), url, "--",
            bodies["template"], SECRET, str(per_thread), fixtures.CALL_ID_MARK]
    log("%s: %d end-of-call reports of %s, %d workers, batch %s" % (
        label, n, fmt_bytes(os.path.getsize(bodies["template"])), WORKERS, BATCH_LABEL))
    roots = {"ingest": ingest.pid, "redis": redis_roots, "postgres": pg.pid()}
    roots.update({w.name: w.pid for w in workers})
    meter = CpuMeter(roots)
    t0 = meter.t0
    wrk = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           cwd=ROOT, start_new_session=True)
    CLEANUP.add("wrk", lambda: wrk.poll() is None and (wrk.kill(), wrk.wait()))
    deadline = t0 + E2E_TIMEOUT
    t_posted = t_done = None
    done_rows = 0
    progress, last_change = None, t0
    stalled = False
    cpu_posting = None
    try:
        while time.monotonic() < deadline:
            xlen = streams.accepted()
            if t_posted is None:
                if xlen >= n:
                    t_posted = time.monotonic()
                    cpu_posting = cpu_seconds(roots)
                    wrk.send_signal(signal.SIGINT)  # every post answered; wrk prints its summary
                elif wrk.poll() is not None:
                    break
            done_rows = streams.acked()
            if done_rows >= n:
                t_done = time.monotonic()
                break
            if (xlen, done_rows) != progress:
                progress, last_change = (xlen, done_rows), time.monotonic()
            elif time.monotonic() - last_change > 30:
                stalled = True  # nothing moved for 30 s: a message went missing
                break
            time.sleep(0.05)
        cpu_end, m_end = cpu_seconds(roots), machine_busy()
        if wrk.poll() is None:
            wrk.send_signal(signal.SIGINT)
        try:
            out, err = wrk.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            wrk.kill()
            out, err = wrk.communicate()
        CLEANUP.remove("wrk")
        post = None
        try:
            post = parse_wrk(subprocess.CompletedProcess(argv, 0, out, err))
        except RuntimeError:
            log("wrk summary missing: %s" % err[-300:])
        res = {"messages": n, "posted_s": t_posted and t_posted - t0, "stalled": stalled,
               "accepted": streams.accepted(),
               "done_s": t_done and t_done - t0, "rows": done_rows,
               "dead": streams.dead(), "post": post}
        wall = (t_done or time.monotonic()) - t0
        res["cpu"] = {k: (cpu_end[k] - meter.c0.get(k, 0.0)) / wall for k in cpu_end}
        res["cpu"]["wrk"] = (meter._children() - meter.r0) / wall
        res["cpu"] = meter.add_other(res["cpu"], wall, m_end)
        if cpu_posting:
            ph = t_posted - t0
            res["cpu_posting"] = {k: (cpu_posting[k] - meter.c0.get(k, 0.0)) / ph
                                  for k in cpu_posting}
            if t_done:
                res["cpu_draining"] = {k: (cpu_end[k] - cpu_posting.get(k, 0.0)) /
                                       (t_done - t_posted) for k in cpu_end}
        res["rows"] = pg.sql("switchboard", "SELECT count(*) FROM call_events")[0][0]
        res["unrouted"] = pg.sql("switchboard", "SELECT count(*) FROM unrouted_messages")[0][0]
        res["calls"] = pg.sql("switchboard", "SELECT count(*) FROM calls")[0][0]
        if t_done:
            res["rps"] = n / (t_done - t0)
        if t_posted:
            res["ingest_rps"] = n / (t_posted - t0)
        res["worker_hwm_kib"] = [vm_hwm_kib(w.pid) for w in workers]
        res["worker_exit"] = [stop(w) for w in workers]
    finally:
        for w in workers:
            stop(w)
    R[key] = res
    log("%s: %s" % (label,
        "%d rows in %.1f s: %s events/s (all posted after %.1f s)" % (
            n, res["done_s"], fmt_int(res["rps"]), res["posted_s"]) if t_done else
        "%s after %d s with %d of %d rows (%d accepted by ingest)" % (
            "stalled" if stalled else "timed out", time.monotonic() - t0, done_rows, n,
            res["accepted"])))


def e2e_one_redis(tmp, ingest, redis, pg, bodies):
    redis.reset()
    end_to_end(tmp, "e2e", "end to end", ingest, pg, bodies, redis.url, one_redis(redis),
               redis.proc.pid)


CLUSTER_MASTERS = 3
CLUSTER_SHARDS = 6


def e2e_cluster(tmp, pg, bodies):
    """The end-to-end run against a Redis Cluster of CLUSTER_MASTERS masters without
    replicas (their CPU stays for the measurement), ingest and the workers with
    SWITCHBOARD_SHARDS=CLUSTER_SHARDS. Each node: deploy/redis.conf with the AOF fsynced
    every second, as the one Redis of the other steps, plus the cluster options
    (tests/integration/rcluster.py starts them)."""
    try:
        import rcluster
    except ImportError as e:  # it imports pytest (its fixture)
        why = "tests/integration/rcluster.py cannot be imported (%s)" % e
    else:
        why = rcluster.cluster_tools_missing()
    if why:
        log("cluster: skipped: " + why)
        R["cluster"] = {"skipped": why}
        return
    cluster = rcluster.RedisCluster(os.path.join(tmp, "cluster"), CLUSTER_MASTERS, 0,
                                    os.path.join(ROOT, "deploy", "redis.conf"),
                                    ["--appendfsync", "everysec"])
    # Its nodes share this script's session (rcluster's processes): Ctrl-C reaches them too,
    # and the stop below (or CLEANUP's) finds them stopped.
    CLEANUP.add("redis-cluster", cluster.stop)
    ingest = None
    try:
        cluster.start()
        names = ["%s:{%d}" % (STREAM, i) for i in range(CLUSTER_SHARDS)]
        owners = [cluster.master_for_key(k) for k in names]
        streams = Streams([(k, "%s:{%d}" % (DEAD, i), o.client())
                           for i, (k, o) in enumerate(zip(names, owners))])
        log("cluster: %d masters (%s), shards per master: %s" % (
            CLUSTER_MASTERS, cluster.seeds(),
            ", ".join("%d: %d" % (n.port, sum(o is n for o in owners))
                      for n in cluster.nodes)))
        env = {"REDIS_CLUSTER": cluster.seeds(), "SWITCHBOARD_SHARDS": CLUSTER_SHARDS}
        url = "redis://unused:1/0"  # with REDIS_CLUSTER only its user and password count
        ingest = start_ingest(tmp, url, "ingest-cluster", os.path.join(tmp, "spool-cluster"),
                              **env)
        end_to_end(tmp, "cluster", "cluster", ingest, pg, bodies, url, streams,
                   [n.pid for n in cluster.nodes], **env)
        R["cluster"]["shard_lengths"] = [c.xlen(k) for k, _, c in streams.shards]
        R["cluster"]["spool_entries"] = spool_entries(ingest.admin_port)
    finally:
        if ingest is not None:
            stop(ingest)
        CLEANUP.remove("redis-cluster")
        cluster.stop()


def soak(tmp, ingest, redis, pg, bodies):
    """SOAK_SECONDS of end-of-call reports through ingest and the workers, sampling the
    resident set of each every 10 s. The call ids cycle over SOAK_CALLS per wrk thread and
    the workers trim what they acknowledged after 20 s, so that PostgreSQL and Redis stay
    the same size however long it runs (repeated reports update rows that exist)."""
    redis.reset()
    pg.sql("switchboard", "TRUNCATE calls, call_events, unrouted_messages", "CHECKPOINT")
    workers = start_workers(tmp, pg, redis.url, one_redis(redis),
                            SWITCHBOARD_RETENTION="20s", WORKER_TRIM_INTERVAL="5s")
    procs = {"ingest": ingest.pid}
    procs.update({w.name: w.pid for w in workers})
    url = "http://127.0.0.1:%d%s" % (ingest.port, WEBHOOK)
    argv = [which("wrk"), "-t", str(THREADS), "-c", str(CONNS), "-d", "%ds" % SOAK_SECONDS,
            "--timeout", "10s", "-s", os.path.join(ROOT, "bench", "e2e.lua"), url, "--",
            bodies["template"], SECRET, str(10 ** 9), fixtures.CALL_ID_MARK, str(SOAK_CALLS),
            str(SOAK_PAUSE_MS)]
    log("soak: %d s of %s reports, %d workers" % (
        SOAK_SECONDS, fmt_bytes(os.path.getsize(bodies["template"])), WORKERS))
    wrk = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           cwd=ROOT, start_new_session=True)
    CLEANUP.add("wrk", lambda: wrk.poll() is None and (wrk.kill(), wrk.wait()))
    samples = []  # (seconds, {name: VmRSS KiB}, xlen)
    t0 = time.monotonic()
    try:
        while wrk.poll() is None:
            time.sleep(10)
            for w in workers:
                if not w.alive():
                    raise RuntimeError("%s exited:\n%s" % (w.name, w.tail()))
            samples.append((time.monotonic() - t0,
                            {k: vm_status_kib(p, "VmRSS") for k, p in procs.items()},
                            redis.client.xlen(STREAM)))
            if samples[-1][2] > 2000000:
                raise RuntimeError("soak: the workers fall behind (%d entries in the "
                                   "stream); lower the rate with BENCH_SOAK_PAUSE_MS"
                                   % samples[-1][2])
            log("soak: %3d s, RSS %s, stream %d" % (samples[-1][0], ", ".join(
                "%s %.1f MiB" % (k, v / 1024.0) for k, v in samples[-1][1].items()),
                samples[-1][2]))
        out, err = wrk.communicate(timeout=30)
        CLEANUP.remove("wrk")
        post = parse_wrk(subprocess.CompletedProcess(argv, 0, out, err))
    finally:
        for w in workers:
            stop(w)
    early = [s for s in samples if 50 <= s[0] <= 70] or samples[:1]
    late = samples[-6:]
    R["soak"] = {"seconds": SOAK_SECONDS, "rps": post["rps"], "samples": samples,
                 "at_1min": early[0][1],
                 "last_min_max": {k: max(s[1][k] for s in late) for k in procs}}


# ---------------------------------------------------------------------------------------------
# The table

SIZE_LABEL = {"small": "0.8 KB", "report": "7.9 KB", "large": "64 KB"}


def fmt_int(x):
    return "{:,}".format(int(round(x))) if x is not None else "n/a"


def fmt_bytes(n):
    return "%.1f KB" % (n / 1000.0) if n < 10000 else "%d KB" % round(n / 1024.0)


def get(key, field="rps"):
    v = R.get(key)
    return v.get(field) if isinstance(v, dict) else None


def rate(key, unit="req/s"):
    v = get(key)
    if v is None:
        return "not run"
    s = "%s %s" % (fmt_int(v), unit)
    if get(key, "p99_ms") is not None:
        s += ", p99 %.2f ms" % get(key, "p99_ms")
    bad = (get(key, "errors") or 0) + (get(key, "non2xx") or 0)
    if bad:
        s += " (%d failed)" % bad
    return s


def ratio(a, b):
    return a / b if a is not None and b else None


def verdict(ok):
    return "n/a" if ok is None else ("**yes**" if ok else "**no**")


def e2e_result(e):
    """The result cell of an end-to-end run."""
    if e.get("rps"):
        res = "%s events/s (%s messages in %.1f s)" % (fmt_int(e["rps"]),
                                                       fmt_int(e["messages"]), e["done_s"])
    else:
        res = "%s: %s of %s rows committed (%s accepted)" % (
            "stalled" if e.get("stalled") else "timed out after %d s" % E2E_TIMEOUT,
            fmt_int(e["rows"]), fmt_int(e["messages"]), fmt_int(e.get("accepted")))
    if e.get("dead") or e.get("unrouted"):
        res += " (%d dead-lettered, %d unrouted)" % (e["dead"], e["unrouted"])
    return res


def table():
    rows = []

    def row(what, result, floor="", r=None, target="", ok=None, cpu=None):
        rows.append((what, result, floor, "%.2f" % r if r is not None else "",
                     target, verdict(ok) if target else "", fmt_cpu(cpu)))

    # Floors
    for key, what, unit in (
            ("nginx_small", "nginx `return 200`, POST 0.8 KB", "req/s"),
            ("nginx_large", "nginx `return 200`, POST 64 KB", "req/s"),
            ("xadd_report", "redis-benchmark XADD 7.9 KB, AOF everysec", "ops/s"),
            ("xadd_large", "redis-benchmark XADD 64 KB, AOF everysec", "ops/s"),
            ("xadd_report_always", "redis-benchmark XADD 7.9 KB, AOF always (deploy/redis.conf)",
             "ops/s"),
            ("pg_row", "Postgres upsert 7.9 KB rows, per-row autocommit", "rows/s"),
            ("pg_batch", "Postgres upsert 7.9 KB rows, batches of 1,000", "rows/s"),
            ("pg_copy", "Postgres COPY 7.9 KB rows, 1,000 per transaction", "rows/s"),
            ("pg_batch_large", "Postgres upsert 64 KB rows, batches of 100", "rows/s")):
        row(what, rate(key, unit), "floor", cpu=get(key, "cpu"))
    # Ingest
    r = ratio(get("ingest_small"), get("nginx_small"))
    row("ingest, POST 0.8 KB (status-update)", rate("ingest_small"), "nginx 0.8 KB", r,
        ">= 0.60", None if r is None else r >= 0.60, get("ingest_small", "cpu"))
    p99 = get("ingest_small", "p99_ms")
    r = ratio(p99, get("nginx_small", "p99_ms"))
    row("ingest, POST 0.8 KB: p99", "%.2f ms" % p99 if p99 is not None else "not run",
        "nginx p99 %.2f ms" % get("nginx_small", "p99_ms") if get("nginx_small") else "",
        r, "<= 1.00", None if r is None else r <= 1.0)
    for key in ("small", "large"):
        if get("callgrind_" + key, "ir") is not None:
            row("ingest, instructions per accepted %s webhook (callgrind, one at a time)" %
                SIZE_LABEL[key], "%s" % fmt_int(get("callgrind_" + key, "ir")))
    r = ratio(get("ingest_report"), get("xadd_report"))
    row("ingest, POST 7.9 KB (end-of-call-report)", rate("ingest_report"),
        "XADD 7.9 KB", r, cpu=get("ingest_report", "cpu"))
    r = ratio(get("ingest_large"), get("xadd_large"))
    row("ingest, POST 64 KB (end-of-call-report)", rate("ingest_large"), "XADD 64 KB", r,
        ">= 2.00", None if r is None else r >= 2.0, get("ingest_large", "cpu"))
    r = ratio(get("ingest_large"), get("nginx_large"))
    row("ingest, POST 64 KB, against nginx", rate("ingest_large"), "nginx 64 KB", r)
    r = ratio(get("ingest_report_always"), get("xadd_report_always"))
    row("ingest, POST 7.9 KB, Redis with appendfsync always (deploy/redis.conf)",
        rate("ingest_report_always"), "XADD 7.9 KB, always", r,
        cpu=get("ingest_report_always", "cpu"))
    d = R.get("redrive")
    if d:
        row("spool re-drive after an outage: %s 7.9 KB reports, appendfsync always" %
            fmt_int(d["entries"]), "%s entries/s (%.1f s, a %.0f MB spool; ingest peak RSS "
            "%.1f MiB)" % (fmt_int(d["rps"]), d["seconds"], d["spool_bytes"] / 1e6,
                           d["hwm_kib"] / 1024.0),
            "XADD 7.9 KB, always", ratio(d["rps"], get("xadd_report_always")),
            cpu=d.get("cpu"))
    # End to end
    e = R.get("e2e")
    if e:
        r = ratio(e.get("rps"), get("pg_batch"))
        row("end to end: 7.9 KB reports posted until committed, %d workers, batch %s"
            % (WORKERS, BATCH_LABEL), e2e_result(e), "Postgres batches of 1,000", r, ">= 0.80",
            None if r is None else r >= 0.80, e.get("cpu"))
        if e.get("ingest_rps"):
            row("end to end: ingest side (all posts answered)",
                "%s req/s in %.1f s%s" % (
                    fmt_int(e["ingest_rps"]), e["posted_s"],
                    ", p99 %.2f ms" % e["post"]["p99_ms"] if e.get("post") else ""),
                "XADD 7.9 KB", ratio(e["ingest_rps"], get("xadd_report")),
                cpu=e.get("cpu_posting"))
    else:
        row("end to end", "not run", "Postgres batches of 1,000", None, ">= 0.80", None)
    c = R.get("cluster")
    if c:
        row("end to end, Redis Cluster %d masters, %d shards" % (
            CLUSTER_MASTERS, CLUSTER_SHARDS),
            "skipped: " + c["skipped"] if c.get("skipped") else e2e_result(c),
            "end to end (one Redis)", ratio(c.get("rps"), get("e2e")), cpu=c.get("cpu"))
    # Memory
    hwm = R.get("ingest_hwm_kib")
    row("peak RSS of ingest (VmHWM, after every load)",
        "%.1f MiB" % (hwm / 1024.0) if hwm else "not run", "", None, "< 32 MiB",
        None if not hwm else hwm < 32 * 1024)
    for i, w in enumerate((e or {}).get("worker_hwm_kib") or []):
        row("peak RSS of worker %d (VmHWM, after the end-to-end run)" % (i + 1),
            "%.1f MiB" % (w / 1024.0) if w else "n/a", "", None, "< 64 MiB",
            None if not w else w < 64 * 1024)
    s = R.get("soak")
    for name in sorted((s or {}).get("at_1min", {})):
        a, b = s["at_1min"][name], s["last_min_max"][name]
        row("RSS of %s over a %d-minute soak (%s reports/s)" % (
            name, s["seconds"] // 60, fmt_int(s["rps"])),
            "%.1f MiB after 1 min, at most %.1f MiB in the last minute" % (a / 1024.0,
                                                                        b / 1024.0),
            "", None, "no growth", b <= a * 1.10 + 1024)
    for key in ("report", "large"):
        m = R.get("mem_" + key)
        if not m:
            continue
        row("Redis bytes per retained %s entry (enc=%s)" % (SIZE_LABEL[key], m["enc"]),
            "%s B in memory, %s B of AOF" % (fmt_int(m["mem_ingest"]), fmt_int(m["aof_ingest"])),
            "%s B / %s B raw" % (fmt_int(m["mem_raw"]), fmt_int(m["aof_raw"])),
            ratio(m["mem_ingest"], m["mem_raw"]))
    out = ["| measurement | result | floor (same run) | ratio | target | met "
           "| CPU, cores busy (of %d) |" % os.cpu_count(),
           "|---|---|---|---|---|---|---|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def header():
    model = ""
    try:
        model = next((l.split(":", 1)[1].strip() for l in subprocess.run(
            ["lscpu"], capture_output=True, text=True).stdout.splitlines()
            if l.startswith("Model name")), "")
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 1024.0 / 1024.0
    return ("Machine: %d CPUs (%s), %.1f GiB RAM. wrk -t%d -c%d, %d s per run, median of %d "
            "run(s); Postgres variants %d s each; end to end %s messages." % (
                os.cpu_count(), model or "unknown CPU", mem, THREADS, CONNS, SECONDS, RUNS,
                PG_SECONDS, fmt_int(int(math.ceil(E2E / float(THREADS))) * THREADS)))


# ---------------------------------------------------------------------------------------------

def main():
    preflight()
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="switchboard-bench-")
    os.chmod(tmp, 0o755)
    log("temporary folder %s%s" % (tmp, " (kept)" if KEEP else ""))
    failed = None
    try:
        fx = os.path.join(tmp, "fixtures")
        os.makedirs(fx)
        bodies = fixtures.write_all(fx)
        if want("nginx"):
            nginx_floor(tmp, bodies)
        redis = ingest = pg = None
        if want("redis") or want("ingest") or want("redrive") or want("memory") or \
                want("e2e") or want("callgrind"):
            redis = Redis(tmp)
        if want("redis"):
            R["xadd_report"] = redis_benchmark_xadd(redis, bodies["report"], SECONDS)
            R["xadd_large"] = redis_benchmark_xadd(redis, bodies["large"], SECONDS)
            with fsync_always(redis):
                R["xadd_report_always"] = redis_benchmark_xadd(redis, bodies["report"],
                                                               SECONDS)
        if want("soak"):
            redis = redis or Redis(tmp)
        if want("ingest") or want("memory") or want("e2e") or want("soak"):
            ingest = start_ingest(tmp, redis.url)
        if want("ingest"):
            ingest_loads(ingest, redis, bodies)
        if want("callgrind"):
            callgrind_counts(tmp, redis, bodies)
        if want("memory"):
            R["mem_report"] = entry_bytes(ingest, redis, bodies["report"], 2000)
            R["mem_large"] = entry_bytes(ingest, redis, bodies["large"], 400)
            log("bytes per entry: %s" % json.dumps({k: R[k] for k in ("mem_report",
                                                                        "mem_large")}))
        if want("postgres") or want("e2e") or want("cluster") or want("soak"):
            pg = Postgres(tmp)
            prepare_db(pg, redis.url if redis else "redis://127.0.0.1:1/0", "floor")
            prepare_db(pg, redis.url if redis else "redis://127.0.0.1:1/0", "switchboard")
        if want("postgres"):
            pg_floors(pg, bodies)
        if want("e2e"):
            e2e_one_redis(tmp, ingest, redis, pg, bodies)
        if want("cluster"):
            e2e_cluster(tmp, pg, bodies)
        if want("redrive"):  # after the end-to-end run: its spools write hundreds of MB
            runs = [spool_redrive(tmp, redis, bodies, i) for i in range(RUNS)]
            R["redrive"] = dict(sorted(runs, key=lambda r: r["rps"])[RUNS // 2], runs=runs)
        if want("soak"):
            soak(tmp, ingest, redis, pg, bodies)
        if ingest is not None:
            R["ingest_hwm_kib"] = vm_hwm_kib(ingest.pid)
            R["ingest_exit"] = stop(ingest)
    except KeyboardInterrupt:
        failed = "interrupted"
    except Exception as e:  # report, clean up, exit non-zero
        failed = "%s: %s" % (type(e).__name__, e)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        CLEANUP.run()
        if KEEP:
            log("logs kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.monotonic() - started
    text = "%s\n\n%s\n\n%s" % (header(), table(),
                               "Took %d s.%s" % (elapsed, "" if not failed else
                                                 " FAILED: " + failed))
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(R, f, indent=1, default=str)
    print(text)
    if failed:
        log(failed)
        sys.exit(1)


def on_signal(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    # Also SIGINT: a shell that started us in the background may have set it to be ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    main()
