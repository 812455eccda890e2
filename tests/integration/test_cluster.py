"""Redis Cluster: ingest spreads webhooks over SWITCHBOARD_SHARDS streams on three masters,
workers read every shard, and a master SIGKILLed mid-run loses no acknowledged webhook once
its replica has taken over (INGEST_WAIT_REPLICAS=1). Real servers: six redis-server nodes
made a cluster by redis-cli --cluster create, PostgreSQL, our binaries. Part of
`make cluster-test` (its own CI phase), not of `make test`."""

import concurrent.futures
import json
import os
import threading
import time

import pytest
import redis as redislib

from conftest import GROUP, STREAM, query, seed, wait_until
from rcluster import redis_cluster  # noqa: F401 (the fixture)
from test_sentinel import post_retrying, report

pytestmark = pytest.mark.skipif(os.environ.get("SWITCHBOARD_CLUSTER_TESTS") != "1",
                                reason="cluster tests run in `make cluster-test`")

N = 10000
SHARDS = 8


def shard(i):
    return "%s:{%d}" % (STREAM, i)


def lengths(c):
    """Each shard's stream length, read off the master serving it now."""
    return [c.master_for_key(shard(i)).client().xlen(shard(i)) for i in range(SHARDS)]


def settled(c, stack):
    try:
        for i in range(SHARDS):
            m = c.master_for_key(shard(i)).client()
            g = [g for g in m.xinfo_groups(shard(i)) if g["name"] in (GROUP, GROUP.encode())]
            if not g or g[0]["pending"] or g[0]["lag"]:
                return False
    except (redislib.RedisError, OSError, AssertionError):
        return False  # a node restarting, or a view not yet agreed
    return stack.spool_entries() == 0


