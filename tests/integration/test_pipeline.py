"""End to end: real ingest, two real workers, real redis-server and PostgreSQL. A mixed set of
Vapi messages goes in over HTTP; every call must come out filed under its organization."""

import datetime
import json
import random

from conftest import DEAD, STREAM, body, post_lists, query, seed

ORGS = ["org_a", "org_b", "org_c", "org_d"]
PHONES = [("pn_%04d" % i, ORGS[i % 4]) for i in range(8)]
ASSISTANTS = [("asst_%04d" % i, ORGS[(i + 1) % 4]) for i in range(8)]
T0 = 1767225600000  # 2026-01-01T00:00:00Z in ms


def iso(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc) \
        .isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Call:
    """One synthetic call and the organization it must be filed under (None: unrouted)."""

    def __init__(self, i, rng):
        self.id = "call-%05d" % i
        self.kind = ["inbound", "outbound", "web", "inbound-meta", "unknown-org",
                     "unknown-asst"][i % 6]
        self.start = T0 + i * 60000
        self.end = self.start + 30000 + i
        self.cost = round(0.01 * (i % 97) + 0.005, 4)
        self.reason = ["customer-ended-call", "assistant-ended-call", "silence-timed-out"][i % 3]
        phone, phone_org = PHONES[i % len(PHONES)]
        asst, asst_org = ASSISTANTS[i % len(ASSISTANTS)]
        meta_org = ORGS[(i + 2) % 4]
        self.call = {"id": self.id, "orgId": "vapi-account-1", "status": "queued"}
        if self.kind in ("inbound", "inbound-meta"):
            self.call.update(type="inboundPhoneCall", phoneNumberId=phone)
            self.org = phone_org
            if self.kind == "inbound-meta":
                # Callers can influence inbound metadata: the phone number must win.
                self.call["assistantOverrides"] = {"metadata": {"organizationId": meta_org}}
                assert meta_org != phone_org or True
        elif self.kind == "outbound":
            self.call.update(type="outboundPhoneCall", phoneNumberId=phone,
                             assistantOverrides={"metadata": {"organizationId": meta_org,
                                                              "leadId": "lead-%d" % i}})
            self.org = meta_org
        elif self.kind == "web":
            self.call.update(type="webCall", assistantId=asst)
            self.org = asst_org
        elif self.kind == "unknown-org":
            self.call.update(type="outboundPhoneCall", assistantId=asst,
                             assistantOverrides={"metadata": {"organizationId": "org_gone"}})
            self.org = None
        else:
            self.call.update(type="webCall", assistantId="asst_unknown_%d" % i)
            self.org = None
        self.customer = "+1555%07d" % i
        self.iso_times = i % 2 == 0

    def ts(self, ms):
        return iso(ms) if self.iso_times else ms

    def status(self, status, at):
        m = {"type": "status-update", "status": status, "timestamp": self.ts(at),
             "call": dict(self.call), "customer": {"number": self.customer}}
        if status == "ended":
            m["endedReason"] = self.reason
        return m

    def report(self):
        return {"type": "end-of-call-report", "timestamp": self.ts(self.end + 500),
                "call": dict(self.call), "customer": {"number": self.customer},
                "startedAt": iso(self.start), "endedAt": iso(self.end),
                "endedReason": self.reason, "cost": self.cost,
                "artifact": {"transcript": "AI: Hello %s\nUser: Bye" % self.id,
                             "recordingUrl": "https://rec.example/%s.wav" % self.id},
                "analysis": {"summary": "Summary of %s" % self.id}}

    def messages(self):
        return [self.status("queued", self.start - 2000),
                self.status("ringing", self.start - 1000),
                self.status("in-progress", self.start),
                self.status("ended", self.end),
                self.report()]


def post_all(stack, bodies, threads=8):
    """Posts each body on keep-alive connections; returns the list of HTTP statuses."""
    return [status for _, status, _ in post_lists(stack, [[b] for b in bodies], threads)]


