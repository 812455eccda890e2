"""`make run` (scripts/run-local.sh) supervises its stack: a service that dies is started again
and the rest keeps running; var/env points the operator commands at it; Ctrl-C stops it all.
The script runs as a user would run it, with its own Redis and PostgreSQL in a temporary var/
on free ports."""

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

import psycopg2

from conftest import BIN, ROOT, free_port, wait_until

SCRIPT = os.path.join(ROOT, "scripts", "run-local.sh")


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def metrics_base():
    """A port p with p + 1 and p + 2 free on 127.0.0.1 right now."""
    for _ in range(50):
        p = free_port() - 1
        try:
            for q in (p + 1, p + 2):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", q))
            return p
        except OSError:
            continue
    raise AssertionError("no two free consecutive ports")


class LocalStack:
    def __init__(self, tmp):
        self.var = tempfile.mkdtemp(prefix="run-local-", dir=tmp)
        os.chmod(self.var, 0o755)
        self.ports = {k: free_port() for k in ("SB_REDIS_PORT", "SB_PG_PORT",
                                                "SB_INGEST_PORT")}
        # The workers listen on SB_METRICS_PORT + 1 and + 2: both must be free.
        self.ports["SB_METRICS_PORT"] = metrics_base()
        env = dict(os.environ, SB_VAR=self.var, SB_BIN=BIN, LOG_LEVEL="info",
                   WORKER_BLOCK_MS="200", **{k: str(v) for k, v in self.ports.items()})
        self.out_path = os.path.join(self.var, "run-local.out")
        self.out = open(self.out_path, "wb")
        # A session of its own, as a terminal gives it: Ctrl-C is SIGINT to its process group.
        self.p = subprocess.Popen(["bash", SCRIPT], env=env, stdout=self.out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  cwd=ROOT, start_new_session=True)

    def output(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_for(self, pattern, timeout, what):
        def seen():
            assert self.p.poll() is None, "run-local.sh exited:\n" + self.output()
            return re.search(pattern, self.output()) is not None
        wait_until(seen, timeout, what)

    def pid(self, name):
        if name == "postgres":
            path = os.path.join(self.var, "pg", "postmaster.pid")
        else:
            path = os.path.join(self.var, name + ".pid")
        with open(path) as f:
            return int(f.readline())

    def env(self):
        """The variables `. var/env` sets, as a shell sees them."""
        r = subprocess.run(["sh", "-c", ". \"$1\" && env -0", "sh",
                            os.path.join(self.var, "env")],
                           capture_output=True, timeout=10, check=True)
        return dict(kv.split("=", 1) for kv in r.stdout.decode().split("\0") if "=" in kv)

    def post(self, call_id):
        with open(os.path.join(self.var, "webhook-secret")) as f:
            secret = f.read().strip()
        body = json.dumps({"message": {
            "type": "status-update", "status": "in-progress", "timestamp": 1,
            "call": {"id": call_id, "type": "inboundPhoneCall", "phoneNumberId": "pn_demo"}}})
        r = subprocess.run(["curl", "-sS", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}",
                            "-H", "X-Vapi-Secret: " + secret, "--data-binary", body,
                            "http://127.0.0.1:%d/api/vapi/webhook" % self.ports["SB_INGEST_PORT"]],
                           capture_output=True, text=True, timeout=20)
        return r.stdout

    def stop(self):
        """Ctrl-C: SIGINT to the script's process group; returns its exit code and the pids it
        had started."""
        pids = []
        for n in ("redis", "ingest", "worker-1", "worker-2", "postgres"):
            try:
                pids.append(self.pid(n))
            except (OSError, ValueError):
                pass
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGINT)
            try:
                self.p.wait(90)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.out.close()
        return self.p.returncode, pids


def count_calls(url):
    try:
        conn = psycopg2.connect(url, connect_timeout=5)
    except psycopg2.Error:
        return -1
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM calls WHERE vapi_call_id LIKE 'call_sup_%%'"
                        " AND organization_id = 'org_demo'")
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_supervised_stack_restarts_a_killed_redis_and_files_everything(tmp_root):
    st = LocalStack(tmp_root)
    left = []
    try:
        st.wait_for(r"Switchboard is running", 120, "the run-local banner")
        out = st.output()
        env = st.env()
        assert env["REDIS_URL"] == "redis://127.0.0.1:%d/0" % st.ports["SB_REDIS_PORT"]
        assert env["DATABASE_URL"].endswith(":%d/switchboard" % st.ports["SB_PG_PORT"])
        for v in (env["REDIS_URL"], env["DATABASE_URL"],
                  "127.0.0.1:%d" % (st.ports["SB_METRICS_PORT"] + 1),
                  "127.0.0.1:%d" % (st.ports["SB_METRICS_PORT"] + 2),
                  "http://127.0.0.1:%d/api/vapi/webhook" % st.ports["SB_INGEST_PORT"]):
            assert v in out, v
        # `. var/env` is enough for the runbook's commands (sbw, psql).
        r = subprocess.run(["sh", "-c", '. "$1" && sbw status --json', "sh",
                            os.path.join(st.var, "env")],
                           capture_output=True, text=True, timeout=30, cwd="/")
        assert r.returncode == 0, r.stderr
        assert sorted(json.loads(r.stdout)["consumers"]) == ["local-1", "local-2"]

        others = {n: st.pid(n) for n in ("ingest", "worker-1", "worker-2", "postgres")}
        old_redis = st.pid("redis")
        os.kill(old_redis, signal.SIGKILL)
        codes = [st.post("call_sup_%d" % i) for i in range(30)]
        assert codes == ["200"] * 30, codes
        st.wait_for(r"redis-server \(pid %d\) was killed by SIGKILL; restarting it" % old_redis,
                    10, "the supervisor to notice")
        st.wait_for(r"redis-server restarted \(pid \d+", 30, "redis-server to be restarted")
        assert st.pid("redis") != old_redis and alive(st.pid("redis"))
        codes = [st.post("call_sup_%d" % i) for i in range(30, 40)]
        assert codes == ["200"] * 10, codes
        wait_until(lambda: count_calls(env["DATABASE_URL"]) == 40, 60,
                   "all 40 calls to be filed")
        # The rest kept running all along.
        for name, pid in others.items():
            assert st.pid(name) == pid and alive(pid), name
        assert re.findall(r"Z (.+) restarted \(pid", st.output()) == ["redis-server"]

        old_worker = st.pid("worker-1")
        os.kill(old_worker, signal.SIGKILL)
        st.wait_for(r"switchboard-worker local-1 restarted", 30, "the worker to be restarted")
        assert alive(st.pid("worker-1")) and st.pid("worker-1") != old_worker
        assert st.post("call_sup_40") == "200"
        wait_until(lambda: count_calls(env["DATABASE_URL"]) == 41, 60, "the 41st call")
    finally:
        rc, left = st.stop()
    assert rc == 0, st.output()
    assert "run-local: stopped" in st.output()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in left) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in left if alive(p)], "still running after Ctrl-C: %s" % left