def test_webhooks_over_eight_shards_survive_a_master_kill(redis_cluster, stack):  # noqa: F811
    c = redis_cluster
    seed(stack.pg, ["org_a"])
    env = {"REDIS_CLUSTER": c.seeds(), "REDIS_URL": "redis://unused:1/0",
           "SWITCHBOARD_SHARDS": SHARDS, "REDIS_TIMEOUT_MS": 1000}
    # The shards' slots spread over all three masters.
    owners = {c.master_for_key(shard(i)).port for i in range(SHARDS)}
    assert len(owners) == 3
    stack.start_ingest(INGEST_WAIT_REPLICAS=1, **env)
    workers = [stack.start_worker("w%d" % k, **env) for k in (1, 2)]

    bodies = [report(i) for i in range(N)]
    victim = c.master_for_key(shard(0))
    killed = threading.Event()

    def killer():
        wait_until(lambda: sum(lengths(c)) >= N // 3, 120, "a third posted")
        c.kill(victim)
        killed.set()

    k = threading.Thread(target=killer)
    k.start()
    stop_at = time.monotonic() + 300
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        acked = sum(ex.map(lambda i: post_retrying(stack.ingest_port, bodies[i::8], stop_at),
                           range(8)))
    k.join()
    assert killed.is_set() and acked == N

    new = c.wait_failover(victim)
    assert new is not victim
    # The old master comes back as a replica of the new one, so that WAIT 1 is met again on
    # its shards and the spool drains.
    victim.start()
    try:
        wait_until(lambda: settled(c, stack), 180,
                   "every shard's group drained and the spool empty")
    except AssertionError:
        print("lengths:", lengths(c), "spool:", stack.spool_entries())
        print("ingest log:\n" + stack.ingest.output()[-4000:])
        for w in workers:
            print(w.name, "log:\n" + w.output()[-3000:])
        raise
    wait_until(lambda: query(stack.pg, "SELECT count(*) FROM call_events")[0][0] >= N, 120,
               "every webhook filed")
    assert query(stack.pg, "SELECT count(*), count(DISTINCT vapi_call_id) FROM calls") == \
        [(N, N)]
    assert query(stack.pg, "SELECT count(*) FROM call_events") == [(N,)]
    assert all(n > 0 for n in lengths(c)), lengths(c)  # every shard was used
    assert all(w.alive() for w in workers)  # the same processes read the new master

    res = stack.run_worker_cmd("status", "--json", **env)
    assert res.returncode == 0, res.stderr
    st = json.loads(res.stdout)
    assert st["shards"] == SHARDS and st["pending"] == 0 and st["lag"] == 0
    assert st["length"] == sum(lengths(c)) >= N


def put(c, i, n0, n):
    m = c.master_for_key(shard(i)).client()
    for k in range(n0, n0 + n):
        m.xadd(shard(i), {"body": report(k), "received_at": str(int(time.time() * 1000)),
                          "request_id": "req-%d" % k, "source": "http"})


def begin_migration(c, i, dest):
    """Marks shard i's slot migrating to dest and moves its keys there: its old master then
    answers ASK for them. Returns (source, slot)."""
    slot = c.keyslot(shard(i))
    src = c.master_for_key(shard(i))
    dest.call("CLUSTER", "SETSLOT", slot, "IMPORTING", src.id)
    src.call("CLUSTER", "SETSLOT", slot, "MIGRATING", dest.id)
    keys = src.client().execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
    src.client().execute_command("MIGRATE", "127.0.0.1", dest.port, "", 0, 5000, "KEYS", *keys)
    return src, slot


def end_migration(c, slot, dest):
    """Hands the slot to dest on every master, dest first (as redis-cli --cluster does)."""
    for n in [dest] + [n for n in c.nodes if n is not dest]:
        if n.alive() and n.client().info("replication")["role"] == "master":
            n.call("CLUSTER", "SETSLOT", slot, "NODE", dest.id)


def test_workers_and_commands_follow_moved_and_ask(redis_cluster, stack):  # noqa: F811
    c = redis_cluster
    seed(stack.pg, ["org_a"])
    env = {"REDIS_CLUSTER": c.seeds(), "REDIS_URL": "redis://unused:1/0",
           "SWITCHBOARD_SHARDS": 4, "REDIS_TIMEOUT_MS": 1000}
    for i in range(4):
        put(c, i, i * 100, 20)
    w = stack.start_worker("w1", **env)
    filed = lambda n: query(stack.pg, "SELECT count(*) FROM calls")[0][0] == n  # noqa: E731
    wait_until(lambda: filed(80), 60, "the first 80 filed")

    # ASK: shard 1's keys are on another master while its slot is still migrating. One-shot
    # commands (status) follow the ASK; the worker's pipelined acknowledgement cannot, so
    # its entries wait pending until the slot is handed over and MOVED sends it there.
    masters = {c.master_for_key(shard(i)).port for i in range(4)}
    src1 = c.master_for_key(shard(1))
    dest = next(c.node(p) for p in masters if p != src1.port)
    _, slot = begin_migration(c, 1, dest)
    put_on = dest.client()
    for k in range(500, 510):  # written where the keys are now, as a client following ASK would
        put_on.execute_command("ASKING")
        put_on.xadd(shard(1), {"body": report(k), "received_at": str(int(time.time() * 1000)),
                               "request_id": "req-%d" % k, "source": "http"})
    res = stack.run_worker_cmd("status", "--json", **env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["length"] == 90
    end_migration(c, slot, dest)
    assert c.master_for_key(shard(1)) is dest
    wait_until(lambda: filed(90), 60, "shard 1's new entries filed after the slot moved")

    # MOVED: the worker's connection to shard 1's old master is told the slot lives elsewhere
    # and reconnects to the new one, without a restart.
    put(c, 1, 600, 10)
    wait_until(lambda: filed(100), 60, "entries written to the new master filed")
    assert w.alive()
    res = stack.run_worker_cmd("status", "--json", **env)
    st = json.loads(res.stdout)
    assert (st["length"], st["pending"], st["lag"]) == (100, 0, 0), st
