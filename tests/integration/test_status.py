"""The status page's API (/api/status, /api/calls/{id}) and the gauges beside it, on the real
worker over real redis-server and PostgreSQL: it reports exactly what was posted, keeps
moving while PostgreSQL is down, and asks for ADMIN_TOKEN when one is set."""

import http.client
import json
import urllib.parse

from conftest import body, free_port, query, seed, wait_until

ORGS = ["org_a", "org_b"]
T0 = 1767225600000


def report(cid, org, number="+15550001234"):
    return body({"type": "end-of-call-report", "timestamp": T0, "endedReason": "hangup",
                 "startedAt": T0 - 60000, "endedAt": T0, "customer": {"number": number},
                 "call": {"id": cid, "type": "outboundPhoneCall",
                          "metadata": {"organizationId": org}}})


def unroutable(cid):
    return body({"type": "status-update", "status": "queued", "timestamp": T0,
                 "call": {"id": cid, "type": "webCall", "assistantId": "asst_unknown"}})


def get(port, path, headers=None, method="GET", data=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request(method, path, body=data, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        c.close()


def api(port, path, token=None):
    status, data, _ = get(port, path, {"Authorization": "Bearer " + token} if token else {})
    return status, json.loads(data)


def gauges(port):
    out = {}
    for line in get(port, "/metrics")[1].decode().splitlines():
        if line.startswith("switchboard_worker_") and " " in line and "{" not in line:
            k, v = line.split()
            out[k[len("switchboard_worker_"):]] = float(v)
    return out


def answers(port):
    try:
        return get(port, "/healthz")[0] == 200
    except OSError:
        return False


def start(stack, name="w1", **env):
    port = free_port()
    w = stack.start_worker(name, WORKER_METRICS_LISTEN="127.0.0.1:%d" % port, **env)
    wait_until(lambda: w.alive() and answers(port), 15, "worker /healthz")
    return w, port


def post_known(stack):
    """Three calls of org_a, two of org_b, two unroutable messages, one poison body."""
    rids = {}
    for i, org in enumerate(["org_a", "org_a", "org_a", "org_b", "org_b"]):
        status, data, _ = stack.post(report("call-%d" % i, org))
        assert status == 200
        rids["call-%d" % i] = json.loads(data)["request_id"]
    for i in range(2):
        assert stack.post(unroutable("lost-%d" % i))[0] == 200
    assert stack.post(b'{"message": {"type": ')[0] == 200
    return rids


def test_the_api_reports_exactly_what_was_posted(stack):
    seed(stack.pg, ORGS)
    stack.start_ingest()
    _, port = start(stack)
    rids = post_known(stack)
    stack.wait_drained()
    # The snapshot is cached for a second; the ingest publishes its spool once a second.
    wait_until(lambda: api(port, "/api/status")[1]["dead_letters"]["count"] == 1 and
               api(port, "/api/status")[1]["health"]["ingest"], 10, "a fresh snapshot")
    status, st = api(port, "/api/status")
    assert status == 200
    assert st["health"]["redis"] is True and st["health"]["postgres"] is True
    assert [i["spool_entries"] for i in st["health"]["ingest"]] == [0]
    s = st["stream"]
    assert (s["length"], s["lag"], s["pending"], s["oldest_pending_age_seconds"]) == \
        (8, 0, 0, None)
    assert [(c["name"], c["pending"], c["dead"]) for c in s["consumers"]] == [("w1", 0, False)]
    assert st["dead_letters"]["count"] == 1
    assert "invalid JSON" in st["dead_letters"]["newest"][0]["reason"]
    assert st["unrouted"]["count"] == 2
    assert sorted(u["call_id"] for u in st["unrouted"]["newest"]) == ["lost-0", "lost-1"]
    assert {(o["id"], o["calls_1h"], o["calls_24h"]) for o in st["organizations"]} == \
        {("org_a", 3, 3), ("org_b", 2, 2)}
    assert st["filed"]["last_hour"] == 5 and len(st["filed"]["per_minute"]) == 60
    assert sum(st["filed"]["per_minute"]) == 5

    # One call, by its id and by the request id of its delivery; the number is masked.
    status, doc = api(port, "/api/calls/call-3")
    assert status == 200
    assert doc["call"]["organization_id"] == "org_b"
    assert doc["call"]["customer_number"] == "+*******1234"
    assert doc["call"]["duration_seconds"] == 60.0
    assert [(e["type"], e["request_id"]) for e in doc["events"]] == \
        [("end-of-call-report", rids["call-3"])]
    assert "transcript" not in json.dumps(doc) and "report" not in doc["call"]
    assert api(port, "/api/calls/" + urllib.parse.quote(rids["call-3"])) == (status, doc)
    assert api(port, "/api/calls/no-such-call")[0] == 404

    # The gauges are the same numbers.
    g = gauges(port)
    assert (g["group_lag"], g["group_pending"], g["unrouted_messages"]) == (0, 0, 2)
    # Nothing here writes: every method but GET is refused.
    assert get(port, "/api/status", method="POST", data=b"")[0] == 405


def test_gauges_keep_moving_while_postgres_is_down(stack):
    seed(stack.pg, ORGS, assistants=[])
    stack.start_ingest()
    _, port = start(stack)
    assert stack.post(unroutable("lost-0"))[0] == 200
    stack.wait_drained()
    wait_until(lambda: gauges(port)["unrouted_messages"] == 1, 10, "the unrouted gauge")
    stack.pg.stop("immediate")
    try:
        for i in range(30):
            assert stack.post(report("late-%d" % i, "org_a"))[0] == 200
        # The worker holds one batch pending and cannot commit it; the rest waits unread.
        def moved():
            g, info = gauges(port), stack.group_info()
            return (g["group_lag"], g["group_pending"]) == (info["lag"], info["pending"]) and \
                info["lag"] + info["pending"] == 30
        wait_until(moved, 20, "the lag and pending gauges to follow Redis")
        age1 = gauges(port)["unrouted_oldest_age_seconds"]
        status, st = api(port, "/api/status")
        assert status == 200 and st["health"]["postgres"] is False
        assert st["health"]["postgres_error"]
        assert st["unrouted"]["count"] == 1 and st["unrouted"]["as_of"]
        assert st["stream"]["length"] == 31
        wait_until(lambda: gauges(port)["unrouted_oldest_age_seconds"] >= age1 + 2, 10,
                   "the oldest unrouted age to keep growing")
    finally:
        stack.pg.start()
    stack.wait_drained()
    assert query(stack.pg, "SELECT count(*) FROM calls WHERE vapi_call_id LIKE %s",
                 ("late-%",)) == [(30,)]


def test_admin_token_guards_the_page_and_the_api_but_not_the_scrapers(stack):
    stack.start_ingest()
    _, port = start(stack, ADMIN_TOKEN="s3cret-token")
    assert api(port, "/api/status")[0] == 401
    assert api(port, "/api/status", token="wrong")[0] == 401
    assert api(port, "/api/status", token="s3cret-token")[0] == 200
    assert api(port, "/api/calls/x")[0] == 401
    status, page, _ = get(port, "/")
    assert status == 200 and b'name="token"' in page and b"Find call" not in page
    for path in ("/metrics", "/healthz", "/readyz"):
        assert get(port, path)[0] == 200, path

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert get(port, "/login", form, "POST", b"token=nope")[0] == 401
    status, _, headers = get(port, "/login", form, "POST", b"token=s3cret-token")
    assert status == 303
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "s3cret-token" not in cookie and "HttpOnly" in headers["Set-Cookie"]
    assert get(port, "/api/status", {"Cookie": cookie})[0] == 200
    status, page, _ = get(port, "/", {"Cookie": cookie})
    assert status == 200 and b"Find call" in page
    assert get(port, "/api/status", {"Cookie": "sb_admin=forged"})[0] == 401
