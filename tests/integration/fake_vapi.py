"""A fake of the Vapi management API, for vapictl's tests.

It keeps assistants, phone numbers, calls and one organization in memory and behaves like the
parts of the real API that vapictl relies on:

- Bearer authentication (401 without the key).
- Lists are JSON arrays, newest first, at most `limit` items (default 100, at most 1000),
  filtered by createdAtGt/createdAtLt. Creation times are kept in microseconds but shown in
  milliseconds, as a database behind an API may do, so paging must not assume that the
  createdAt it sees is the exact stored value.
- Unknown fields, and the retired serverUrl/serverUrlSecret, get Vapi's 400 body
  {"message": [...], "error": "Bad Request", "statusCode": 400}; so do out-of-range values.
- PATCH /phone-number/{id} requires the number's own `provider`.
- Every `rate_limit_every`-th request is answered 429 with Retry-After: 0.
- PATCH replaces `server` as a whole by default; server_patch = "merge" merges it instead
  (the API does not document which it does).
- The organization route: org_mode "refuse" (400, the route does not take `server`),
  "accept", "ignore" (200 without effect) or "missing" (404 for every /org request).
- Assistant versioning (Vapi, since 2026-08-17: edits become a draft, inbound calls use the
  current published version) with `versioning = True`: a PATCH of an assistant changes its
  draft and answers with the draft, while GET and the list keep showing the published
  configuration until `publish(id)` makes the draft current (as publishing in the dashboard
  does). Off by default, as an account without versioning behaves.

Every request is recorded (method, path, query, body, status) in `requests`. Tests can make
chosen requests fail with `fail_next(method, path, status, times)`.
"""

import copy
import datetime
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ORG_ID = "org-fake-0001"
PROVIDERS = ("byo-phone-number", "twilio", "vonage", "vapi", "telnyx")
SERVER_KEYS = {"url", "timeoutSeconds", "headers", "credentialId", "backoffPlan",
               "staticIpAddressesEnabled", "encryptedPaths"}
BACKOFF_KEYS = {"type", "maxRetries", "baseDelaySeconds", "excludedStatusCodes"}
ASSISTANT_KEYS = {"name", "server", "serverMessages", "clientMessages", "model", "voice",
                  "transcriber", "firstMessage", "firstMessageMode", "endCallMessage",
                  "metadata", "maxDurationSeconds", "silenceTimeoutSeconds", "analysisPlan",
                  "artifactPlan", "backgroundSound", "voicemailMessage"}
PHONE_KEYS = {"provider", "name", "assistantId", "squadId", "workflowId", "server",
              "fallbackDestination", "hooks"}
MESSAGE_TYPES = {"conversation-update", "end-of-call-report", "function-call", "hang",
                 "language-changed", "language-change-detected", "model-output",
                 "phone-call-control", "speech-update", "status-update", "transcript",
                 "tool-calls", "transfer-destination-request", "handoff-destination-request",
                 "transfer-update", "user-interrupted", "voice-input", "assistant-request",
                 "knowledge-base-request", "voice-request", "call.endpointing.request",
                 "assistant.started"}
LIST_PARAMS = {"limit", "createdAtGt", "createdAtLt", "createdAtGe", "createdAtLe",
               "updatedAtGt", "updatedAtLt", "updatedAtGe", "updatedAtLe"}
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def iso_us(us):
    """ISO-8601 with milliseconds, as Vapi shows createdAt (the microseconds are cut)."""
    t = EPOCH + datetime.timedelta(microseconds=us - us % 1000)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso_us(s):
    t = datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    d = t - EPOCH
    return (d.days * 86400 + d.seconds) * 1000000 + d.microseconds


class ApiError(Exception):
    def __init__(self, status, messages, error):
        super().__init__(messages)
        self.status = status
        self.body = {"message": messages, "error": error, "statusCode": status}


def bad_request(messages):
    return ApiError(400, messages, "Bad Request")


