"""Ingest never drops a webhook: while Redis is down bodies go to the local spool (on disk
before the 200) and are re-driven into the stream when Redis answers again, also after a
crash of ingest itself; a torn record is skipped; a full spool answers 503."""

import json
import os
import socket
import struct
import subprocess
import threading
import time

from conftest import STREAM, body, query, seed, wait_until

T0 = 1767225600000


def msg(i, status="in-progress"):
    return body({"type": "status-update", "status": status, "timestamp": T0 + i,
                 "call": {"id": "call-%05d" % i, "type": "webCall", "assistantId": "asst_1"}})


def stream_sources(stack):
    return [f[b"source"] for _, f in stack.redis.client().xrange(STREAM)]


def test_redis_down_spools_then_redrives_in_order(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    stack.start_ingest()
    stack.start_worker("w1")
    assert stack.post(msg(0))[0] == 200
    stack.redis.stop()
    try:
        answers = [stack.post(msg(i)) for i in range(1, 41)]
        assert [a[0] for a in answers] == [200] * 40
        assert all(json.loads(a[1])["id"] == "spool" for a in answers)
        metrics = stack.admin("/metrics")[1].decode()
        assert "switchboard_ingest_spool_entries 40" in metrics
        assert "switchboard_ingest_redis_up 0" in metrics
        assert "switchboard_ingest_degraded 1" in metrics
        # The spool can take more: still ready for load balancers, but it says why not as
        # usual; the log says so once (not once per request).
        status, ready, _ = stack.admin("/readyz")
        assert status == 200
        ready = json.loads(ready)
        assert ready["status"] == "degraded" and "spooled (40 in the spool)" in ready["reason"]
        lines = [json.loads(x) for x in stack.ingest.output().splitlines() if x.startswith("{")]
        warned = [x for x in lines if x["msg"].startswith("redis unreachable: webhooks go to")]
        assert len(warned) == 1 and warned[0]["level"] == "warn"
    finally:
        stack.redis.start()
    wait_until(lambda: stack.redis.client().xlen(STREAM) == 41, 20, "the re-drive")
    wait_until(lambda: "spool empty again: 40 webhooks" in stack.ingest.output(), 10,
               "the line saying the spool is empty again")
    assert json.loads(stack.admin("/readyz")[1]) == {"status": "ready"}
    assert "switchboard_ingest_degraded 0" in stack.admin("/metrics")[1].decode()
    sources = stream_sources(stack)
    assert sources == [b"http"] + [b"spool"] * 40
    bodies = [f[b"body"] for _, f in stack.redis.client().xrange(STREAM)]
    assert bodies == [msg(i) for i in range(41)], "re-driven out of order"
    stack.wait_drained(30)
    assert query(stack.pg, "SELECT count(*) FROM calls")[0][0] == 41
    assert "switchboard_ingest_spool_entries 0" in stack.admin("/metrics")[1].decode()


def test_redis_killed_under_load_loses_nothing(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    stack.start_ingest()
    stack.start_worker("w1")
    ok = []
    failed = []

    def load(part):
        for i in range(part, 3000, 4):
            st = stack.post(msg(i))[0]
            (ok if st == 200 else failed).append(i)

    threads = [threading.Thread(target=load, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    stack.redis.proc.p.kill()  # SIGKILL: no goodbye
    stack.redis.proc.p.wait()
    time.sleep(1.5)
    stack.redis.start()
    for t in threads:
        t.join()
    print("answered 200: %d, other: %d" % (len(ok), len(failed)))
    assert not failed
    stack.wait_drained(60)
    n = query(stack.pg, "SELECT count(*) FROM calls")[0][0]
    print("calls in Postgres: %d of %d acknowledged" % (n, len(ok)))
    assert n == len(ok) == 3000


def test_ingest_killed_with_full_spool_redrives_after_restart(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    stack.start_ingest()
    stack.redis.stop()
    try:
        for i in range(25):
            assert stack.post(msg(i))[0] == 200
        stack.kill(stack.ingest)
    finally:
        stack.redis.start()
    stack.start_worker("w1")
    p = stack.start_ingest()
    wait_until(lambda: stack.redis.client().xlen(STREAM) == 25, 20, "the re-drive at start")
    stack.wait_drained(30)
    assert query(stack.pg, "SELECT count(*) FROM calls")[0][0] == 25
    assert "from an earlier run" in p.output()


def spool_record(body_bytes, rid=b"r1", ts=T0):
    import zlib
    payload = struct.pack("<qH", ts, len(rid)) + rid + body_bytes
    return b"SBS1" + struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


def test_a_redis_that_stops_answering_is_timed_out_and_spooled(stack):
    # SIGSTOP: the connection stays open and nothing answers, as in a Redis stalled on its
    # disk. The entries in flight and the next requests go to the spool after
    # REDIS_TIMEOUT_MS; once Redis runs again every call is filed exactly once (the stalled
    # XADDs may land as well: the workers' writes are idempotent).
    import signal
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    p = stack.start_ingest(REDIS_TIMEOUT_MS=500)
    stack.start_worker("w1")
    assert stack.post(msg(0))[0] == 200
    pid = stack.redis.proc.p.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        answers = [stack.post(msg(i)) for i in range(1, 6)]
    finally:
        os.kill(pid, signal.SIGCONT)
    assert [a[0] for a in answers] == [200] * 5
    assert all(json.loads(a[1])["id"] == "spool" for a in answers)
    assert "no reply within REDIS_TIMEOUT_MS" in p.output()
    wait_until(lambda: query(stack.pg, "SELECT count(*) FROM calls")[0][0] == 6, 30,
               "all six calls to be filed")
    stack.wait_drained(30)
    assert query(stack.pg, "SELECT count(*), count(DISTINCT vapi_call_id) FROM calls") == [(6, 6)]
    assert query(stack.pg, "SELECT count(*) FROM call_events")[0][0] == 6


def test_torn_last_record_is_skipped_never_redriven(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    good = [spool_record(msg(i), b"rid-%d" % i) for i in range(3)]
    torn = spool_record(msg(99), b"rid-99")[:-7]
    with open(os.path.join(stack.spool_dir, "spool.log"), "wb") as f:
        f.write(b"".join(good) + torn)
    stack.start_worker("w1")
    p = stack.start_ingest()
    wait_until(lambda: stack.redis.client().xlen(STREAM) == 3, 20, "the re-drive")
    time.sleep(0.5)
    entries = stack.redis.client().xrange(STREAM)
    assert [f[b"body"] for _, f in entries] == [msg(i) for i in range(3)]
    assert [f[b"request_id"] for _, f in entries] == [b"rid-0", b"rid-1", b"rid-2"]
    assert [f[b"received_at"] for _, f in entries] == [str(T0).encode()] * 3
    assert "torn or corrupt record" in p.output()
    assert os.path.getsize(os.path.join(stack.spool_dir, "spool.log")) == 0


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for %d" % pid)


def report(i, size):
    """An end-of-call report of about `size` bytes, its own call id, routed to org_a."""
    words = " ".join("word%d" % (k * 7919 % 1000) for k in range(size // 8))
    return body({"type": "end-of-call-report", "timestamp": T0 + i,
                 "call": {"id": "call-%05d" % i, "type": "webCall", "assistantId": "asst_1"},
                 "artifact": {"transcript": words[:size]}})


def test_a_large_spool_redrives_in_order_in_bounded_memory(stack):
    # 600 reports of 64 KB (about 40 MB of spool: ten read windows, three re-drive batches)
    # and one of 6 MB (larger than a window), spooled while Redis is down. The re-drive reads
    # the spool a window at a time, so ingest's peak memory grows by far less than the
    # spool holds; every body reaches the stream, byte for byte and in order.
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    # Stored as received (compared below). Under AddressSanitizer freed memory waits in a
    # quarantine (256 MB) instead of being reused, which would count as growth here.
    asan = os.environ.get("ASAN_OPTIONS", "")
    p = stack.start_ingest(INGEST_COMPRESS_MIN=0,
                           ASAN_OPTIONS=asan + ":quarantine_size_mb=0" if asan else "")
    bodies = [report(i, 6 << 20 if i == 300 else 64 << 10) for i in range(601)]
    # A million small keys make the restarted Redis answer LOADING for a second or so: the
    # re-drive starts then, and must neither skip nor repeat entries while Redis comes up.
    subprocess.run(["redis-benchmark", "-p", str(stack.redis.port), "-t", "set", "-n",
                    "1000000", "-P", "200", "-r", "100000000", "-d", "16", "-q"],
                   check=True, capture_output=True, timeout=120)
    stack.redis.stop()
    try:
        answers = [stack.post(b) for b in bodies]
        assert [a[0] for a in answers] == [200] * len(bodies)
        assert all(json.loads(a[1])["id"] == "spool" for a in answers)
        spooled = os.path.getsize(os.path.join(stack.spool_dir, "spool.log"))
        before = vm_hwm_kib(p.pid)
    finally:
        stack.redis.start()
    try:
        wait_until(lambda: stack.spool_entries() == 0, 60, "the re-drive")
    finally:
        print("stream: %d entries; ingest said:\n%s" % (stack.redis.client().xlen(STREAM),
                                                       p.output()[-3000:]))
    assert "LOADING" in p.output()
    grew = vm_hwm_kib(p.pid) - before
    print("spool of %.1f MB re-driven; ingest's peak memory grew by %.1f MB (from %.1f MB)" %
          (spooled / 1e6, grew * 1024 / 1e6, before * 1024 / 1e6))
    assert grew * 1024 < spooled / 2
    entries = stack.redis.client().xrange(STREAM)
    assert [f[b"request_id"] for _, f in entries] == \
        [json.loads(a[1])["request_id"].encode() for a in answers]
    assert [f[b"body"] for _, f in entries] == bodies
    assert os.path.getsize(os.path.join(stack.spool_dir, "spool.log")) == 0
    stack.start_worker("w1")
    stack.wait_drained(60)
    assert query(stack.pg, "SELECT count(*) FROM calls")[0][0] == len(bodies)


def test_a_redis_refusing_writes_keeps_the_backlog_in_the_spool(stack):
    # Redis at its maxmemory (noeviction) answers every XADD with an OOM error: requests go
    # to the spool, and the re-drive stops at the refused entry without dropping anything.
    # Once Redis has room, the backlog moves, in order, and every call is filed once.
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    p = stack.start_ingest()
    stack.start_worker("w1")
    r = stack.redis.client()
    assert stack.post(msg(0))[0] == 200
    stack.wait_drained(30)
    r.config_set("maxmemory", max(1 << 20, r.info("memory")["used_memory"] - (64 << 10)))
    try:
        answers = [stack.post(msg(i)) for i in range(1, 301)]
        assert [a[0] for a in answers] == [200] * 300
        assert all(json.loads(a[1])["id"] == "spool" for a in answers)
        time.sleep(0.6)  # a few re-drive passes, all refused
        assert r.xlen(STREAM) == 1
        assert stack.spool_entries() == 300
        assert "OOM" in p.output()
    finally:
        r.config_set("maxmemory", 0)
    wait_until(lambda: r.xlen(STREAM) == 301, 20, "the re-drive")
    rids = [f[b"request_id"] for _, f in r.xrange(STREAM)][1:]
    assert rids == [json.loads(a[1])["request_id"].encode() for a in answers]
    stack.wait_drained(30)
    assert query(stack.pg, "SELECT count(*), count(DISTINCT vapi_call_id) FROM calls") == \
        [(301, 301)]


def test_full_spool_answers_503(stack):
    stack.start_ingest(INGEST_SPOOL_MAX="1MiB")
    stack.redis.stop()
    try:
        big = body({"type": "x", "pad": "y" * 300000})
        codes = [stack.post(big)[0] for _ in range(5)]
        assert codes == [200, 200, 200, 503, 503], codes
        assert stack.admin("/readyz")[0] == 503
    finally:
        stack.redis.start()
    wait_until(lambda: stack.redis.client().xlen(STREAM) == 3, 20, "the re-drive")
    assert stack.admin("/readyz")[0] == 200


def test_slow_clients_do_not_pin_the_server(stack):
    stack.start_ingest(INGEST_REQUEST_TIMEOUT_MS=1500, INGEST_THREADS=1)
    from conftest import SECRET
    slow = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", stack.ingest_port), timeout=10)
        s.sendall(("POST /api/vapi/webhook HTTP/1.1\r\nHost: x\r\nX-Vapi-Secret: %s\r\n"
                   "Content-Length: 100\r\n\r\n" % SECRET).encode())
        slow.append(s)
    # Each sends a byte a second; meanwhile others are served.
    for k in range(3):
        for s in slow:
            s.sendall(b"{")
        assert stack.post(msg(k))[0] == 200
        time.sleep(1)
    for s in slow:
        resp = s.recv(4096)
        assert resp.startswith(b"HTTP/1.1 408") or resp == b"", resp[:60]
        s.close()
    assert stack.redis.client().xlen(STREAM) == 3


def test_a_thousand_idle_connections_are_closed_while_others_are_served(stack):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    stack.start_ingest(INGEST_THREADS=2)  # the default; 1 s for the request headers
    idle = [socket.create_connection(("127.0.0.1", stack.ingest_port), timeout=5)
            for _ in range(1000)]

    def closed_by_server():
        closed = 0
        for s in idle:
            s.setblocking(False)
            try:
                closed += s.recv(1) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        return closed

    try:
        t = time.time()
        assert stack.post(msg(1))[0] == 200
        first = time.time() - t
        print("first request behind 1,000 idle connections answered in %.2fs" % first)
        assert first < 15
        for i in range(2, 12):
            assert stack.post(msg(i))[0] == 200
        # Past the header timeout every one of them is closed, and none before it.
        assert closed_by_server() < 1000 or time.time() - t > 1
        wait_until(lambda: closed_by_server() == 1000, 10, "the idle connections to close")
        print("idle connections closed by the server after %.1fs" % (time.time() - t))
    finally:
        for s in idle:
            s.close()
    assert stack.redis.client().xlen(STREAM) == 11
    assert stack.http("GET", "/healthz")[0] == 200
