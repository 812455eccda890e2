"""Ingest's request framing on the wire: hostile and ambiguous requests, sent as raw bytes to
the real binary, are each refused and the connection closed, and nothing of them reaches the
Redis stream; Connection: close and HTTP/1.0 are honoured; the admin routes are on their own
listener."""

import json

from conftest import SECRET, STREAM, body
from test_http import Reader, connect

SAMPLE = body({"type": "status-update", "status": "ringing",
               "call": {"id": "c1", "type": "webCall", "assistantId": "a1"}})
HEAD = ("POST /api/vapi/webhook HTTP/1.1\r\nHost: x\r\nX-Vapi-Secret: %s\r\n" % SECRET).encode()
CHUNKED = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
# What a smuggled second request would look like: a whole webhook of its own.
SECOND = HEAD + b"Content-Length: %d\r\n\r\n" % len(SAMPLE) + SAMPLE

REFUSED = [
    # A NUL byte in a header value.
    ("NUL in Content-Length", HEAD + b"Content-Length: 2\x00 4\r\n\r\nabcd" + SECOND, 400),
    ("NUL in the secret", ("POST /api/vapi/webhook HTTP/1.1\r\nHost: x\r\nX-Vapi-Secret: "
                           "%s\x00junk\r\nContent-Length: 2\r\n\r\nab" % SECRET).encode(), 400),
    ("NUL in Transfer-Encoding", HEAD + b"Transfer-Encoding: chunked\x00, gzip\r\n\r\n"
     b"2\r\nab\r\n0\r\n\r\n", 400),
    # A bare CR.
    ("line starting with CR", HEAD + b"\rX-A: b\r\nContent-Length: 2\r\n\r\nab", 400),
    ("CR in a value", HEAD + b"X-A: a\rb\r\nContent-Length: 2\r\n\r\nab", 400),
    # Transfer codings.
    ("gzip, chunked", HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
     501),
    ("foo chunked", HEAD + b"Transfer-Encoding: foo chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n", 501),
    ("chunked, chunked", HEAD + b"Transfer-Encoding: chunked, chunked\r\n\r\n"
     b"2\r\nab\r\n0\r\n\r\n", 501),
    ("two Transfer-Encoding", HEAD + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: "
     b"chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n", 501),
    ("HTTP/1.0 chunked", CHUNKED.replace(b"HTTP/1.1", b"HTTP/1.0") + b"2\r\nab\r\n0\r\n\r\n",
     400),
    # Chunk extensions and trailers.
    ("CR in an extension", CHUNKED + b"2;a=\rb\r\nab\r\n0\r\n\r\n", 400),
    ("NUL in an extension", CHUNKED + b"2;a\x00\r\nab\r\n0\r\n\r\n", 400),
    ("control byte in an extension", CHUNKED + b"2;a=\x01\r\nab\r\n0\r\n\r\n", 400),
    ("trailer without a colon", CHUNKED + b"2\r\nab\r\n0\r\nno colon\r\n\r\n", 400),
    ("Content-Length trailer", CHUNKED + b"2\r\nab\r\n0\r\nContent-Length: 9\r\n\r\n", 400),
    ("Host trailer", CHUNKED + b"2\r\nab\r\n0\r\nHost: y\r\n\r\n", 400),
    ("folded trailer", CHUNKED + b"2\r\nab\r\n0\r\nX-T: a\r\n b\r\n\r\n", 400),
    ("last chunk ending in LF", CHUNKED + b"2\r\nab\r\n0\r\n\n", 400),
    ("extensions over 64 KiB", CHUNKED + b"2;a=" + b"b" * (70 << 10) + b"\r\nab\r\n0\r\n\r\n",
     431),
    ("trailers over 64 KiB", CHUNKED + b"2\r\nab\r\n0\r\n" + b"X-T: 0123456789\r\n" * 9000 +
     b"\r\n", 431),
    # Host.
    ("no Host", HEAD.replace(b"Host: x\r\n", b"") + b"Content-Length: 2\r\n\r\nab", 400),
    ("two Host", HEAD + b"Host: y\r\nContent-Length: 2\r\n\r\nab", 400),
    # Folded header lines.
    ("folded header", HEAD + b"X-A: b\r\n c\r\nContent-Length: 2\r\n\r\nab", 400),
]


def test_each_hostile_request_is_refused_closed_and_enqueues_nothing(stack):
    stack.start_ingest()
    for name, raw, want in REFUSED:
        s = connect(stack)
        s.sendall(raw)
        r = Reader(s)
        status, headers, payload = r.response()
        assert (status, headers.get("connection")) == (want, "close"), name
        assert json.loads(payload)["error"], name
        assert r.closed(), name
        s.close()
        assert stack.redis.client().xlen(STREAM) == 0, name
    # The server still takes a good webhook.
    assert stack.post(SAMPLE)[0] == 200
    assert stack.redis.client().xlen(STREAM) == 1


def test_connection_close_and_http_1_0_are_honoured(stack):
    stack.start_ingest()
    close = HEAD + b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(SAMPLE) + SAMPLE
    http10 = (b"POST /api/vapi/webhook HTTP/1.0\r\nX-Vapi-Secret: %s\r\nContent-Length: %d"
              b"\r\n\r\n" % (SECRET.encode(), len(SAMPLE))) + SAMPLE
    for first in (close, http10):
        s = connect(stack)
        s.sendall(first + SECOND)  # the second one the client never meant to send
        r = Reader(s)
        status, headers, _ = r.response()
        assert status == 200 and headers.get("connection") == "close"
        assert r.closed()
        s.close()
    # One entry per delivery: the bytes after each first request were not served.
    assert stack.redis.client().xlen(STREAM) == 2


def test_pipelined_chunked_requests_each_make_one_entry(stack):
    stack.start_ingest()
    chunked = CHUNKED + b"".join(b"%x\r\n%s\r\n" % (len(SAMPLE[i:i + 50]), SAMPLE[i:i + 50])
                                 for i in range(0, len(SAMPLE), 50)) + b"0\r\nX-T: 1\r\n\r\n"
    s = connect(stack)
    s.sendall(chunked + SECOND + chunked)
    r = Reader(s)
    assert [r.response()[0] for _ in range(3)] == [200, 200, 200]
    s.close()
    assert [f[b"body"] for _, f in stack.redis.client().xrange(STREAM)] == [SAMPLE] * 3


def test_admin_routes_are_on_the_admin_listener(stack):
    stack.start_ingest()
    # The webhook listener: the webhook and a plain /healthz for load balancers, no more.
    assert stack.http("GET", "/healthz")[0] == 200
    for path in ("/metrics", "/readyz", "/"):
        assert stack.http("GET", path)[0] == 404, path
    status, text, headers = stack.admin("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert b"switchboard_ingest_redis_up" in text
    assert stack.admin("/healthz")[:2] == (200, b'{"status":"ok"}\n')
    assert stack.admin("/readyz")[:2] == (200, b'{"status":"ready"}\n')
    assert stack.admin("/nothing")[0] == 404
    assert stack.admin("/metrics", method="POST")[0] == 405
    assert stack.admin("/healthz", method="HEAD")[0] == 200
