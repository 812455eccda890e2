"""Ingest as a client sees it: authentication, limits, methods, health and metrics, and what
it answers while Redis is down."""

import json
import os
import socket
import subprocess
import time

from conftest import BIN, ROOT, SECRET, STREAM, body, wait_until

SAMPLE = body({"type": "status-update", "status": "ringing",
               "call": {"id": "c1", "type": "webCall", "assistantId": "a1"}})


def xlen(stack):
    return stack.redis.client().xlen(STREAM)


def test_accepted_body_is_stored_byte_for_byte(stack):
    stack.start_ingest()
    raw = b'{ "message" : {"type":"status-update",  "x": "\xc3\xa9"} }\n'
    status, resp, headers = stack.post(raw)
    assert status == 200
    doc = json.loads(resp)
    assert doc["ok"] is True
    assert headers["X-Request-Id"] == doc["request_id"]
    [(entry_id, fields)] = stack.redis.client().xrange(STREAM)
    assert entry_id.decode() == doc["id"]
    assert fields[b"body"] == raw
    assert fields[b"source"] == b"http"
    assert fields[b"request_id"].decode() == doc["request_id"]
    assert abs(int(fields[b"received_at"]) - time.time() * 1000) < 60000


def test_wrong_or_missing_secret_is_401_and_enqueues_nothing(stack):
    stack.start_ingest()
    for secret in (None, "", "wrong", SECRET[:-1], SECRET + "x", SECRET.upper()):
        status, resp, _ = stack.post(SAMPLE, secret=secret)
        assert status == 401, secret
        assert json.loads(resp)["error"] == "unauthorized"
    assert xlen(stack) == 0
    assert stack.post(SAMPLE)[0] == 200
    assert xlen(stack) == 1
    _, metrics, _ = stack.admin("/metrics")
    text = metrics.decode()
    assert 'switchboard_ingest_auth_failures_total{reason="missing"} 2' in text
    assert 'switchboard_ingest_auth_failures_total{reason="mismatch"} 4' in text
    assert 'switchboard_ingest_requests_total{route="webhook",status="200"} 1' in text


def test_methods_empty_and_oversized_bodies(stack):
    stack.start_ingest(INGEST_MAX_BODY="64k")
    headers = {"X-Vapi-Secret": SECRET}
    for method in ("GET", "PUT", "DELETE"):
        status, _, h = stack.http(method, "/api/vapi/webhook", b"", headers)
        assert status == 405, method
        assert h.get("Allow") == "POST"
    assert stack.post(b"")[0] == 400
    assert stack.post(b"x" * (64 * 1024 + 1))[0] == 413
    assert stack.post(b'{"message":{"type":"t"}}' + b" " * (64 * 1024 - 24))[0] == 200
    assert stack.http("GET", "/nope")[0] == 404
    # Other clients are still served after each of those.
    assert stack.post(SAMPLE)[0] == 200
    assert xlen(stack) == 2


def test_chunked_body_over_the_cap_is_413(stack):
    stack.start_ingest(INGEST_MAX_BODY="4k")
    s = socket.create_connection(("127.0.0.1", stack.ingest_port), timeout=10)
    req = ("POST /api/vapi/webhook HTTP/1.1\r\nHost: x\r\nX-Vapi-Secret: %s\r\n"
           "Transfer-Encoding: chunked\r\n\r\n" % SECRET).encode()
    chunk = b"y" * 3000
    s.sendall(req + b"%x\r\n%s\r\n" % (len(chunk), chunk) * 2 + b"0\r\n\r\n")
    resp = s.recv(4096)
    s.close()
    assert resp.startswith(b"HTTP/1.1 413"), resp[:80]
    assert xlen(stack) == 0


def test_redis_down_is_spooled_then_recovers(stack):
    stack.start_ingest()
    assert stack.post(SAMPLE)[0] == 200
    stack.redis.stop()
    try:
        status, resp, _ = stack.post(SAMPLE)
        assert status == 200 and json.loads(resp)["id"] == "spool"
        assert stack.http("GET", "/healthz")[0] == 200
    finally:
        stack.redis.start()
    wait_until(lambda: xlen(stack) == 2, 10, "the spooled entry to reach Redis")
    for _ in range(20):
        assert json.loads(stack.post(SAMPLE)[1])["id"] != "spool"
    _, metrics, _ = stack.admin("/metrics")
    assert "switchboard_ingest_spooled_total 1" in metrics.decode()
    assert "switchboard_ingest_redis_errors_total" in metrics.decode()


