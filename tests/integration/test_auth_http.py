"""Authentication as Vapi's three credential types arrive over HTTP, with rotation and the
network allow-list behind a trusted proxy."""

import hashlib
import hmac
import json
import time

from conftest import STREAM, body

BODY = body({"type": "status-update", "status": "ringing",
             "call": {"id": "c1", "type": "webCall", "assistantId": "a1"}})


def post(stack, headers, raw=BODY):
    return stack.http("POST", "/api/vapi/webhook", raw, headers)


def reason(resp):
    return json.loads(resp[1])["reason"]


def test_bearer_and_rotation(stack):
    stack.start_ingest(WEBHOOK_SECRET="", WEBHOOK_BEARER_TOKEN="new-token",
                       WEBHOOK_BEARER_TOKEN_PREVIOUS="old-token")
    assert post(stack, {"Authorization": "Bearer new-token"})[0] == 200
    assert post(stack, {"Authorization": "bearer  old-token"})[0] == 200
    r = post(stack, {"Authorization": "Bearer older-token"})
    assert r[0] == 401 and reason(r) == "mismatch"
    r = post(stack, {"Authorization": "Basic bmV3LXRva2Vu"})
    assert r[0] == 401 and reason(r) == "malformed"
    assert reason(post(stack, {})) == "missing"
    assert stack.redis.client().xlen(STREAM) == 2
    assert "accepted with the previous bearer token" in stack.ingest.output()


def sign(key, ts, raw, alg=hashlib.sha256):
    return hmac.new(key, str(ts).encode() + b"." + raw, alg).hexdigest()


def test_hmac_signature_over_the_exact_bytes(stack):
    stack.start_ingest(WEBHOOK_SECRET="", WEBHOOK_HMAC_SECRET="hk-1",
                       WEBHOOK_HMAC_TOLERANCE="60s")
    now = int(time.time())
    ok = {"x-signature": sign(b"hk-1", now, BODY), "x-timestamp": str(now)}
    assert post(stack, ok)[0] == 200
    ms = now * 1000
    assert post(stack, {"x-signature": "sha256=" + sign(b"hk-1", ms, BODY),
                        "x-timestamp": str(ms)})[0] == 200
    tampered = BODY.replace(b"ringing", b"ringinG")
    r = post(stack, ok, tampered)
    assert r[0] == 401 and reason(r) == "mismatch"
    stale = now - 3600
    r = post(stack, {"x-signature": sign(b"hk-1", stale, BODY), "x-timestamp": str(stale)})
    assert r[0] == 401 and reason(r) == "stale"
    r = post(stack, {"x-signature": "zz-not-hex", "x-timestamp": str(now)})
    assert r[0] == 401 and reason(r) == "malformed"
    r = post(stack, {"x-signature": sign(b"other", now, BODY), "x-timestamp": str(now)})
    assert r[0] == 401 and reason(r) == "mismatch"
    assert stack.redis.client().xlen(STREAM) == 2
    metrics = stack.admin("/metrics")[1].decode()
    assert 'switchboard_ingest_auth_failures_total{reason="stale"} 1' in metrics
    assert 'switchboard_ingest_auth_failures_total{reason="malformed"} 1' in metrics


def test_allow_list_honours_forwarded_for_only_from_trusted_proxies(stack):
    # The test client's address is 127.0.0.1, which is the trusted proxy here.
    stack.start_ingest(INGEST_ALLOW_NETWORKS="167.150.224.0/23",
                       INGEST_TRUSTED_PROXIES="127.0.0.1/32")
    from conftest import SECRET
    h = {"X-Vapi-Secret": SECRET}
    r = post(stack, h)
    assert r[0] == 401 and reason(r) == "network"
    assert post(stack, dict(h, **{"X-Forwarded-For": "167.150.225.7"}))[0] == 200
    # A client that forges its own line does not get through: the proxy's view counts.
    r = post(stack, dict(h, **{"X-Forwarded-For": "167.150.225.7, 203.0.113.9"}))
    assert r[0] == 401 and reason(r) == "network"
    assert stack.redis.client().xlen(STREAM) == 1


def test_untrusted_peer_cannot_claim_an_address(stack):
    stack.start_ingest(INGEST_ALLOW_NETWORKS="167.150.224.0/23")
    from conftest import SECRET
    r = post(stack, {"X-Vapi-Secret": SECRET, "X-Forwarded-For": "167.150.225.7"})
    assert r[0] == 401 and reason(r) == "network"
    assert stack.redis.client().xlen(STREAM) == 0
