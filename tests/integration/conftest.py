"""Fixtures that run real redis-server and PostgreSQL in a temporary folder on free loopback
ports, and our real binaries against them. Everything started here is stopped by PID."""

import concurrent.futures
import os
import shutil
import signal
import subprocess
import tempfile
import json
import http.client

import psycopg2
import pytest
import redis as redislib

from netutil import PgCluster, free_port, pg_bindir, wait_until  # noqa: F401 (tests import them here)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, os.environ.get("BIN", "bin"))
SECRET = "test-secret-0123456789"
STREAM = "switchboard:webhooks"
DEAD = "switchboard:webhooks:dead"
GROUP = "workers"


class Proc:
    """A child process with its log file; stop() sends SIGTERM and returns the exit code."""

    def __init__(self, name, argv, env, logdir):
        self.name = name
        self.log_path = os.path.join(logdir, name + ".log")
        self.log = open(self.log_path, "ab")
        self.log_start = self.log.tell()  # the file may hold an earlier process's lines
        self.p = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                  cwd=ROOT)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        return self.p.returncode

    def output(self):
        """What this process wrote (not the earlier processes of the same name)."""
        with open(self.log_path, "rb") as f:
            f.seek(self.log_start)
            return f.read().decode("utf-8", "replace")


class RedisServer:
    """redis-server (or another build of it: binary) with an append-only file in tmp/name."""

    def __init__(self, tmp, binary="redis-server", name="redis", appendfsync="always"):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.binary = binary
        self.appendfsync = appendfsync
        self.port = free_port()
        self.proc = None
        self.start()

    def start(self):
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--appendonly", "yes", "--appendfsync", self.appendfsync,
                "--save", "", "--daemonize", "no", "--logfile", "",
                "--maxmemory-policy", "noeviction"]
        self.proc = Proc("redis", argv, dict(os.environ), self.dir)
        wait_until(self.ping, 10, "redis-server to answer PING")

    def ping(self):
        try:
            return self.client().ping()
        except redislib.RedisError:
            return False

    def client(self):
        return redislib.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def stop(self):
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port


class PostgresServer(PgCluster):
    # fsync off only skips flushes to the disk; commits still reach the kernel before they
    # are confirmed (synchronous_commit stays on), so a killed server loses nothing that a
    # worker acknowledged.
    SETTINGS = "-c fsync=off -c full_page_writes=off"

    def __init__(self, tmp):
        super().__init__(tmp, self.SETTINGS)
        self.start()
        conn = self.connect("postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE switchboard")
        conn.close()

    def connect(self, db="switchboard"):
        return psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=db)

    @property
    def url(self):
        return self.dsn("switchboard")