def not_found(method, path):
    return ApiError(404, "Cannot %s %s" % (method, path), "Not Found")


def check_keys(body, allowed, prefix=""):
    return ["property %s%s should not exist" % (prefix, k) for k in body if k not in allowed]


def check_backoff(plan):
    if not isinstance(plan, dict):
        return ["server.backoffPlan must be an object"]
    errs = check_keys(plan, BACKOFF_KEYS, "server.backoffPlan.")
    if plan.get("type") not in ("fixed", "exponential"):
        errs.append("server.backoffPlan.type must be one of the following values: fixed, "
                    "exponential")
    for key in ("maxRetries", "baseDelaySeconds"):
        v = plan.get(key)
        if not isinstance(v, (int, float)) or not 0 <= v <= 10:
            errs.append("server.backoffPlan.%s must be a number from 0 to 10" % key)
    codes = plan.get("excludedStatusCodes", [])
    if not isinstance(codes, list) or not all(isinstance(c, int) for c in codes):
        errs.append("server.backoffPlan.excludedStatusCodes must be an array of numbers")
    return errs


def check_server(server):
    if not isinstance(server, dict):
        return ["server must be an object"]
    errs = check_keys(server, SERVER_KEYS, "server.")
    if "url" in server and not (isinstance(server["url"], str) and
                                server["url"].startswith(("http://", "https://"))):
        errs.append("server.url must be a URL address")
    t = server.get("timeoutSeconds", 20)
    if not isinstance(t, (int, float)) or not 1 <= t <= 300:
        errs.append("server.timeoutSeconds must not be less than 1 or greater than 300")
    headers = server.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        errs.append("server.headers must be an object of strings")
    if "backoffPlan" in server:
        errs.extend(check_backoff(server["backoffPlan"]))
    return errs


def check_messages(msgs):
    if not isinstance(msgs, list):
        return ["serverMessages must be an array"]
    return ["each value in serverMessages must be one of the following values: ..."
            for m in msgs if m not in MESSAGE_TYPES][:1]


def public(obj):
    return {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}


