"""Workers that lose nothing: poison messages, dead consumers, delivery limits, re-routing,
retention, and the operator commands (drain, replay, status, dlq)."""

import json
import time
import urllib.request

from conftest import (DEAD, GROUP, STREAM, body, free_port, query, seed, wait_until)

T0 = 1767225600000


def web(cid, status="in-progress", asst="asst_1", ts=None, **extra):
    m = {"type": "status-update", "status": status, "timestamp": ts or T0,
         "call": {"id": cid, "type": "webCall", "assistantId": asst}}
    m.update(extra)
    return body(m)


def xadd(stack, raw):
    return stack.redis.client().xadd(STREAM, {"body": raw, "received_at": str(T0),
                                              "source": "http"}).decode()


def test_message_postgres_rejects_is_isolated_and_dead_lettered(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    good = [web("call-%d" % i) for i in range(20)]
    # A rule of the SaaS's own schema rejects this one row; the batch must still commit.
    conn = stack.pg.connect()
    with conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE calls ADD CONSTRAINT no_test_calls "
                    "CHECK (vapi_call_id NOT LIKE 'call-bad%')")
    conn.close()
    bad = web("call-bad")
    r = stack.redis.client()
    r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    ids = [xadd(stack, b) for b in good[:10] + [bad] + good[10:]]
    stack.start_worker("w1", WORKER_BATCH=100)
    stack.wait_drained(30)
    assert query(stack.pg, "SELECT count(*) FROM calls")[0][0] == 20
    [(dead_id, f)] = r.xrange(DEAD)
    assert f[b"original_id"].decode() == ids[10]
    assert f[b"body"] == bad
    assert b"no_test_calls" in f[b"reason"] and f[b"attempts"] == b"1"


