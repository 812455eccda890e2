#!/usr/bin/python3
"""Posts Vapi-shaped server messages for a range of inbound calls to ingest, as Vapi does:
for each call a `status-update` (ringing), a `status-update` (in-progress) and an
`end-of-call-report`, in that order, each retried until ingest answers 200 (a refused
connection, a timeout or a 5xx is retried with backoff, as Vapi's backoffPlan does).

    senders.py URL SECRET PHONE_ID FIRST COUNT [--senders N] [--rate MSGS_PER_S]
               [--deadline SECONDS]

Prints one line of counts. Exits 0 when every message was accepted, 1 when any was refused
(4xx) or still not accepted at the deadline. Only for 127.0.0.1: it refuses other hosts.
"""

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse

CALL_PREFIX = "compose-call-"
BACKOFF_S = (0.2, 0.5, 1.0, 2.0)


def call_id(n):
    return "%s%05d" % (CALL_PREFIX, n)


def messages(n, phone):
    """The three messages of inbound call number n, routed by the phone number."""
    call = {"id": call_id(n), "type": "inboundPhoneCall", "phoneNumberId": phone,
            "status": "queued", "customer": {"number": "+1555%07d" % n}}
    t = 1767225600000 + n * 1000
    return [
        {"type": "status-update", "status": "ringing", "timestamp": t, "call": call},
        {"type": "status-update", "status": "in-progress", "timestamp": t + 100,
         "call": call},
        {"type": "end-of-call-report", "timestamp": t + 900, "call": call,
         "endedReason": "customer-ended-call", "cost": 0.01,
         "startedAt": "2026-01-01T00:00:00.000Z", "endedAt": "2026-01-01T00:00:05.000Z",
         "artifact": {"transcript": "AI: Hello.\nUser: Bye.\n"},
         "analysis": {"summary": "call %d" % n}},
    ]


class Sender:
    def __init__(self, args):
        u = urllib.parse.urlsplit(args.url)
        if u.hostname != "127.0.0.1":
            sys.exit("senders.py: only 127.0.0.1 is allowed, not %s" % u.hostname)
        if u.scheme != "http":
            sys.exit("senders.py: only http:// URLs")
        self.port = u.port
        self.path = u.path
        self.headers = {"X-Vapi-Secret": args.secret, "Content-Type": "application/json"}
        self.deadline = time.monotonic() + args.deadline
        self.lock = threading.Lock()
        self.counts = {"accepted": 0, "retries": 0, "refused": 0, "gave_up": 0}
        self.errors = {}

    def post_once(self, data):
        """The status, or the error text of a failed attempt."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request("POST", self.path, body=data, headers=self.headers)
            r = c.getresponse()
            r.read()
            return r.status
        except (OSError, http.client.HTTPException) as e:
            return type(e).__name__
        finally:
            c.close()

    def count(self, key, err=None):
        with self.lock:
            self.counts[key] += 1
            if err is not None:
                self.errors[err] = self.errors.get(err, 0) + 1

    def post(self, msg):
        data = json.dumps({"message": msg}).encode()
        attempt = 0
        while True:
            st = self.post_once(data)
            if st == 200:
                self.count("accepted")
                return
            if isinstance(st, int) and 400 <= st < 500:
                self.count("refused", str(st))
                return
            if time.monotonic() > self.deadline:
                self.count("gave_up", str(st))
                return
            self.count("retries", str(st))
            time.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
            attempt += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("secret")
    ap.add_argument("phone")
    ap.add_argument("first", type=int)
    ap.add_argument("count", type=int)
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--rate", type=float, default=0, help="messages per second, 0: no limit")
    ap.add_argument("--deadline", type=float, default=120)
    args = ap.parse_args()
    s = Sender(args)
    calls = list(range(args.first, args.first + args.count))
    t0 = time.monotonic()
    interval = args.senders / args.rate if args.rate > 0 else 0

    def run(mine):
        nxt = time.monotonic()
        for n in mine:
            for msg in messages(n, args.phone):
                if interval:
                    nxt += interval
                    time.sleep(max(0.0, nxt - time.monotonic()))
                s.post(msg)

    threads = [threading.Thread(target=run, args=(calls[i::args.senders],))
               for i in range(args.senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c = s.counts
    print("senders: calls %d-%d: %d messages accepted, %d retries, %d refused, %d given up "
          "in %.1f s; errors %s" % (args.first, args.first + args.count - 1, c["accepted"],
                                    c["retries"], c["refused"], c["gave_up"],
                                    time.monotonic() - t0, s.errors or "none"), flush=True)
    return 0 if c["accepted"] == 3 * args.count else 1


if __name__ == "__main__":
    sys.exit(main())
