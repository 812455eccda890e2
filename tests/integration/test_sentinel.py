"""Redis Sentinel: a master, one replica and three sentinels, all real redis-server processes
on 127.0.0.1. Ingest and a worker find the master through the sentinels; the master is
SIGKILLed while retrying senders post; with INGEST_WAIT_REPLICAS=1 every webhook that got a
200 is filed exactly once, and the worker goes on against the new master without a restart."""

import concurrent.futures
import http.client
import os
import signal
import threading
import time

import redis as redislib

from conftest import (GROUP, SECRET, STREAM, Proc, RedisServer, body, free_port, query, seed,
                      wait_until)

MASTER = "sbmaster"
N = 5000


class Server(RedisServer):
    """One redis-server with extra arguments, or a sentinel (the same binary with
    --sentinel); client(), ping() and stop() are RedisServer's."""

    def __init__(self, tmp, name, args, sentinel=False):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.name, self.args, self.sentinel = name, args, sentinel
        self.port = free_port()
        self.proc = None
        self.start()

    def start(self):
        if self.sentinel:
            conf = os.path.join(self.dir, "sentinel.conf")
            if not os.path.exists(conf):  # a sentinel rewrites its file: keep it on restart
                with open(conf, "w") as f:
                    f.write("port %d\nbind 127.0.0.1\ndir %s\n%s\n" %
                            (self.port, self.dir, "\n".join(self.args)))
            argv = ["redis-server", conf, "--sentinel"]
        else:
            argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                    "--dir", self.dir, "--appendonly", "yes", "--appendfsync", "everysec",
                    "--save", "", "--logfile", ""] + self.args
        self.proc = Proc(self.name, argv, dict(os.environ), self.dir)
        wait_until(self.ping, 10, self.name + " to answer PING")

    def kill(self):
        self.proc.p.send_signal(signal.SIGKILL)
        self.proc.p.wait()
        self.proc.log.close()
        self.proc = None


def master_port(sentinels):
    for s in sentinels:
        try:
            host, port = s.client().execute_command("SENTINEL", "get-master-addr-by-name",
                                                    MASTER)
            return int(port)
        except (redislib.RedisError, TypeError):
            continue
    return None


def report(i):
    return body({"type": "end-of-call-report", "timestamp": 1767225600000 + i,
                 "endedReason": "hangup", "call": {"id": "sent-%05d" % i, "type": "webCall",
                                                   "metadata": {"organizationId": "org_a"}}})


def post_retrying(port, bodies, stop_at):
    """Posts each body until it gets a 200 (as Vapi retries); returns the count acknowledged."""
    conn, acked = None, 0
    for b in bodies:
        while time.monotonic() < stop_at:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
                conn.request("POST", "/api/vapi/webhook", body=b,
                             headers={"X-Vapi-Secret": SECRET,
                                      "Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    acked += 1
                    break
            except (OSError, http.client.HTTPException):
                pass
            if conn is not None:
                conn.close()
                conn = None
            time.sleep(0.1)
    if conn is not None:
        conn.close()
    return acked


def test_a_master_killed_mid_run_loses_no_acknowledged_webhook(tmp_root, pg_server, stack):
    tmp = os.path.join(tmp_root, "sentinel-%d" % free_port())
    master = Server(tmp, "master", [])
    replica = Server(tmp, "replica", ["--replicaof", "127.0.0.1", str(master.port)])
    conf = ["sentinel monitor %s 127.0.0.1 %d 2" % (MASTER, master.port),
            "sentinel down-after-milliseconds %s 3000" % MASTER,
            "sentinel failover-timeout %s 10000" % MASTER]
    sentinels = [Server(tmp, "sentinel-%d" % i, conf, sentinel=True) for i in range(3)]
    servers = [master, replica] + sentinels
    try:
        wait_until(lambda: replica.client().info("replication")["master_link_status"] == "up",
                   20, "the replica to sync")
        seed(stack.pg, ["org_a"])
        env = {"REDIS_SENTINELS": ",".join("127.0.0.1:%d" % s.port for s in sentinels),
               "REDIS_SENTINEL_MASTER": MASTER, "REDIS_URL": "redis://unused:1/0",
               "REDIS_TIMEOUT_MS": 1000}
        stack.start_ingest(INGEST_WAIT_REPLICAS=1, **env)
        w = stack.start_worker("w1", **env)

        bodies = [report(i) for i in range(N)]
        stop_at = time.monotonic() + 240
        killed = threading.Event()

        def killer():
            wait_until(lambda: master.client().xlen(STREAM) >= N // 3, 60, "a third posted")
            master.kill()
            killed.set()

        k = threading.Thread(target=killer)
        k.start()
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            acked = sum(ex.map(lambda i: post_retrying(stack.ingest_port, bodies[i::8],
                                                       stop_at), range(8)))
        k.join()
        assert killed.is_set() and acked == N

        # The sentinels promoted the replica; the old master comes back as its replica (so
        # that WAIT 1 can be met again and the spool drains).
        wait_until(lambda: all(master_port([x]) == replica.port for x in sentinels), 60,
                   "every sentinel to name the promoted replica")
        master.start()
        new = replica.client()

        def drained():
            g = [g for g in new.xinfo_groups(STREAM) if g["name"] in (GROUP, GROUP.encode())]
            return g and g[0]["pending"] == 0 and g[0]["lag"] == 0 and \
                stack.spool_entries() == 0
        try:
            wait_until(drained, 120, "the new master's group to be drained and the spool empty")
        except AssertionError:
            print("groups:", new.xinfo_groups(STREAM), "spool:", stack.spool_entries())
            print("ingest log:\n" + stack.ingest.output()[-4000:])
            print("worker log:\n" + w.output()[-4000:])
            print("master role:", master.client().execute_command("ROLE"),
                  "replica role:", new.execute_command("ROLE"))
            for sen in sentinels:
                events = [e for e in sen.proc.output().splitlines() if " +" in e or " -" in e]
                print(sen.name, events[-25:])
            raise
        wait_until(lambda: query(stack.pg, "SELECT count(*) FROM call_events")[0][0] >= N, 60,
                   "every webhook filed")
        assert query(stack.pg, "SELECT count(*), count(DISTINCT vapi_call_id) FROM calls") == \
            [(N, N)]
        assert query(stack.pg, "SELECT count(*) FROM call_events") == [(N,)]
        assert w.alive()  # the same worker process, never restarted, reads the new master
        assert b"w1" in [c["name"] if isinstance(c["name"], bytes) else c["name"].encode()
                         for c in new.xinfo_consumers(STREAM, GROUP)]
    finally:
        for s in reversed(servers):
            s.stop()


def test_sentinel_settings_are_checked_at_start(stack):
    r = stack.run_worker_cmd("status", REDIS_SENTINELS="127.0.0.1:1,nonsense")
    assert r.returncode != 0 and "REDIS_SENTINELS" in r.stderr
    r = stack.run_worker_cmd("status", REDIS_SENTINELS="127.0.0.1:26379")
    assert r.returncode != 0 and "REDIS_SENTINEL_MASTER" in r.stderr
