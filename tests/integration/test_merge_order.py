"""A call's row is a function of the set of its messages, not of their arrival order: real
ingest, real workers, real redis-server and PostgreSQL. Every order of one call's six messages
gives the same row; duplicates, replays and two workers racing change nothing."""

import datetime
import glob
import itertools
import json
import os
import random

from conftest import ROOT, body, post_lists, query, reset_database, seed, stack_over

ORG = "org_merge"
T0 = 1767225600000  # 2026-01-01T00:00:00Z in ms

# Every column of calls that the merge decides (id, vapi_call_id and the times the database
# stamps are left out: they differ by construction).
COLUMNS = ["organization_id", "routed_by", "call_type", "status", "customer_number",
           "phone_number_id", "assistant_id", "started_at", "ended_at", "ended_reason", "cost",
           "transcript", "recording_url", "summary", "report::text", "metadata::text",
           "duration_seconds", "structured_data::text", "success_evaluation",
           "merge_stamps::text"]


def iso(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc) \
        .isoformat(timespec="milliseconds").replace("+00:00", "Z")


def call_messages(cid, t=T0):
    """One call's six messages, built so that each precedence rule decides some column:
    the report's ended_reason and metadata beat the ended status-update's; the ended
    status-update's customer number beats the earlier status-updates' and the later
    transcript's; between status-updates the later timestamp sets assistant_id; the
    transcript and the conversation-update share a timestamp, so the larger phone number id
    wins."""
    def call(lead, **extra):
        c = {"id": cid, "type": "outboundPhoneCall",
             "metadata": {"organizationId": ORG, "leadId": lead}}
        c.update(extra)
        return c

    queued = {"type": "status-update", "status": "queued", "timestamp": t + 1000,
              "call": call("lead-1", assistantId="asst-queued"),
              "customer": {"number": "+15550000001"}}
    progress = {"type": "status-update", "status": "in-progress", "timestamp": iso(t + 2000),
                "call": call("lead-2", assistantId="asst-progress"),
                "customer": {"number": "+15550000002"}}
    ended = {"type": "status-update", "status": "ended", "timestamp": t + 60000,
             "endedReason": "customer-ended-call", "call": call("lead-3"),
             "customer": {"number": "+15550000003"}}
    transcript = {"type": "transcript", "role": "user", "transcriptType": "final",
                  "transcript": "just one remark", "timestamp": t + 30000,
                  "call": call("lead-t", phoneNumberId="pn-b"),
                  "customer": {"number": "+15550000009"}}
    conversation = {"type": "conversation-update", "timestamp": t + 30000,
                    "messages": [{"role": "user", "message": "hi"}],
                    "call": call("lead-c", phoneNumberId="pn-a"),
                    "customer": {"number": "+15550000008"}}
    report = {"type": "end-of-call-report", "timestamp": t + 61000,
              "endedReason": "assistant-ended-call", "startedAt": iso(t + 500),
              "endedAt": iso(t + 59750), "cost": 0.1234, "call": call("lead-final"),
              "artifact": {"transcript": "AI: Hello\nUser: Bye",
                           "recordingUrl": "https://rec.example/%s.wav" % cid},
              "analysis": {"summary": "A short call.",
                           "structuredData": {"intent": "buy", "score": 7},
                           "successEvaluation": True}}
    return [body(m) for m in (queued, progress, ended, transcript, conversation, report)]


def post_calls(stack, per_call, threads=8):
    """Posts each call's bodies in their given order (each call on one connection, so its
    order reaches the stream); returns {body: [X-Request-Id, ...]}."""
    out = {}
    for b, status, rid in post_lists(stack, per_call, threads):
        assert status == 200, status
        out.setdefault(b, []).append(rid)
    return out


def rows(stack, like):
    """{vapi_call_id: (columns..., with the call id replaced by CALL)} for calls LIKE like."""
    got = query(stack.pg, "SELECT vapi_call_id, %s FROM calls WHERE vapi_call_id LIKE %%s"
                % ", ".join(COLUMNS), (like,))
    return {r[0]: tuple(v.replace(r[0], "CALL") if isinstance(v, str) else v for v in r[1:])
            for r in got}


def versions(stack, like):
    """{vapi_call_id: (xmin, updated_at)}: a new row version changes both."""
    return {r[0]: (r[1], r[2]) for r in query(
        stack.pg, "SELECT vapi_call_id, xmin::text, updated_at FROM calls"
        " WHERE vapi_call_id LIKE %s", (like,))}


