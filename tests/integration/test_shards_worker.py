"""SWITCHBOARD_SHARDS on one Redis: workers read every shard in the one group, and the
operator commands (status, dlq, replay, drain) and the status page see all of them."""

import json
import time

from conftest import GROUP, STREAM, DEAD, body, query, seed, wait_until, free_port

SHARDS = 4


def shard(i):
    return "%s:{%d}" % (STREAM, i)


def dead(i):
    return "%s:{%d}" % (DEAD, i)


def report(call_id):
    return body({"type": "end-of-call-report", "endedReason": "customer-ended-call",
                 "call": {"id": call_id, "type": "webCall", "assistantId": "asst_1"}})


def put(r, i, raw, rid):
    return r.xadd(shard(i), {"body": raw, "received_at": str(int(time.time() * 1000)),
                             "request_id": rid, "source": "http"}).decode()


def settled(r):
    """Every shard's group has nothing left to deliver and nothing pending."""
    for i in range(SHARDS):
        groups = [g for g in r.xinfo_groups(shard(i)) if g["name"] in (GROUP, GROUP.encode())]
        if not groups or groups[0]["pending"] or groups[0]["lag"]:
            return False
    return True


def test_workers_file_every_shard_and_the_commands_see_them_all(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    r = stack.redis.client()
    for n in range(40):
        put(r, n % SHARDS, report("call-%02d" % n), "req-%02d" % n)
    bad = put(r, 2, b"{broken", "req-bad")
    metrics = free_port()
    stack.start_worker("w1", SWITCHBOARD_SHARDS=SHARDS)
    stack.start_worker("w2", SWITCHBOARD_SHARDS=SHARDS,
                       WORKER_METRICS_LISTEN="127.0.0.1:%d" % metrics)
    wait_until(lambda: settled(r), 60, "every shard drained")
    assert query(stack.pg, "SELECT count(*), count(DISTINCT vapi_call_id) FROM calls") == \
        [(40, 40)]
    # The malformed entry's dead letter is in its own shard's dead-letter stream.
    assert [f[b"original_id"].decode() for _, f in r.xrange(dead(2))] == [bad]
    assert all(r.xlen(dead(i)) == 0 for i in (0, 1, 3))
    assert not r.exists(STREAM), "the unsharded stream is not used"

    res = stack.run_worker_cmd("status", "--json", SWITCHBOARD_SHARDS=SHARDS)
    assert res.returncode == 0, res.stderr
    st = json.loads(res.stdout)
    assert (st["shards"], st["length"], st["dead_letters"], st["pending"], st["lag"]) == \
        (SHARDS, 41, 1, 0, 0)
    assert set(st["consumers"]) == {"w1", "w2"}
    page = json.loads(stack.http("GET", "/api/status", port=metrics)[1])
    assert page["health"]["redis"] is True
    assert (page["stream"]["shards"], page["stream"]["length"],
            page["dead_letters"]["count"]) == (SHARDS, 41, 1)
    assert [d["original_id"] for d in page["dead_letters"]["newest"]] == [bad]

    listed = stack.run_worker_cmd("dlq", "list", SWITCHBOARD_SHARDS=SHARDS)
    assert listed.returncode == 0 and "invalid JSON" in listed.stdout, listed.stdout
    dl_id = r.xrange(dead(2))[0][0].decode()
    shown = stack.run_worker_cmd("dlq", "show", dl_id, SWITCHBOARD_SHARDS=SHARDS)
    assert shown.returncode == 0 and "original_id: " + bad in shown.stdout, shown.stdout

    # A replay over every shard files the same rows again and changes none of them.
    before = query(stack.pg, "SELECT vapi_call_id, xmin::text FROM calls ORDER BY 1")
    since = str(int(time.time() * 1000) - 3600 * 1000)
    res = stack.run_worker_cmd("replay", "--since", since, SWITCHBOARD_SHARDS=SHARDS)
    assert res.returncode == 0, res.stderr
    assert "replayed 40 matching entries: 40 filed, 0 unrouted, 1 malformed" in res.stdout
    assert query(stack.pg, "SELECT vapi_call_id, xmin::text FROM calls ORDER BY 1") == before

    # New entries while no worker runs: drain files them from every shard.
    for p in list(stack.procs):
        p.stop()
        stack.procs.remove(p)
    for n in range(40, 48):
        put(r, n % SHARDS, report("call-%02d" % n), "req-%02d" % n)
    res = stack.run_worker_cmd("drain", "--timeout", "60s", SWITCHBOARD_SHARDS=SHARDS)
    assert res.returncode == 0 and "drained: lag 0, pending 0" in res.stdout, res.stdout
    assert query(stack.pg, "SELECT count(*) FROM calls") == [(48,)]

    res = stack.run_worker_cmd("dlq", "delete", dl_id, SWITCHBOARD_SHARDS=SHARDS)
    assert res.returncode == 0 and "deleted: 1, not found: 0" in res.stdout, res.stdout
    assert r.xlen(dead(2)) == 0


def test_sharded_names_may_not_carry_their_own_hash_tag(stack):
    res = stack.run_worker_cmd("status", SWITCHBOARD_SHARDS=2,
                               SWITCHBOARD_STREAM="sb:{x}:webhooks")
    assert res.returncode != 0
    assert "SWITCHBOARD_STREAM" in res.stderr and "hash tag" in res.stderr, res.stderr
    res = stack.run_worker_cmd("status", SWITCHBOARD_SHARDS=0)
    assert res.returncode != 0 and "SWITCHBOARD_SHARDS" in res.stderr, res.stderr
