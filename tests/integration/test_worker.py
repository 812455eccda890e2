"""The worker's own duties: migrations, pending entries first, outages, clean shutdown."""

import concurrent.futures
import glob
import os
import signal

from conftest import GROUP, ROOT, STREAM, body, query, seed, wait_until

CALL = {"id": "call-w", "type": "webCall", "assistantId": "asst_1"}


def msg(status, ts):
    return body({"type": "status-update", "status": status, "call": CALL, "timestamp": ts})


def test_migrate_is_idempotent_and_safe_concurrently(stack):
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda _: stack.run_worker_cmd("migrate"), range(4)))
    for r in results:
        assert r.returncode == 0, r.stderr
    versions = query(stack.pg, "SELECT version FROM schema_migrations")
    files = sorted(glob.glob(os.path.join(ROOT, "deploy", "sql", "*.sql")))
    assert len(files) >= 3
    assert sorted(versions) == [(os.path.basename(f)[:-4],) for f in files]


def test_pending_entries_of_a_killed_worker_are_processed_on_restart(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    r = stack.redis.client()
    r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    r.xadd(STREAM, {"body": msg("in-progress", 1), "received_at": "1", "source": "http"})
    # Delivered to w1 but never acknowledged: w1 "died" holding it.
    r.xreadgroup(GROUP, "w1", {STREAM: ">"}, count=10)
    assert r.xpending(STREAM, GROUP)["pending"] == 1
    stack.start_worker("w1")
    stack.wait_drained(30)
    assert query(stack.pg, "SELECT status FROM calls") == [("in-progress",)]


def test_postgres_outage_loses_nothing(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    stack.start_ingest()
    w = stack.start_worker("w1")
    assert stack.post(msg("queued", 1))[0] == 200
    stack.wait_drained(30)
    stack.pg.stop("fast")
    try:
        for i, s in enumerate(("ringing", "in-progress", "ended")):
            assert stack.post(msg(s, 10 + i))[0] == 200
        # Nothing can be committed, so nothing may be acknowledged.
        wait_until(lambda: stack.group_info()["pending"] >= 1 or
                   stack.group_info()["lag"] >= 1, 10, "entries to wait")
        assert not stack.drained()
    finally:
        stack.pg.start()
    stack.wait_drained(60)
    assert w.alive()
    assert query(stack.pg, "SELECT status FROM calls") == [("ended",)]
    assert query(stack.pg, "SELECT count(*) FROM call_events")[0][0] == 4


def test_sigterm_finishes_and_exits_zero(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    stack.start_ingest()
    w = stack.start_worker("w1")
    for i in range(50):
        assert stack.post(msg("in-progress", i))[0] == 200
    stack.wait_drained(30)
    assert w.stop(signal.SIGTERM) == 0
    assert '"worker w1 stopped"' in w.output()


def test_group_recreated_when_redis_loses_it(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    stack.start_ingest()
    w = stack.start_worker("w1")
    assert stack.post(msg("queued", 1))[0] == 200
    stack.wait_drained(30)
    stack.redis.client().delete(STREAM)  # as after a restart without persistence
    assert stack.post(msg("ringing", 2))[0] == 200
    wait_until(lambda: query(stack.pg, "SELECT status FROM calls") == [("ringing",)], 30,
               "the worker to re-create the group and process the new entry")
    assert "vanished" in w.output()


def test_a_backend_gone_before_a_large_batch_does_not_hang_the_worker(stack):
    """The worker's PostgreSQL backend is terminated while idle; then one batch arrives
    whose routing look-ups are too many for libpq's send buffer, so a send fails midway. The
    worker must notice, reconnect and file every message (it once read a result for every
    look-up, sent or not, and counted its pending results below zero)."""
    n = 1500
    seed(stack.pg, ["org_a"], assistants=[("asst_%04d" % i, "org_a") for i in range(n)])
    r = stack.redis.client()
    r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    w = stack.start_worker("w1", WORKER_BATCH=n, WORKER_BLOCK_MS=1000)
    r.xadd(STREAM, {"body": msg("queued", 1), "received_at": "1", "source": "http"})
    stack.wait_drained(30)
    killed = query(stack.pg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                   " WHERE datname = 'switchboard' AND pid <> pg_backend_pid()"
                   " AND application_name <> 'psql' AND backend_type = 'client backend'")
    assert killed and all(k[0] for k in killed)
    # All at once (one MULTI), so that the worker's next read takes them as one batch; each
    # names an assistant of its own, so no look-up is answered from the cache.
    p = r.pipeline(transaction=True)
    for i in range(n):
        call = {"id": "big-%04d" % i, "type": "webCall", "assistantId": "asst_%04d" % i}
        p.xadd(STREAM, {"body": body({"type": "status-update", "status": "queued",
                                      "call": call, "timestamp": 5}),
                        "received_at": "5", "source": "http"})
    p.execute()
    stack.wait_drained(60)
    assert w.alive()
    assert query(stack.pg, "SELECT count(*) FROM calls WHERE vapi_call_id LIKE %s",
                 ("big-%",)) == [(n,)]