def test_killed_worker_entries_are_taken_over(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    r = stack.redis.client()
    r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    for i in range(5):
        xadd(stack, web("call-k%d" % i))
    # "ghost" read them and died before acknowledging.
    r.xreadgroup(GROUP, "ghost", {STREAM: ">"}, count=10)
    w = stack.start_worker("w1", WORKER_CLAIM_IDLE="1s")
    stack.wait_drained(30)
    assert query(stack.pg, "SELECT count(*) FROM calls")[0][0] == 5
    assert "took over 5 entries" in w.output()
    # A clean stop removes the consumer; the ghost stays (it still exists in the group
    # with nothing pending) until an operator removes it.
    w.stop()
    names = {c["name"] for c in r.xinfo_consumers(STREAM, GROUP)}
    assert b"w1" not in names and "w1" not in names


def test_entry_delivered_too_often_is_dead_lettered(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    r = stack.redis.client()
    r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    eid = xadd(stack, web("call-poison"))
    r.xreadgroup(GROUP, "ghost", {STREAM: ">"}, count=1)
    for _ in range(5):  # five more deliveries, as if five workers crashed on it
        r.xclaim(STREAM, GROUP, "ghost", 0, [eid])
    stack.start_worker("w1", WORKER_CLAIM_IDLE="1s", WORKER_MAX_DELIVERIES=5)
    stack.wait_drained(30)
    [(_, f)] = r.xrange(DEAD)
    assert f[b"original_id"].decode() == eid
    assert f[b"reason"].startswith(b"max deliveries")
    assert int(f[b"attempts"]) == 7
    assert query(stack.pg, "SELECT count(*) FROM calls")[0][0] == 0


def test_reroute_files_parked_messages_once_mapping_appears(stack):
    seed(stack.pg, ["org_a", "org_b"])
    stack.start_ingest()
    stack.start_worker("w1", WORKER_REROUTE_INTERVAL="0")
    for i in range(3):
        assert stack.post(web("call-r%d" % i, asst="asst_new", ts=T0 + i))[0] == 200
    assert stack.post(web("call-x", asst="asst_never"))[0] == 200
    stack.wait_drained(30)
    assert query(stack.pg, "SELECT count(*) FROM unrouted_messages")[0][0] == 4
    seed(stack.pg, assistants=[("asst_new", "org_b")])
    r = stack.run_worker_cmd("reroute")
    assert r.returncode == 0, r.stderr
    assert "3 filed, 1 still unrouted" in r.stdout
    assert query(stack.pg, "SELECT count(*) FROM calls WHERE organization_id = 'org_b'") \
        == [(3,)]
    assert query(stack.pg, "SELECT count(*) FROM call_events")[0][0] == 3
    [(reason,)] = query(stack.pg, "SELECT reason FROM unrouted_messages")
    assert "asst_never" in reason


def test_worker_reroutes_on_its_own(stack):
    seed(stack.pg, ["org_a"])
    stack.start_ingest()
    stack.start_worker("w1", WORKER_REROUTE_INTERVAL="500ms")
    assert stack.post(web("call-auto", asst="asst_late"))[0] == 200
    stack.wait_drained(30)
    seed(stack.pg, assistants=[("asst_late", "org_a")])
    wait_until(lambda: query(stack.pg, "SELECT count(*) FROM calls")[0][0] == 1, 20,
               "the periodic re-route")
    assert query(stack.pg, "SELECT count(*) FROM unrouted_messages")[0][0] == 0


def test_trim_keeps_retention_and_never_passes_a_pending_entry(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    r = stack.redis.client()
    r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    old = [xadd(stack, web("call-t%d" % i)) for i in range(5)]
    r.xreadgroup(GROUP, "w0", {STREAM: ">"}, count=5)
    r.xack(STREAM, GROUP, *old)
    held = xadd(stack, web("call-held"))
    r.xreadgroup(GROUP, "ghost", {STREAM: ">"}, count=1)  # pending for a long time
    later = [xadd(stack, web("call-l%d" % i)) for i in range(5)]
    stack.start_worker("w1", SWITCHBOARD_RETENTION="0", WORKER_TRIM_INTERVAL="300ms",
                       WORKER_CLAIM_IDLE="1h")
    wait_until(lambda: r.xlen(STREAM) == 6, 20, "the trim")
    time.sleep(1)
    ids = [e[0].decode() for e in r.xrange(STREAM)]
    assert ids == [held] + later, "trimmed past the oldest pending entry"
    # With a long retention nothing acknowledged recently is trimmed.
    stack.stop_all()
    stack.start_worker("w2", SWITCHBOARD_RETENTION="72h", WORKER_TRIM_INTERVAL="300ms",
                       WORKER_CLAIM_IDLE="1h")
    time.sleep(1.5)
    assert r.xlen(STREAM) == 6


def test_drain_finishes_and_times_out_with_what_is_left(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    r = stack.redis.client()
    r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    for i in range(30):
        xadd(stack, web("call-d%d" % i))
    res = stack.run_worker_cmd("drain", "--timeout", "60s")
    assert res.returncode == 0, res.stderr
    assert "drained" in res.stdout
    assert query(stack.pg, "SELECT count(*) FROM calls")[0][0] == 30
    assert stack.drained()
    xadd(stack, web("call-stuck"))
    r.xreadgroup(GROUP, "ghost", {STREAM: ">"}, count=1)
    res = stack.run_worker_cmd("drain", "--timeout", "1s", WORKER_CLAIM_IDLE="1h")
    assert res.returncode == 1
    assert "pending 1" in res.stdout
    res = stack.run_worker_cmd("drain", "--timeout", "1s", "--bogus")
    assert res.returncode == 2 and "--bogus" in res.stderr


def test_replay_dry_run_counts_and_replay_changes_nothing(stack):
    seed(stack.pg, ["org_a", "org_b"], assistants=[("asst_1", "org_a"), ("asst_2", "org_b")])
    stack.start_ingest()
    stack.start_worker("w1")
    for i in range(6):
        assert stack.post(web("call-p%d" % i, asst="asst_1" if i % 3 else "asst_2"))[0] == 200
    assert stack.post(body({"type": "end-of-call-report", "endedReason": "x",
                            "call": {"id": "call-p0", "type": "webCall",
                                     "assistantId": "asst_2"}}))[0] == 200
    assert stack.post(b"garbage")[0] == 200
    stack.wait_drained(30)
    before = query(stack.pg, "SELECT *, xmin::text FROM calls ORDER BY vapi_call_id")
    events = query(stack.pg, "SELECT *, xmin::text FROM call_events ORDER BY id")
    res = stack.run_worker_cmd("replay", "--since", "2020-01-01T00:00:00Z", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "dry run: 7 of 8 entries match, 1 malformed" in res.stdout
    lines = {tuple(line.split()) for line in res.stdout.splitlines()[1:]}
    assert ("status-update", "org_a", "4") in lines
    assert ("status-update", "org_b", "2") in lines
    assert ("end-of-call-report", "org_b", "1") in lines
    res = stack.run_worker_cmd("replay", "--since", "0", "--org", "org_b", "--dry-run")
    assert "dry run: 3 of 8 entries match" in res.stdout
    res = stack.run_worker_cmd("replay", "--since", "0", "--type", "end-of-call-report")
    assert res.returncode == 0 and "replayed 1 matching" in res.stdout, res.stdout
    res = stack.run_worker_cmd("replay", "--since", "0")
    assert res.returncode == 0 and "replayed 7 matching" in res.stdout, res.stdout
    assert "1 malformed" in res.stdout
    assert query(stack.pg, "SELECT *, xmin::text FROM calls ORDER BY vapi_call_id") == before
    assert query(stack.pg, "SELECT *, xmin::text FROM call_events ORDER BY id") == events
    assert stack.redis.client().xlen(DEAD) == 1  # replay does not dead-letter again
    assert stack.run_worker_cmd("replay").returncode == 2
    assert stack.run_worker_cmd("replay", "--since", "yesterday").returncode == 2


def test_dlq_list_show_redrive_purge(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    stack.start_ingest()
    w = stack.start_worker("w1")
    for raw in (b"{broken", b'{"message": {}}'):
        assert stack.post(raw)[0] == 200
    stack.wait_drained(30)
    res = stack.run_worker_cmd("dlq", "list")
    assert res.returncode == 0
    rows = res.stdout.splitlines()[1:]
    assert len(rows) == 2 and "invalid JSON" in rows[0] and "no message.type" in rows[1]
    first = rows[0].split()[0]
    res = stack.run_worker_cmd("dlq", "show", first)
    assert "body: {broken" in res.stdout and "reason: invalid JSON" in res.stdout
    # Garbage would only be dead-lettered again: redrive leaves it where it is and says so.
    res = stack.run_worker_cmd("dlq", "redrive", first)
    assert res.returncode == 1 and "left malformed: 1" in res.stdout
    assert "dlq edit " + first in res.stderr
    dead = stack.redis.client().xrange(DEAD)
    assert len(dead) == 2 and first in [d[0].decode() for d in dead]
    res = stack.run_worker_cmd("dlq", "purge", "--before", str(int(time.time() * 1000) + 1000))
    assert res.returncode == 0 and "purged: 2" in res.stdout
    assert stack.redis.client().xlen(DEAD) == 0
    assert stack.run_worker_cmd("dlq", "show", "1-1").returncode == 1
    assert w.alive()


def test_status_and_worker_metrics(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    port = free_port()
    stack.start_ingest()
    stack.start_worker("w1", WORKER_METRICS_LISTEN="127.0.0.1:%d" % port)
    assert stack.post(web("call-s1"))[0] == 200
    assert stack.post(web("call-s2", asst="asst_nope"))[0] == 200
    assert stack.post(b"nope")[0] == 200
    stack.wait_drained(30)
    res = stack.run_worker_cmd("status", "--json")
    assert res.returncode == 0, res.stderr
    st = json.loads(res.stdout)
    assert st["length"] == 3 and st["lag"] == 0 and st["pending"] == 0
    assert st["dead_letters"] == 1 and st["unrouted"] == 1
    assert "w1" in st["consumers"]
    res = stack.run_worker_cmd("status")
    assert "group workers: lag 0, none pending, last delivered " in res.stdout
    assert "unrouted: 1 (oldest " in res.stdout
    url = "http://127.0.0.1:%d" % port
    wait_until(lambda: b"switchboard_worker_unrouted_messages 1" in
               urllib.request.urlopen(url + "/metrics").read(), 15, "the gauges")
    text = urllib.request.urlopen(url + "/metrics").read().decode()
    assert 'switchboard_worker_messages_total{outcome="filed"} 1' in text
    assert 'switchboard_worker_messages_total{outcome="unrouted"} 1' in text
    assert 'switchboard_worker_messages_total{outcome="dead"} 1' in text
    assert urllib.request.urlopen(url + "/readyz").status == 200
    assert urllib.request.urlopen(url + "/healthz").status == 200
