"""Ingest over SWITCHBOARD_SHARDS streams on one redis-server: webhooks spread round-robin over
switchboard:webhooks:{0}..{N-1}, and a shard that refuses writes costs no webhook: its breaker
sends the next requests to the other shards, and the few it refused are spooled and re-driven
into the others."""

import json
import re

from conftest import STREAM, post_lists, stack, wait_until  # noqa: F401 (fixture)

SHARDS = 4
N = 200


def shard(i):
    return "%s:{%d}" % (STREAM, i)


def bodies(n, tag):
    return [json.dumps({"message": {"type": "status-update", "status": "in-progress",
                                    "call": {"id": "%s-%03d" % (tag, i)}}}).encode()
            for i in range(n)]


def metric(stack, name):
    """{labels: value} of one metric family in ingest's /metrics."""
    out = {}
    for line in stack.admin("/metrics")[1].decode().splitlines():
        m = re.match(r"^%s(\{[^}]*\})? (\d+)$" % re.escape(name), line)
        if m:
            out[m.group(1) or ""] = int(m.group(2))
    return out


def entries(stack, i):
    """[(body, source)] of shard i's stream."""
    return [(f[b"body"], f[b"source"]) for _, f in stack.redis.client().xrange(shard(i))]


def post_all(stack, sent, threads=4):
    results = post_lists(stack, [sent[i::threads] for i in range(threads)], threads=threads)
    assert sorted(s for _, s, _ in results) == [200] * len(sent)


def test_webhooks_spread_over_every_shard_each_once(stack):
    stack.start_ingest(SWITCHBOARD_SHARDS=SHARDS)
    sent = bodies(N, "spread")
    post_all(stack, sent)

    per_shard = [entries(stack, i) for i in range(SHARDS)]
    assert all(len(e) > 0 for e in per_shard), [len(e) for e in per_shard]
    got = [b for e in per_shard for b, _ in e]
    assert len(got) == N and sorted(got) == sorted(sent)
    assert stack.redis.client().exists(STREAM) == 0
    xadds = metric(stack, "switchboard_ingest_xadd_total")
    assert sorted(xadds) == ['{shard="%d"}' % i for i in range(SHARDS)]
    assert sum(xadds.values()) == N
    assert metric(stack, "switchboard_ingest_spooled_total") == {"": 0}


def test_a_shard_refusing_writes_costs_no_webhook(stack):
    # XADD to shard 2 fails with WRONGTYPE while its connection stays up.
    r = stack.redis.client()
    r.set(shard(2), "not a stream")
    stack.start_ingest(SWITCHBOARD_SHARDS=SHARDS)
    sent = bodies(N, "refused")
    post_all(stack, sent)

    wait_until(lambda: stack.spool_entries() == 0, 20, "the spool to be re-driven")
    spooled = metric(stack, "switchboard_ingest_spooled_total")[""]
    # Only what shard 2 refused went to the spool: its breaker kept the requests after each
    # refusal on the other shards (with no breaker a quarter would be spooled; with one
    # breaker for all shards, all of them while it is open).
    assert 1 <= spooled < N // SHARDS // 2, spooled
    assert metric(stack, "switchboard_ingest_redriven_total")[""] == spooled

    assert r.type(shard(2)) == b"string"
    per_shard = {i: entries(stack, i) for i in (0, 1, 3)}
    got = [b for e in per_shard.values() for b, _ in e]
    assert len(got) == N and sorted(got) == sorted(sent)  # each exactly once
    sources = [src for e in per_shard.values() for _, src in e]
    assert sources.count(b"spool") == spooled and sources.count(b"http") == N - spooled
    assert "refused" in stack.ingest.output() and shard(2) in stack.ingest.output()
