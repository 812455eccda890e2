"""Ingest's HTTP/1.1 server on the wire: keep-alive, pipelined requests, Expect: 100-continue,
chunked bodies, requests it must refuse, HTTP/1.0, and a stop that lets requests in flight
finish."""

import json
import signal
import socket
import time

from conftest import SECRET, STREAM, body, wait_until

SAMPLE = body({"type": "status-update", "status": "ringing",
               "call": {"id": "c1", "type": "webCall", "assistantId": "a1"}})


class Reader:
    """Reads HTTP responses (Content-Length framed) from a socket, in order."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def _fill(self):
        data = self.s.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def response(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill()
        payload, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, payload

    def closed(self):
        """True once the server has closed the connection (after what was buffered)."""
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True


def post_bytes(payload, extra=""):
    return ("POST /api/vapi/webhook HTTP/1.1\r\nHost: x\r\nX-Vapi-Secret: %s\r\n"
            "Content-Length: %d\r\n%s\r\n" % (SECRET, len(payload), extra)).encode() + payload


def connect(stack):
    return socket.create_connection(("127.0.0.1", stack.ingest_port), timeout=10)


def test_keep_alive_and_pipelined_requests_answer_in_order(stack):
    stack.start_ingest()
    bodies = [body({"type": "status-update", "status": "ringing", "n": i,
                    "call": {"id": "c%d" % i, "type": "webCall"}}) for i in range(5)]
    s = connect(stack)
    r = Reader(s)
    # All five and a health check in one write: answered one by one, in order.
    s.sendall(b"".join(post_bytes(b) for b in bodies) +
              b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    answers = [r.response() for _ in range(6)]
    assert [a[0] for a in answers] == [200] * 6
    ids = [json.loads(a[2])["id"] for a in answers[:5]]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert len({a[1]["x-request-id"] for a in answers[:5]}) == 5
    assert json.loads(answers[5][2]) == {"status": "ok"}
    # The same connection keeps serving.
    s.sendall(post_bytes(SAMPLE))
    assert r.response()[0] == 200
    s.close()
    stored = [f[b"body"] for _, f in stack.redis.client().xrange(STREAM)]
    assert stored == bodies + [SAMPLE]


def test_expect_continue_and_chunked_bodies(stack):
    stack.start_ingest()
    s = connect(stack)
    r = Reader(s)
    s.sendall(("POST /api/vapi/webhook HTTP/1.1\r\nHost: x\r\nX-Vapi-Secret: %s\r\n"
               "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n"
               % (SECRET, len(SAMPLE))).encode())
    status, _, _ = r.response()
    assert status == 100
    s.sendall(SAMPLE)
    assert r.response()[0] == 200
    # Chunked, arriving a few bytes at a time, with an extension and a trailer.
    chunked = b"".join(b"%x;x=1\r\n%s\r\n" % (len(SAMPLE[i:i + 40]), SAMPLE[i:i + 40])
                       for i in range(0, len(SAMPLE), 40)) + b"0\r\nX-Trailer: 1\r\n\r\n"
    s.sendall(("POST /api/vapi/webhook HTTP/1.1\r\nHost: x\r\nX-Vapi-Secret: %s\r\n"
               "Transfer-Encoding: chunked\r\n\r\n" % SECRET).encode())
    for i in range(0, len(chunked), 7):
        s.sendall(chunked[i:i + 7])
        time.sleep(0.001)
    assert r.response()[0] == 200
    s.close()
    assert [f[b"body"] for _, f in stack.redis.client().xrange(STREAM)] == [SAMPLE, SAMPLE]


def test_requests_that_cannot_be_read_are_refused_and_closed(stack):
    stack.start_ingest()
    head = "POST /api/vapi/webhook HTTP/1.1\r\nHost: x\r\nX-Vapi-Secret: %s\r\n" % SECRET
    cases = [
        (b"POST /api/vapi/webhook HTTP/2.0\r\nHost: x\r\n\r\n", 400),
        (b"GARBAGE\r\n\r\n", 400),
        ((head + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
          "0\r\n\r\n").encode(), 400),
        ((head + "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd").encode(), 400),
        (b"POST /api/vapi/webhook HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 20000 + b"\r\n\r\n", 431),
        ((head + "Transfer-Encoding: chunked\r\n\r\nzz\r\n").encode(), 400),
    ]
    for raw, want in cases:
        s = connect(stack)
        s.sendall(raw)
        r = Reader(s)
        status, headers, _ = r.response()
        assert status == want, raw[:60]
        assert headers.get("connection") == "close"
        assert r.closed(), raw[:60]
        s.close()
    assert stack.redis.client().xlen(STREAM) == 0
    assert stack.post(SAMPLE)[0] == 200


def test_http_1_0_is_answered_then_closed(stack):
    stack.start_ingest()
    s = connect(stack)
    payload = SAMPLE
    s.sendall(("POST /api/vapi/webhook HTTP/1.0\r\nX-Vapi-Secret: %s\r\nContent-Length: %d"
               "\r\n\r\n" % (SECRET, len(payload))).encode() + payload)
    r = Reader(s)
    assert r.response()[0] == 200
    assert r.closed()
    s.close()


def test_stop_finishes_the_request_being_received(stack):
    p = stack.start_ingest()
    idle = connect(stack)
    s = connect(stack)
    s.sendall(post_bytes(SAMPLE)[:-20])  # everything but the last 20 bytes
    time.sleep(0.3)
    p.p.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    # No new connections once stopping; the one in flight is still read and answered.
    wait_until(lambda: refused(stack), 5, "the listener to close")
    s.sendall(SAMPLE[-20:])
    r = Reader(s)
    status, headers, payload = r.response()
    assert status == 200 and headers.get("connection") == "close"
    assert json.loads(payload)["id"] != "spool"
    assert Reader(idle).closed()
    assert p.p.wait(10) == 0
    assert [f[b"body"] for _, f in stack.redis.client().xrange(STREAM)] == [SAMPLE]


def refused(stack):
    try:
        socket.create_connection(("127.0.0.1", stack.ingest_port), timeout=1).close()
        return False
    except OSError:
        return True