def check_expected(row):
    """The values the rule (README "How calls is merged") gives for call_messages()."""
    r = dict(zip([c.split("::")[0] for c in COLUMNS], row))
    assert r["organization_id"] == ORG and r["routed_by"] == "metadata"
    assert r["status"] == "ended" and r["call_type"] == "outboundPhoneCall"
    assert r["ended_reason"] == "assistant-ended-call"  # report beats status-update ended
    assert json.loads(r["metadata"]) == {"organizationId": ORG, "leadId": "lead-final"}
    assert r["customer_number"] == "+15550000003"  # status ended beats status, transcript
    assert r["assistant_id"] == "asst-progress"  # later of two status-updates
    assert r["phone_number_id"] == "pn-b"  # same precedence and timestamp: larger value
    assert str(r["duration_seconds"]) == "59.250"
    assert json.loads(r["structured_data"]) == {"intent": "buy", "score": 7}
    assert r["success_evaluation"] == "true"
    assert r["transcript"] == "AI: Hello\nUser: Bye" and r["summary"] == "A short call."
    assert str(r["cost"]) == "0.1234"


def test_every_order_of_a_calls_messages_gives_the_same_row(stack):
    seed(stack.pg, [ORG])
    stack.start_ingest()
    stack.start_worker("w1")
    perms = list(itertools.permutations(range(6)))
    assert len(perms) == 720
    per_call = []
    for n, order in enumerate(perms):
        msgs = call_messages("perm-%03d" % n)
        per_call.append([msgs[i] for i in order])
    rids = post_calls(stack, per_call)
    stack.wait_drained()

    first = rows(stack, "perm-%")
    assert len(first) == 720
    distinct = set(first.values())
    assert len(distinct) == 1, "%d different rows for one set of messages" % len(distinct)
    check_expected(next(iter(distinct)))
    before = versions(stack, "perm-%")

    # A duplicate delivery of one message, then a replay of the first: nothing changes, not
    # even the row version.
    again = []
    for n, order in enumerate(perms):
        msgs = call_messages("perm-%03d" % n)
        again.append([msgs[order[n % 6]], msgs[order[0]]])
    post_calls(stack, again)
    stack.wait_drained()
    assert rows(stack, "perm-%") == first
    assert versions(stack, "perm-%") == before

    # Each stored event leads back to the request id its sender got.
    report = call_messages("perm-000")[5]
    got = query(stack.pg, "SELECT request_id FROM call_events WHERE vapi_call_id = 'perm-000'"
                " AND type = 'end-of-call-report'")
    assert [r[0] for r in got] == rids[report][:1]


def test_two_workers_and_shuffled_deliveries_match_one_ordered_run(stack):
    seed(stack.pg, [ORG])
    stack.start_ingest()
    w = stack.start_worker("ordered")
    ordered = [call_messages("ord-%03d" % i, T0 + i * 100000) for i in range(100)]
    post_calls(stack, ordered, threads=1)
    stack.wait_drained()
    stack.stop_all()
    assert not w.alive()

    stack.start_ingest()
    stack.start_worker("w1", WORKER_BATCH=7)
    stack.start_worker("w2", WORKER_BATCH=13)
    rng = random.Random(12)
    deliveries = [b for i in range(100) for b in call_messages("shuf-%03d" % i, T0 + i * 100000)]
    deliveries += rng.sample(deliveries, 120)  # retried deliveries
    rng.shuffle(deliveries)
    # Each delivery on a thread of its own choosing: no order holds across or within calls.
    post_calls(stack, [[b] for b in deliveries], threads=8)
    stack.wait_drained()

    want = {k.replace("ord-", ""): v for k, v in rows(stack, "ord-%").items()}
    got = {k.replace("shuf-", ""): v for k, v in rows(stack, "shuf-%").items()}
    assert len(want) == 100 and got == want
    for row in got.values():
        check_expected(row)

    # Replaying the whole stream files every message again and changes no row.
    before = versions(stack, "shuf-%")
    r = stack.run_worker_cmd("replay", "--since", "2000-01-01T00:00:00Z")
    assert r.returncode == 0, r.stderr
    assert "replayed" in (r.stdout + r.stderr)
    assert versions(stack, "shuf-%") == before
    assert rows(stack, "shuf-%") == {"shuf-" + k: v for k, v in got.items()}