class FakeVapi:
    def __init__(self, api_key, rate_limit_every=7):
        self.api_key = api_key
        self.rate_limit_every = rate_limit_every
        self.server_patch = "replace"
        self.org_mode = "refuse"
        self.versioning = False
        self.lock = threading.Lock()
        self.assistants = {}
        self.phone_numbers = {}
        self.calls = {}
        self.org = {"id": ORG_ID, "name": "Fake Org", "createdAt": "2024-01-01T00:00:00.000Z"}
        self.requests = []
        self.count = 0
        self.failures = {}
        self.clock_us = 1767225600000000  # 2026-01-01T00:00:00Z
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.httpd.daemon_threads = True
        self.thread = None

    # ---- life cycle ----

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.httpd.server_address[1]

    # ---- state, for tests ----

    def _stamp(self, obj, created_us):
        if created_us is None:
            self.clock_us += 1000
            created_us = self.clock_us
        obj["_us"] = created_us
        obj["createdAt"] = iso_us(created_us)
        obj.setdefault("updatedAt", obj["createdAt"])
        obj.setdefault("orgId", ORG_ID)
        return obj

    def add_assistant(self, obj, created_us=None):
        obj = copy.deepcopy(obj)
        obj.setdefault("id", str(uuid.uuid4()))
        with self.lock:
            self.assistants[obj["id"]] = self._stamp(obj, created_us)
        return obj["id"]

    def add_phone_number(self, obj, created_us=None):
        obj = copy.deepcopy(obj)
        obj.setdefault("id", str(uuid.uuid4()))
        obj.setdefault("status", "active")
        with self.lock:
            self.phone_numbers[obj["id"]] = self._stamp(obj, created_us)
        return obj["id"]

    def add_call(self, obj, created_us=None):
        obj = copy.deepcopy(obj)
        obj.setdefault("id", str(uuid.uuid4()))
        with self.lock:
            self.calls[obj["id"]] = self._stamp(obj, created_us)
        return obj["id"]

    def assistant(self, aid):
        with self.lock:
            return public(self.assistants[aid])

    def phone_number(self, pid):
        with self.lock:
            return public(self.phone_numbers[pid])

    def call(self, cid):
        with self.lock:
            return public(self.calls[cid])

    def snapshot(self):
        with self.lock:
            return copy.deepcopy((self.assistants, self.phone_numbers, self.org))

    def fail_next(self, method, path, status, times=1):
        """The next `times` requests method+path are answered `status` (before any check)."""
        with self.lock:
            self.failures[(method, path)] = [status] * times

    def reset_log(self):
        with self.lock:
            self.requests = []

    def log(self, method=None, prefix="", status=None):
        with self.lock:
            return [r for r in self.requests
                    if (method is None or r["method"] == method) and
                    r["path"].startswith(prefix) and (status is None or r["status"] == status)]

    # ---- HTTP ----

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: without this, Nagle's algorithm
            # and delayed ACKs add 40 ms to every answer on a kept-alive connection.
            disable_nagle_algorithm = True

            def log_message(self, fmt, *args):
                pass

            def do_GET(self):
                fake._serve(self, "GET")

            def do_POST(self):
                fake._serve(self, "POST")

            def do_PATCH(self):
                fake._serve(self, "PATCH")

            def do_DELETE(self):
                fake._serve(self, "DELETE")

        return Handler

    def _serve(self, h, method):
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        status, answer, headers = self._answer(h, method, parts.path, query, body)
        with self.lock:
            self.requests.append({"method": method, "path": parts.path, "query": query,
                                  "body": body, "status": status})
        data = json.dumps(answer).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _answer(self, h, method, path, query, body):
        with self.lock:
            self.count += 1
            limited = self.rate_limit_every and self.count % self.rate_limit_every == 0
            queued = None if limited else self.failures.get((method, path))
            injected = queued.pop(0) if queued else None
        if limited:
            return 429, {"message": "ThrottlerException: Too Many Requests",
                         "statusCode": 429}, {"Retry-After": "0"}
        if h.headers.get("Authorization") != "Bearer " + self.api_key:
            return 401, {"message": "Invalid Key. Hot tip, you may be using the private key "
                         "instead of the public key, or vice versa.", "error": "Unauthorized",
                         "statusCode": 401}, {}
        if injected is not None:
            return injected, {"message": "injected failure", "statusCode": injected}, {}
        try:
            status, answer = self._route(method, path, query, body)
            return status, answer, {}
        except ApiError as e:
            return e.status, e.body, {}

    def _route(self, method, path, query, body):
        seg = path.strip("/").split("/")
        tables = {"assistant": self.assistants, "phone-number": self.phone_numbers,
                  "call": self.calls}
        if seg[0] in tables and len(seg) == 1 and method == "GET":
            return 200, self._list(tables[seg[0]], query)
        if seg[0] in tables and len(seg) == 2 and method == "GET":
            with self.lock:
                obj = tables[seg[0]].get(seg[1])
                if obj is None:
                    raise not_found(method, path)
                return 200, public(obj)
        if seg == ["assistant"] and method == "POST":
            return self._create_assistant(body)
        if seg[0] == "assistant" and len(seg) == 2 and method == "PATCH":
            return self._patch_assistant(seg[1], body, path)
        if seg[0] == "phone-number" and len(seg) == 2 and method == "PATCH":
            return self._patch_phone(seg[1], body, path)
        if seg[0] == "org":
            return self._org(method, seg, body, path)
        raise not_found(method, path)

    def _list(self, table, query):
        errs = check_keys(query, LIST_PARAMS)
        try:
            limit = int(query.get("limit", "100"))
        except ValueError:
            limit = -1
        if not 0 <= limit <= 1000:
            errs.append("limit must not be greater than 1000")
        bounds = {}
        for k in ("createdAtGt", "createdAtLt"):
            if k in query:
                try:
                    bounds[k] = parse_iso_us(query[k])
                except ValueError:
                    errs.append("%s must be a valid ISO 8601 date string" % k)
        if errs:
            raise bad_request(errs)
        with self.lock:
            items = [o for o in table.values()
                     if ("createdAtGt" not in bounds or o["_us"] > bounds["createdAtGt"]) and
                     ("createdAtLt" not in bounds or o["_us"] < bounds["createdAtLt"])]
            items.sort(key=lambda o: (o["_us"], o["id"]), reverse=True)
            return [public(o) for o in items[:limit]]

    def _validate_assistant(self, body):
        if not isinstance(body, dict):
            raise bad_request(["body must be an object"])
        errs = check_keys(body, ASSISTANT_KEYS)
        if "server" in body:
            errs.extend(check_server(body["server"]))
        if "serverMessages" in body:
            errs.extend(check_messages(body["serverMessages"]))
        if errs:
            raise bad_request(errs)

    def _apply(self, obj, body):
        for k, v in body.items():
            if k == "server" and self.server_patch == "merge" and isinstance(obj.get(k), dict):
                obj[k] = dict(obj[k], **v)
            else:
                obj[k] = copy.deepcopy(v)
        obj["updatedAt"] = iso_us(self.clock_us)

    def _create_assistant(self, body):
        self._validate_assistant(body)
        obj = dict(copy.deepcopy(body), id=str(uuid.uuid4()))
        with self.lock:
            self.clock_us += 1000
            self.assistants[obj["id"]] = self._stamp(obj, self.clock_us)
            return 201, public(obj)

    def _patch_assistant(self, aid, body, path):
        self._validate_assistant(body)
        with self.lock:
            obj = self.assistants.get(aid)
            if obj is None:
                raise not_found("PATCH", path)
            if not self.versioning:
                self._apply(obj, body)
                return 200, public(obj)
            draft = obj.get("_draft") or public(obj)
            self._apply(draft, body)
            obj["_draft"] = draft
            return 200, copy.deepcopy(draft)

    def publish(self, aid):
        """Makes the assistant's draft its current (published) version."""
        with self.lock:
            obj = self.assistants[aid]
            draft = obj.pop("_draft", None)
            if draft is not None:
                obj.update(draft)

    def _patch_phone(self, pid, body, path):
        if not isinstance(body, dict):
            raise bad_request(["body must be an object"])
        errs = check_keys(body, PHONE_KEYS)
        if body.get("provider") not in PROVIDERS:
            errs.append("provider must be one of the following values: " + ", ".join(PROVIDERS))
        if "server" in body:
            errs.extend(check_server(body["server"]))
        with self.lock:
            obj = self.phone_numbers.get(pid)
            if obj is None:
                raise not_found("PATCH", path)
            if not errs and body["provider"] != obj["provider"]:
                errs.append("provider cannot be changed")
            if errs:
                raise bad_request(errs)
            self._apply(obj, body)
            return 200, public(obj)

    def _org(self, method, seg, body, path):
        if self.org_mode == "missing":
            raise not_found(method, path)
        if len(seg) == 1 and method == "GET":
            with self.lock:
                return 200, [copy.deepcopy(self.org)]
        if len(seg) != 2 or seg[1] != self.org["id"]:
            raise not_found(method, path)
        if method == "GET":
            with self.lock:
                return 200, copy.deepcopy(self.org)
        if method != "PATCH" or not isinstance(body, dict):
            raise not_found(method, path)
        if self.org_mode == "refuse":
            raise bad_request(check_keys(body, {"name", "hipaaEnabled", "billingLimit"}))
        errs = check_keys(body, {"name", "server"})
        errs.extend(check_server(body["server"]) if "server" in body else [])
        if errs:
            raise bad_request(errs)
        with self.lock:
            if self.org_mode == "accept":
                self.org.update(copy.deepcopy(body))
            return 200, copy.deepcopy(self.org)
