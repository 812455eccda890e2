"""call_events by month: the worker makes partitions ahead and drops whole months past
EVENT_RETENTION, and a retried delivery whose first copy sits in last month's partition is
still deduplicated. Real worker, real PostgreSQL."""

import datetime

from conftest import body, query, seed, wait_until


def month_start(d, back):
    """The first day of the month `back` months before d's."""
    k = d.year * 12 + d.month - 1 - back
    return datetime.date(k // 12, k % 12 + 1, 1)


def partitions(pg):
    return sorted(r[0] for r in query(
        pg, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'call_events'::regclass"))


def name(d):
    return "call_events_%04d_%02d" % (d.year, d.month)


def test_old_months_are_dropped_and_retries_still_deduplicated(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    today = datetime.datetime.now(datetime.timezone.utc).date()
    months = [month_start(today, k) for k in (3, 2, 1, 0)]
    conn = stack.pg.connect()
    with conn, conn.cursor() as cur:
        for i, m in enumerate(months):
            cur.execute("SELECT switchboard_event_partition(%s)", (m,))
            at = datetime.datetime(m.year, m.month, 15, tzinfo=datetime.timezone.utc)
            cur.execute("INSERT INTO call_events (vapi_call_id, organization_id, type, status,"
                        " dedupe_key, stream_id, received_at, created_at, part_month)"
                        " VALUES (%s, 'org_a', 'status-update', 'queued', 'queued', %s, %s,"
                        " %s, %s)", ("old-%d" % i, "1-%d" % i, at, at, m))
    conn.close()
    assert len(query(stack.pg, "SELECT 1 FROM call_events")) == 4

    retention = datetime.timedelta(days=45)
    stack.start_ingest()
    stack.start_worker("w1", EVENT_RETENTION="45d")
    now = datetime.datetime.now(datetime.timezone.utc)
    # A month goes once it ended longer ago than the retention.
    kept = [m for m in months
            if datetime.datetime.combine(month_start(m, -1), datetime.time(),
                                         datetime.timezone.utc) > now - retention]
    want = sorted({name(m) for m in kept} | {name(month_start(today, -k)) for k in (0, 1, 2)})
    wait_until(lambda: partitions(stack.pg) == want, 30, "the partitions %s" % want)
    assert len(kept) < len(months) and name(months[2]) in want  # some go, last month stays
    got = query(stack.pg, "SELECT vapi_call_id FROM call_events ORDER BY 1")
    assert got == [("old-%d" % months.index(m),) for m in kept]

    # The same status-update as the one stored last month: not stored again.
    again = body({"type": "status-update", "status": "queued", "timestamp": 5,
                  "call": {"id": "old-2", "type": "webCall", "assistantId": "asst_1"}})
    fresh = body({"type": "status-update", "status": "queued", "timestamp": 5,
                  "call": {"id": "new-1", "type": "webCall", "assistantId": "asst_1"}})
    for b in (again, fresh, fresh):
        assert stack.post(b)[0] == 200
    stack.wait_drained()
    assert query(stack.pg, "SELECT vapi_call_id, count(*) FROM call_events"
                 " WHERE vapi_call_id IN ('old-2', 'new-1') GROUP BY 1 ORDER BY 1") == \
        [("new-1", 1), ("old-2", 1)]