def test_existing_rows_are_backfilled_from_their_report(tmp_root, redis_server, pg_server):
    """A database at the schema before merge stamps, with a row whose ended_reason a late
    status-update replaced: the migration takes the new columns (and ended_reason) from the
    report, and later messages merge by the rule."""
    redis_server.client().flushall()
    reset_database(pg_server)
    conn = pg_server.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE schema_migrations (version text PRIMARY KEY,"
                    " applied_at timestamptz NOT NULL DEFAULT now())")
        for name in ("0001_init", "0002_lz4"):
            with open(os.path.join(ROOT, "deploy", "sql", name + ".sql")) as f:
                cur.execute(f.read())
            cur.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (name,))
    conn.close()
    seed(pg_server, [ORG, "org_phone"], phones=[("pn-in", "org_phone")])
    report = json.loads(call_messages("old-1")[5])["message"]
    report["call"]["assistantOverrides"] = {"metadata": {"organizationId": ORG, "leadId": "L9"}}
    conn = pg_server.connect()
    with conn, conn.cursor() as cur:
        cur.execute("INSERT INTO calls (vapi_call_id, organization_id, call_type, status,"
                    " started_at, ended_at, ended_reason, cost, report) VALUES"
                    " ('old-1', %s, 'outboundPhoneCall', 'ended', %s, %s,"
                    " 'customer-ended-call', 0.1234, %s)",
                    (ORG, iso(T0 + 500), iso(T0 + 59750), json.dumps(report)))
        cur.execute("INSERT INTO calls (vapi_call_id, organization_id, call_type, status,"
                    " phone_number_id) VALUES ('old-2', 'org_phone', 'inboundPhoneCall',"
                    " 'in-progress', 'pn-in')")
    conn.close()
    yield_stack = stack_over(tmp_root, redis_server, pg_server, reset=False)
    stack = next(yield_stack)
    try:
        got = query(pg_server, "SELECT vapi_call_id, ended_reason, routed_by, metadata::text,"
                    " duration_seconds::text, structured_data::text, success_evaluation,"
                    " merge_stamps::text FROM calls ORDER BY vapi_call_id")
        stamp = "3%015d" % (T0 + 61000)
        assert got[0][:7] == ("old-1", "assistant-ended-call", "metadata",
                              json.dumps({"leadId": "L9", "organizationId": ORG}), "59.250",
                              json.dumps({"score": 7, "intent": "buy"}), "true")
        # Slots 10-12 (transcript, recording, summary) were never filled in that row.
        assert got[0][7] == "{0,0,NULL,NULL,NULL,%s,NULL,NULL,NULL,%s}" % (
            ",".join([stamp] * 4), ",".join([stamp] * 5))
        assert got[1][1:3] == (None, "phone_number")
        assert got[1][7] == "{0,0,NULL,0,%s}" % ",".join(["NULL"] * 13)

        # Later messages merge by the rule: the ended status-update cannot replace the
        # report's ended_reason; the report delivered again sets what it carries.
        stack.start_ingest()
        stack.start_worker("w1")
        msgs = call_messages("old-1")
        for b in (msgs[2], msgs[5]):
            assert stack.post(b)[0] == 200
        stack.wait_drained()
        got = query(pg_server, "SELECT ended_reason, metadata::text, customer_number"
                    " FROM calls WHERE vapi_call_id = 'old-1'")
        assert got == [("assistant-ended-call",
                        json.dumps({"leadId": "lead-final", "organizationId": ORG}),
                        "+15550000003")]
    finally:
        next(yield_stack, None)


def test_real_samples_fill_the_new_columns(stack):
    """The real Vapi samples, routed through seeded phone numbers and assistants: every call
    says which rule filed it, each report's duration and analysis reach the row, and each
    stored event leads back to its request id."""
    samples = sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", "vapi", "*.json")))
    msgs = {}
    for path in samples:
        with open(path, "rb") as f:
            raw = f.read()
        msgs[raw] = json.loads(raw)["message"]
    phones = {(m.get("call") or {}).get("phoneNumberId") or (m.get("phoneNumber") or {}).get("id")
              for m in msgs.values()} - {None}
    assistants = {(m.get("call") or {}).get("assistantId") or (m.get("assistant") or {}).get("id")
                  for m in msgs.values()} - {None}
    seed(stack.pg, ["org_phone", "org_asst"], phones=[(p, "org_phone") for p in phones],
         assistants=[(a, "org_asst") for a in assistants])
    stack.start_ingest()
    stack.start_worker("w1")
    rids = {}
    for raw in msgs:
        status, _, headers = stack.post(raw)
        assert status == 200
        rids[raw] = headers["X-Request-Id"]
    stack.wait_drained()

    got = {r[0]: r[1:] for r in query(
        stack.pg, "SELECT vapi_call_id, organization_id, routed_by, duration_seconds::text,"
        " success_evaluation, structured_data::text FROM calls")}
    calls = {m["call"]["id"] for m in msgs.values()}
    assert set(got) == calls
    for raw, m in msgs.items():
        cid = m["call"]["id"]
        inbound = m["call"].get("type") == "inboundPhoneCall"
        assert got[cid][:2] == (("org_phone", "phone_number") if inbound
                                else ("org_asst", "assistant")), cid
        if m["type"] == "end-of-call-report":
            if m.get("startedAt") and m.get("endedAt"):
                ms = (datetime.datetime.fromisoformat(m["endedAt"].replace("Z", "+00:00")) -
                      datetime.datetime.fromisoformat(m["startedAt"].replace("Z", "+00:00")))
                assert got[cid][2] == "%.3f" % ms.total_seconds(), cid
            else:
                assert got[cid][2] is None
            assert got[cid][3] == (m.get("analysis") or {}).get("successEvaluation"), cid
            assert got[cid][4] is None  # no sample carries structuredData
        ev = query(stack.pg, "SELECT request_id FROM call_events WHERE vapi_call_id = %s"
                   " AND type = %s", (cid, m["type"]))
        assert ev == [(rids[raw],)], (cid, m["type"])
    # Both reports with times: the durations are there, not just allowed to be.
    assert sum(1 for v in got.values() if v[2] is not None) == 2