@pytest.fixture(scope="session")
def tmp_root():
    d = tempfile.mkdtemp(prefix="switchboard-test-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server(tmp_root):
    r = RedisServer(tmp_root)
    yield r
    r.stop()


@pytest.fixture(scope="session")
def pg_server(tmp_root):
    pg = PostgresServer(tmp_root)
    yield pg
    try:
        pg.stop("immediate")
    except subprocess.CalledProcessError:
        pass


class Stack:
    """Ingest and workers over the shared servers, with a clean stream and database."""

    def __init__(self, tmp, redis_server, pg_server):
        self.tmp = tmp
        self.redis = redis_server
        self.pg = pg_server
        self.procs = []
        self.ingest = None
        self.ingest_port = None
        self.admin_port = None
        self.spool_dir = tempfile.mkdtemp(prefix="spool-", dir=tmp)

    def env(self, **extra):
        e = dict(os.environ)
        e.update({"REDIS_URL": self.redis.url, "DATABASE_URL": self.pg.url,
                  "WEBHOOK_SECRET": SECRET, "LOG_LEVEL": "info", "WORKER_BLOCK_MS": "200"})
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def run_worker_cmd(self, *args, **env):
        return subprocess.run([os.path.join(BIN, "switchboard-worker")] + list(args),
                              env=self.env(**env), cwd=ROOT, capture_output=True, text=True,
                              timeout=120)

    def migrate(self):
        r = self.run_worker_cmd("migrate")
        assert r.returncode == 0, r.stderr

    def start_ingest(self, port=None, **env):
        self.ingest_port = port or free_port()
        env.setdefault("INGEST_LISTEN", "127.0.0.1:%d" % self.ingest_port)
        self.admin_port = free_port()
        env.setdefault("INGEST_ADMIN_LISTEN", "127.0.0.1:%d" % self.admin_port)
        env.setdefault("INGEST_SPOOL_DIR", self.spool_dir)
        env.setdefault("INGEST_THREADS", 2)
        p = Proc("ingest-%d" % len(self.procs), [os.path.join(BIN, "switchboard-ingest")],
                 self.env(**env), self.tmp)
        self.procs.append(p)
        self.ingest = p
        wait_until(lambda: self.http("GET", "/healthz")[0] == 200 if p.alive() else
                   pytest.fail("ingest exited:\n" + p.output()), 15, "ingest /healthz")
        return p

    def start_worker(self, name, **env):
        env.setdefault("WORKER_CONSUMER", name)
        p = Proc(name, [os.path.join(BIN, "switchboard-worker")], self.env(**env), self.tmp)
        self.procs.append(p)
        return p

    def http(self, method, path, body=None, headers=None, port=None):
        c = http.client.HTTPConnection("127.0.0.1", port or self.ingest_port, timeout=30)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read(), dict(r.getheaders())
        except (ConnectionError, OSError):
            return 0, b"", {}
        finally:
            c.close()

    def admin(self, path, method="GET"):
        """A request to ingest's admin listener (/metrics, /healthz, /readyz)."""
        return self.http(method, path, port=self.admin_port)

    def post(self, body, secret=SECRET):
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Vapi-Secret"] = secret
        return self.http("POST", "/api/vapi/webhook", body, headers)

    def spool_entries(self):
        """Ingest's switchboard_ingest_spool_entries gauge."""
        for line in self.admin("/metrics")[1].decode().splitlines():
            if line.startswith("switchboard_ingest_spool_entries "):
                return int(line.split()[1])
        raise AssertionError("no spool gauge in ingest's /metrics")

    def group_info(self):
        for g in self.redis.client().xinfo_groups(STREAM):
            if g["name"] in (GROUP, GROUP.encode()):
                return g
        return None

    def drained(self):
        g = self.group_info()
        return g is not None and g["pending"] == 0 and g["lag"] == 0

    def wait_drained(self, timeout=120):
        wait_until(self.drained, timeout, "the consumer group to have no lag and nothing "
                   "pending")

    def kill(self, p):
        """SIGKILLs p and forgets it (its exit code is not a failure)."""
        p.p.send_signal(signal.SIGKILL)
        p.p.wait()
        p.log.close()
        self.procs.remove(p)

    def stop_all(self):
        """Stops every process; returns {name: exit code}."""
        codes = {}
        for p in reversed(self.procs):
            codes[p.name] = p.stop()
        self.procs = []
        return codes


def reset_database(pg):
    """Drops and re-creates the switchboard database (closing its connections)."""
    conn = pg.connect("postgres")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("DROP DATABASE IF EXISTS switchboard WITH (FORCE)")
    cur.execute("CREATE DATABASE switchboard")
    conn.close()


def stack_over(tmp_root, redis_server, pg_server, reset=True):
    """Yields a Stack over these servers with a new (unless not reset), migrated database;
    then stops what it started and fails on a non-zero exit (a sanitizer report)."""
    if reset:
        reset_database(pg_server)
    s = Stack(tmp_root, redis_server, pg_server)
    s.migrate()
    yield s
    codes = s.stop_all()
    bad = {k: v for k, v in codes.items() if v != 0}
    assert not bad, "processes exited with non-zero codes (sanitizer report?): %s" % bad


@pytest.fixture
def stack(tmp_root, redis_server, pg_server):
    redis_server.client().flushall()
    yield from stack_over(tmp_root, redis_server, pg_server)


def seed(pg, orgs=(), phones=(), assistants=()):
    """Inserts organizations, (provider_phone_id, org) and (provider_assistant_id, org)."""
    conn = pg.connect()
    with conn, conn.cursor() as cur:
        for o in orgs:
            cur.execute("INSERT INTO organizations (id, name) VALUES (%s, %s)", (o, o.upper()))
        for p, o in phones:
            cur.execute("INSERT INTO phone_numbers (provider_phone_id, organization_id, number)"
                        " VALUES (%s, %s, %s)", (p, o, "+1555" + p[-4:]))
        for a, o in assistants:
            cur.execute("INSERT INTO assistants (provider_assistant_id, organization_id, name)"
                        " VALUES (%s, %s, %s)", (a, o, a))
    conn.close()


def query(pg, sql, args=()):
    conn = pg.connect()
    with conn, conn.cursor() as cur:
        cur.execute(sql, args)
        rows = cur.fetchall()
    conn.close()
    return rows


def post_lists(stack, lists, threads=8):
    """Posts each list of bodies in its order on one keep-alive connection, the lists spread
    over threads; returns [(body, HTTP status, X-Request-Id)] in no particular order."""
    def send(chunk):
        conn = http.client.HTTPConnection("127.0.0.1", stack.ingest_port, timeout=30)
        out = []
        for bodies in chunk:
            for b in bodies:
                conn.request("POST", "/api/vapi/webhook", body=b,
                             headers={"X-Vapi-Secret": SECRET,
                                      "Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                out.append((b, r.status, r.getheader("X-Request-Id")))
        conn.close()
        return out

    chunks = [lists[i::threads] for i in range(threads)]
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        return [x for part in ex.map(send, chunks) for x in part]


def body(msg):
    return json.dumps({"message": msg}).encode()
