"""The fault suite: 20,000 mixed messages over HTTP into three workers while workers are
SIGKILLed, PostgreSQL stops for ten seconds and redis-server restarts. Afterwards every
valid message is reflected exactly once, every poison message is dead-lettered with its
reason, nothing is pending, and a replay changes no row."""

import random
import threading
import time
import http.client

from conftest import DEAD, SECRET, body, query, seed
from test_pipeline import ASSISTANTS, ORGS, PHONES, Call

N_CALLS = 3960          # five messages each: 19,800 valid messages
N_GARBAGE = 100         # not JSON
N_REJECTED = 100        # rows a constraint of the schema rejects
POST_RATE = 900         # messages per second, so that the faults land mid-run
CLAIM_IDLE = "3s"


class Poster(threading.Thread):
    """Posts bodies on keep-alive connections, retrying 503s and connection failures as Vapi
    does with a backoffPlan, and records what was acknowledged."""

    def __init__(self, port, bodies, rate):
        super().__init__(daemon=True)
        self.port, self.bodies, self.rate = port, bodies, rate
        self.acked = 0
        self.retries = 0
        self.error = None

    def post(self, conn, b):
        while True:
            try:
                if conn[0] is None:
                    conn[0] = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn[0].request("POST", "/api/vapi/webhook", body=b,
                                headers={"X-Vapi-Secret": SECRET})
                r = conn[0].getresponse()
                r.read()
                if r.status == 200:
                    return
                assert r.status == 503, r.status
            except (ConnectionError, OSError, http.client.HTTPException):
                conn[0] = None
            self.retries += 1
            time.sleep(0.05)

    def run(self):
        try:
            lock = threading.Lock()
            it = iter(self.bodies)
            start = time.monotonic()

            def worker():
                conn = [None]
                while True:
                    with lock:
                        b = next(it, None)
                        n = self.acked
                    if b is None:
                        return
                    delay = start + n / self.rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    self.post(conn, b)
                    with lock:
                        self.acked += 1

            threads = [threading.Thread(target=worker) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        except Exception as e:  # surfaced by the test
            self.error = e


def test_faults_lose_nothing(stack):
    rng = random.Random(7)
    seed(stack.pg, ORGS, PHONES, ASSISTANTS)
    conn = stack.pg.connect()
    with conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE calls ADD CONSTRAINT reject_marked "
                    "CHECK (vapi_call_id NOT LIKE 'reject-%')")
    conn.close()

    calls = []
    i = 0
    while len(calls) < N_CALLS:
        c = Call(i, rng)
        i += 1
        if c.org is not None:
            calls.append(c)
    valid = [body(m) for c in calls for m in c.messages()]
    garbage = [b"garbage-%d {" % k for k in range(N_GARBAGE)]
    rejected = [body({"type": "status-update", "status": "queued",
                      "call": {"id": "reject-%d" % k, "type": "webCall",
                               "assistantId": ASSISTANTS[0][0]}})
                for k in range(N_REJECTED)]
    posted = valid + garbage + rejected
    rng.shuffle(posted)
    print("posting %d messages: %d valid, %d poison" % (len(posted), len(valid),
                                                          N_GARBAGE + N_REJECTED))

    stack.start_ingest(INGEST_THREADS=16)
    env = dict(WORKER_CLAIM_IDLE=CLAIM_IDLE, WORKER_BATCH=200, WORKER_MAX_DELIVERIES=10,
               WORKER_REROUTE_INTERVAL="0")
    workers = [stack.start_worker("w%d" % k, **env) for k in range(3)]
    killed = []
    poster = Poster(stack.ingest_port, posted, POST_RATE)
    t0 = time.time()
    poster.start()

    def at(second):
        while time.time() - t0 < second and poster.is_alive():
            time.sleep(0.05)

    def kill_one():
        victim = rng.choice([w for w in workers if w.alive()])
        stack.kill(victim)
        workers.remove(victim)
        killed.append(victim.name)
        workers.append(stack.start_worker("w%d" % (3 + len(killed)), **env))
        print("t=%.1fs: SIGKILLed %s, started a replacement" % (time.time() - t0,
                                                               victim.name))

    at(2); kill_one()
    at(4); kill_one()
    at(6)
    stack.pg.stop("immediate")
    print("t=%.1fs: PostgreSQL stopped" % (time.time() - t0))
    time.sleep(10)
    stack.pg.start()
    print("t=%.1fs: PostgreSQL started" % (time.time() - t0))
    at(17); kill_one()
    at(19)
    stack.redis.stop()
    stack.redis.start()
    print("t=%.1fs: redis-server restarted" % (time.time() - t0))
    at(21); kill_one()
    at(22); kill_one()
    poster.join(240)
    assert not poster.is_alive() and poster.error is None, poster.error
    print("t=%.1fs: all %d acknowledged (%d retries of 503 or refused)" % (
        time.time() - t0, poster.acked, poster.retries))

    res = stack.run_worker_cmd("drain", "--timeout", "120s", WORKER_CLAIM_IDLE=CLAIM_IDLE,
                               WORKER_MAX_DELIVERIES=10)
    print("drain: %s" % res.stdout.strip())
    assert res.returncode == 0, res.stdout + res.stderr
    for w in workers:
        assert w.alive(), "%s exited on its own:\n%s" % (w.name, w.output()[-2000:])

    # Every valid message exactly once: calls field by field, events by their dedupe keys.
    rows = query(stack.pg, "SELECT vapi_call_id, organization_id, status, started_at, "
                 "ended_at, ended_reason, cost::float8, transcript, recording_url FROM calls")
    print("calls: %d rows, expected %d" % (len(rows), len(calls)))
    by_id = {c.id: c for c in calls}
    assert len(rows) == len(calls)
    for cid, org, status, started, ended, reason, cost, transcript, rec in rows:
        c = by_id[cid]
        assert (org, status, reason, cost, rec) == (c.org, "ended", c.reason, c.cost,
                                                    "https://rec.example/%s.wav" % cid)
        assert int(started.timestamp() * 1000) == c.start
        assert int(ended.timestamp() * 1000) == c.end
        assert transcript == "AI: Hello %s\nUser: Bye" % cid
    n_events = query(stack.pg, "SELECT count(*), count(DISTINCT (vapi_call_id, type, "
                     "dedupe_key)) FROM call_events")[0]
    print("call_events: %d rows (%d distinct), expected %d" % (n_events[0], n_events[1],
                                                               len(valid)))
    assert n_events == (len(valid), len(valid))

    dead = stack.redis.client().xrange(DEAD)
    dead_bodies = {f[b"body"] for _, f in dead}
    print("dead letters: %d (%d distinct bodies), poison posted: %d" % (
        len(dead), len(dead_bodies), N_GARBAGE + N_REJECTED))
    assert dead_bodies == set(garbage) | set(rejected)
    for _, f in dead:
        reason = f[b"reason"]
        assert b"invalid JSON" in reason or b"reject_marked" in reason, reason
    g = stack.group_info()
    print("group: pending %d, lag %d" % (g["pending"], g["lag"]))
    assert g["pending"] == 0 and g["lag"] == 0

    # A replay of the whole run changes no row.
    before = query(stack.pg, "SELECT vapi_call_id, xmin::text, updated_at FROM calls "
                   "ORDER BY 1")
    res = stack.run_worker_cmd("replay", "--since", str(int(t0 * 1000) - 60000))
    print("replay: %s" % res.stdout.strip())
    assert res.returncode == 0, res.stderr
    after = query(stack.pg, "SELECT vapi_call_id, xmin::text, updated_at FROM calls "
                  "ORDER BY 1")
    changed = sum(1 for a, b in zip(before, after) if a != b)
    print("replay changed %d of %d call rows" % (changed, len(before)))
    assert after == before
    assert query(stack.pg, "SELECT count(*) FROM call_events")[0][0] == len(valid)