def test_bad_config_stops_startup_naming_the_variable():
    cases = [({"INGEST_MAX_BODY": "lots"}, "INGEST_MAX_BODY"),
             ({"REDIS_URL": "http://x"}, "REDIS_URL"),
             ({"INGEST_LISTEN": "8080"}, "INGEST_LISTEN"),
             ({"INGEST_THREADS": "0"}, "INGEST_THREADS"),
             ({"WEBHOOK_SECRET": ""}, "WEBHOOK_SECRET")]
    for extra, name in cases:
        env = dict(os.environ, WEBHOOK_SECRET=SECRET)
        env.update(extra)
        r = subprocess.run([os.path.join(BIN, "switchboard-ingest"), "--check-config"],
                           env=env, capture_output=True, text=True, cwd=ROOT, timeout=30)
        assert r.returncode == 2, (extra, r.stdout, r.stderr)
        assert name in r.stderr, (extra, r.stderr)
    env = dict(os.environ, WEBHOOK_SECRET=SECRET)
    r = subprocess.run([os.path.join(BIN, "switchboard-ingest"), "--check-config"], env=env,
                       capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert r.returncode == 0, r.stderr
    env = dict(os.environ, WORKER_BATCH="many")
    r = subprocess.run([os.path.join(BIN, "switchboard-worker"), "--check-config"], env=env,
                       capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert r.returncode == 2 and "WORKER_BATCH" in r.stderr, r.stderr


def test_logs_are_json_lines_with_request_id(stack):
    p = stack.start_ingest()
    assert stack.post(SAMPLE, secret="bad")[0] == 401
    lines = [json.loads(line) for line in p.output().splitlines() if line.strip()]
    assert lines, "no log lines"
    rejected = [x for x in lines if "rejected" in x["msg"]]
    assert rejected and rejected[0]["level"] == "warn" and rejected[0]["request_id"]
    for x in lines:
        assert {"ts", "level", "component", "msg"} <= set(x)


def test_large_bodies_are_compressed_and_decoded_everywhere(stack):
    from conftest import seed, query
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    transcript = " ".join("word%d" % i for i in range(12000))  # about 100 KB
    big = body({"type": "end-of-call-report", "endedReason": "customer-ended-call",
                "call": {"id": "call-big", "type": "webCall", "assistantId": "asst_1"},
                "artifact": {"transcript": transcript}})
    garbage = b"{" + b"not json " * 1000
    stack.start_ingest()
    stack.start_worker("w1")
    assert stack.post(big)[0] == 200
    assert stack.post(garbage)[0] == 200
    stack.wait_drained(30)
    entries = stack.redis.client().xrange(STREAM)
    for (_, f), raw in zip(entries, (big, garbage)):
        assert f[b"enc"] == b"zstd"
        assert len(f[b"body"]) < len(raw) / 3
    print("stored %d and %d bytes for bodies of %d and %d" % (
        len(entries[0][1][b"body"]), len(entries[1][1][b"body"]), len(big), len(garbage)))
    assert query(stack.pg, "SELECT transcript FROM calls") == [(transcript,)]
    dead_id = stack.redis.client().xrange("switchboard:webhooks:dead")[0][0].decode()
    res = stack.run_worker_cmd("dlq", "show", dead_id)
    assert ("body: " + garbage.decode()) in res.stdout
    assert "enc: zstd" in res.stdout
    res = stack.run_worker_cmd("replay", "--since", "0")
    assert "replayed 1 matching entries: 1 filed, 0 unrouted, 1 malformed" in res.stdout
    # A dead letter is decoded before redrive judges it: this one still does not parse.
    res = stack.run_worker_cmd("dlq", "redrive", "--all")
    assert res.returncode == 1 and "invalid JSON" in res.stderr, res.stderr
    dead = stack.redis.client().xrange("switchboard:webhooks:dead")
    assert len(dead) == 1 and dead[0][0].decode() == dead_id


def test_wait_aof_on_a_redis_without_waitaof_says_so_and_still_accepts(stack):
    # Debian 12's Redis 7.0 has no WAITAOF (7.2+): the setting must not lose or refuse
    # webhooks there, and must say loudly that it is not in force.
    p = stack.start_ingest(INGEST_WAIT_AOF="true")
    for _ in range(3):
        assert stack.post(SAMPLE)[0] == 200
    assert xlen(stack) == 3
    errors = [json.loads(line) for line in p.output().splitlines() if "WAITAOF" in line]
    assert len(errors) == 1 and errors[0]["level"] == "error"
    assert "INGEST_WAIT_AOF" in errors[0]["msg"]