def test_mixed_messages_are_filed_exactly_once(stack):
    rng = random.Random(20261125)
    seed(stack.pg, ORGS, PHONES, ASSISTANTS)
    calls = [Call(i, rng) for i in range(240)]
    bodies = []
    for c in calls:
        msgs = c.messages()
        rng.shuffle(msgs)  # out-of-order delivery: a report may come before in-progress
        bodies.extend(body(m) for m in msgs)
    # Duplicate deliveries (Vapi retries): 15% of the messages sent again.
    dups = rng.sample(bodies, len(bodies) * 15 // 100)
    malformed = [b"not json at all", b'{"message": {"call": {"id": "x"}}}', b'{"message":',
                 b'{"other": 1}']
    posted = bodies + dups + malformed
    rng.shuffle(posted)
    assert len(posted) >= 1000
    print("posting %d messages (%d calls, %d duplicates, %d malformed)" %
          (len(posted), len(calls), len(dups), len(malformed)))

    stack.start_ingest()
    w1 = stack.start_worker("w1", WORKER_BATCH=50)
    w2 = stack.start_worker("w2", WORKER_BATCH=50)
    statuses = post_all(stack, posted)
    assert statuses.count(200) == len(posted), "non-200 answers: %s" % sorted(
        set(statuses))
    stack.wait_drained()
    assert w1.alive() and w2.alive(), "a worker exited on its own"

    routed = {c.id: c for c in calls if c.org is not None}
    rows = query(stack.pg, "SELECT vapi_call_id, organization_id, status, started_at, "
                 "ended_at, ended_reason, cost, transcript, recording_url, summary, "
                 "customer_number, report->>'type' FROM calls")
    print("calls: %d rows, expected %d" % (len(rows), len(routed)))
    assert len(rows) == len(routed)
    for (cid, org, status, started, ended, reason, cost, transcript, rec, summary, cust,
         rtype) in rows:
        c = routed[cid]
        assert org == c.org, (cid, c.kind, org, c.org)
        assert status == "ended", (cid, status)
        assert int(started.timestamp() * 1000) == c.start, cid
        assert int(ended.timestamp() * 1000) == c.end, cid
        assert reason == c.reason
        assert float(cost) == c.cost
        assert transcript == "AI: Hello %s\nUser: Bye" % cid
        assert rec == "https://rec.example/%s.wav" % cid
        assert summary == "Summary of %s" % cid
        assert cust == c.customer
        assert rtype == "end-of-call-report"

    events = query(stack.pg, "SELECT vapi_call_id, type, dedupe_key, organization_id "
                   "FROM call_events")
    print("call_events: %d rows, expected %d" % (len(events), 5 * len(routed)))
    assert len(events) == 5 * len(routed)
    for cid, typ, key, org in events:
        assert org == routed[cid].org
    keys = {(cid, typ, key) for cid, typ, key, _ in events}
    assert len(keys) == len(events)

    unrouted_calls = {c.id for c in calls if c.org is None}
    expected_parked = sum(1 for b in bodies + dups
                          if json.loads(b)["message"]["call"]["id"] in unrouted_calls)
    parked = query(stack.pg, "SELECT vapi_call_id, reason FROM unrouted_messages")
    print("unrouted_messages: %d rows, expected %d" % (len(parked), expected_parked))
    assert len(parked) == expected_parked
    for cid, reason in parked:
        assert cid in unrouted_calls
        assert ("org_gone" in reason) or ("asst_unknown" in reason), reason

    dead = stack.redis.client().xrange(DEAD)
    print("dead letters: %d, expected %d" % (len(dead), len(malformed)))
    assert sorted(f[b"body"] for _, f in dead) == sorted(malformed)
    for _, f in dead:
        assert f[b"reason"] and f[b"original_id"]

    g = stack.group_info()
    assert g["pending"] == 0 and g["lag"] == 0
    assert stack.redis.client().xlen(STREAM) == len(posted)


def test_status_never_moves_backwards_and_replay_changes_nothing(stack):
    seed(stack.pg, ["org_a"], [("pn_1", "org_a")])
    call = {"id": "call-mono", "type": "inboundPhoneCall", "phoneNumberId": "pn_1"}
    report = {"type": "end-of-call-report", "call": dict(call, status="queued"),
              "timestamp": T0 + 9000, "startedAt": iso(T0), "endedAt": iso(T0 + 8000),
              "endedReason": "customer-ended-call", "cost": 0.25,
              "artifact": {"transcript": "hi", "recordingUrl": "https://r/1"}}
    late = {"type": "status-update", "status": "in-progress", "call": call,
            "timestamp": T0 + 100}
    stack.start_ingest()
    stack.start_worker("w1")
    for m in (report, late):
        assert stack.post(body(m))[0] == 200
    stack.wait_drained()
    before = query(stack.pg, "SELECT calls.*, xmin::text FROM calls")
    assert len(before) == 1
    row = dict(zip([d for d in ("id", "vapi_call_id", "organization_id", "call_type",
                                "status")], before[0][:5]))
    assert row["status"] == "ended"
    assert row["organization_id"] == "org_a"

    # The same stream entries read again (a replay) and the same messages delivered again.
    r = stack.redis.client()
    for _, fields in r.xrange(STREAM):
        r.xadd(STREAM, fields)
    for m in (report, late):
        assert stack.post(body(m))[0] == 200
    stack.wait_drained()
    after = query(stack.pg, "SELECT calls.*, xmin::text FROM calls")
    assert after == before, "a redelivery changed the call row"
    assert query(stack.pg, "SELECT count(*) FROM call_events")[0][0] == 2


def test_later_message_lacking_a_field_keeps_it(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    call = {"id": "call-keep", "type": "webCall", "assistantId": "asst_1"}
    report = {"type": "end-of-call-report", "call": call, "timestamp": T0 + 5,
              "endedReason": "assistant-ended-call", "cost": 1.5,
              "customer": {"number": "+15550001"}}
    bare = {"type": "status-update", "status": "ended", "call": call, "timestamp": T0 + 6}
    stack.start_ingest()
    stack.start_worker("w1")
    for m in (report, bare):
        assert stack.post(body(m))[0] == 200
    stack.wait_drained()
    assert query(stack.pg, "SELECT ended_reason, cost::float8, customer_number FROM calls") \
        == [("assistant-ended-call", 1.5, "+15550001")]
