"""INGEST_WAIT_AOF against a server that has WAITAOF (Redis 7.2 or later, or Valkey), running
with `appendfsync everysec`, the setting WAITAOF is for: ingest answers 200 only once the
entry is in the append-only file on disk, the spool re-drive removes an entry from the spool
only then, and a WAITAOF that fails sends the request to the spool and keeps it there.
(Debian 12's Redis 7.0 has no WAITAOF; test_ingest.py checks the fallback on it.)"""

import json
import os
import shutil
import threading
import time

import pytest

from conftest import STREAM, RedisServer, body, query, seed, stack_over, wait_until

T0 = 1767225600000


def waitaof_server():
    """A server binary with WAITAOF: $WAITAOF_SERVER, else valkey-server on PATH, else None."""
    for name in (os.environ.get("WAITAOF_SERVER"), "valkey-server"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


SERVER = waitaof_server()
pytestmark = pytest.mark.skipif(
    SERVER is None, reason="needs a server with WAITAOF (Redis 7.2+ or Valkey): set "
    "WAITAOF_SERVER, or on Debian 12 apt-get install -t bookworm-backports valkey-server")


@pytest.fixture
def wstack(request, tmp_root, pg_server):
    srv = RedisServer(tmp_root, binary=SERVER, name="waitaof-" + request.node.name,
                      appendfsync="everysec")
    try:
        assert srv.client().execute_command("COMMAND", "INFO", "WAITAOF"), \
            "%s has no WAITAOF" % SERVER
        yield from stack_over(tmp_root, srv, pg_server)
    finally:
        srv.stop()


def msg(i):
    return body({"type": "status-update", "status": "in-progress", "timestamp": T0 + i,
                 "call": {"id": "call-%05d" % i, "type": "webCall", "assistantId": "asst_1"}})


def test_acknowledged_after_the_fsync_and_kept_through_a_kill(wstack):
    seed(wstack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    p = wstack.start_ingest(INGEST_WAIT_AOF="true")
    r = wstack.redis.client()
    r.config_resetstat()
    answered, other = [], []

    def load(part):
        for i in range(part, 400, 16):
            st, b, _ = wstack.post(msg(i))
            ok = st == 200 and json.loads(b)["id"] != "spool"
            (answered if ok else other).append(i)

    threads = [threading.Thread(target=load, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not other, "answered other than 200 from Redis: %d" % len(other)
    stats = r.info("commandstats")
    xadds, waits = stats["cmdstat_xadd"]["calls"], stats["cmdstat_waitaof"]["calls"]
    print("400 XADDs confirmed by %d WAITAOFs" % waits)
    assert xadds == 400 and 1 <= waits <= 400
    assert "no WAITAOF" not in p.output()
    # Every answered entry was on disk before its 200: a SIGKILL right after loses none.
    wstack.redis.proc.p.kill()
    wstack.redis.proc.p.wait()
    wstack.redis.start()
    assert wstack.redis.client().xlen(STREAM) == 400
    wstack.start_worker("w1")
    wstack.wait_drained(60)
    assert query(wstack.pg, "SELECT count(*) FROM calls")[0][0] == 400


def test_a_failing_waitaof_spools_and_the_spool_keeps_the_entries(wstack):
    # With the append-only file off, XADD works but WAITAOF is refused: nothing is on disk in
    # Redis, so the requests are spooled (on disk here) and the re-drive leaves them in the
    # spool, however often it XADDs them, until WAITAOF confirms. The copies it added on
    # the way are filed once: the workers' writes are idempotent.
    seed(wstack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    p = wstack.start_ingest(INGEST_WAIT_AOF="true")
    wstack.start_worker("w1")
    r = wstack.redis.client()
    r.config_set("appendonly", "no")
    try:
        answers = [wstack.post(msg(i)) for i in range(5)]
        assert [a[0] for a in answers] == [200] * 5
        assert all(json.loads(a[1])["id"] == "spool" for a in answers)
        time.sleep(1)  # several re-drive passes, each refused
        assert wstack.spool_entries() == 5
        assert "WAITAOF" in p.output() and "stays in the spool" in p.output()
        assert r.xlen(STREAM) >= 5  # the XADDs themselves were taken
    finally:
        r.config_set("appendonly", "yes")
    wait_until(lambda: wstack.spool_entries() == 0, 30, "the spool to drain")
    wait_until(lambda: query(wstack.pg, "SELECT count(*) FROM calls")[0][0] == 5, 30,
               "the five calls to be filed")
    wstack.wait_drained(30)
    assert query(wstack.pg, "SELECT count(*), count(DISTINCT vapi_call_id) FROM calls") == \
        [(5, 5)]
    assert query(wstack.pg, "SELECT count(*) FROM call_events")[0][0] == 5
