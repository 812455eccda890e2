"""vapictl against a fake Vapi API (fake_vapi.py) and, for backfill, the real worker, Redis and
PostgreSQL. The fake answers every 7th request with 429, so every test also runs through
vapictl's retries."""

import copy
import datetime
import json
import os
import subprocess

import pytest

from conftest import BIN, ROOT, SECRET, STREAM, query, seed
from fake_vapi import ORG_ID, FakeVapi

API_KEY = "vapi-private-key-for-tests"
URL = "https://switchboard.example.com/api/vapi/webhook"
OTHER_URL = "https://other.example.com/vapi"
NOTIFY = ["status-update", "end-of-call-report", "hang"]
BACKOFF = {"type": "exponential", "maxRetries": 5, "baseDelaySeconds": 1,
           "excludedStatusCodes": [400, 401, 403, 404, 405, 413]}
SERVER = {"url": URL, "timeoutSeconds": 20, "headers": {"X-Vapi-Secret": SECRET},
          "backoffPlan": BACKOFF}
T0_US = 1767225600000000  # 2026-01-01T00:00:00Z in microseconds


@pytest.fixture
def vapi():
    fake = FakeVapi(API_KEY).start()
    yield fake
    fake.stop()


def vapictl(fake, *args, env=None, timeout=300):
    """Runs bin/vapictl against fake; env entries set to None are removed."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("VAPI_", "WEBHOOK_", "REDIS_", "SWITCHBOARD_"))}
    e.update(VAPI_API_KEY=API_KEY, VAPI_BASE_URL=fake.url, WEBHOOK_SECRET=SECRET)
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = str(v)
    r = subprocess.run([os.path.join(BIN, "vapictl")] + list(args), env=e, cwd=ROOT,
                       capture_output=True, text=True, timeout=timeout)
    assert "Sanitizer" not in r.stderr, r.stderr
    return r


def summary(out):
    """The final summary line of a sync."""
    return [line for line in out.splitlines() if " sync" in line and "unchanged" in line][-1]


def right_assistant(i):
    """An assistant already configured as vapictl wants it (in varied but equal forms)."""
    server = copy.deepcopy(SERVER)
    msgs = list(NOTIFY)
    if i % 3 == 1:
        server["timeoutSeconds"] = 20.0
        msgs.reverse()
    if i % 3 == 2:
        server["backoffPlan"]["excludedStatusCodes"].reverse()
        server["credentialId"] = "cred-%d" % i  # a key vapictl does not manage
    return {"name": "right-%04d" % i, "server": server, "serverMessages": msgs}


def wrong_assistant(i):
    """An assistant that differs from the desired configuration in one of several ways."""
    a = right_assistant(i)
    a["name"] = "wrong-%04d" % i
    kind = i % 7
    if kind == 0:
        del a["server"]
    elif kind == 1:
        a["server"]["url"] = OTHER_URL
    elif kind == 2:
        a["server"]["headers"] = {"X-Vapi-Secret": "old-secret"}
    elif kind == 3:
        del a["server"]["backoffPlan"]
    elif kind == 4:
        a["server"]["timeoutSeconds"] = 30
    elif kind == 5:
        a["serverMessages"] = NOTIFY + ["tool-calls", "transcript"]
    else:
        del a["serverMessages"]
    return a


def created_us(i):
    # Three assistants per millisecond, microseconds apart: some millisecond is split across
    # every page boundary, and the stored time is finer than the createdAt shown.
    return T0_US + ((i + 1) // 3) * 1000 + (i % 3) * 137


def seed_assistants(fake, n_right, n_wrong):
    """Adds the assistants in shuffled creation order; returns (right ids, wrong ids)."""
    right, wrong = set(), set()
    for i in range(n_right + n_wrong):
        if i % 5 < 2 and len(right) < n_right or len(wrong) >= n_wrong:
            right.add(fake.add_assistant(right_assistant(i), created_us(i)))
        else:
            wrong.add(fake.add_assistant(wrong_assistant(i), created_us(i)))
    return right, wrong


def in_sync(a):
    s = a.get("server") or {}
    return (s.get("url") == URL and s.get("headers") == {"X-Vapi-Secret": SECRET} and
            s.get("timeoutSeconds") == 20 and
            sorted(s.get("backoffPlan", {}).get("excludedStatusCodes", [])) ==
            sorted(BACKOFF["excludedStatusCodes"]) and
            {k: v for k, v in s.get("backoffPlan", {}).items() if k != "excludedStatusCodes"} ==
            {k: v for k, v in BACKOFF.items() if k != "excludedStatusCodes"} and
            sorted(a.get("serverMessages", [])) == sorted(NOTIFY))


def patched_ids(fake, prefix="/assistant/"):
    return [r["path"][len(prefix):] for r in fake.log("PATCH", prefix, status=200)]


# ---- sync ----

def test_sync_2500_assistants_changes_exactly_those_that_differ(vapi):
    right, wrong = seed_assistants(vapi, 1000, 1500)
    before = {a: vapi.assistant(a) for a in right}

    r = vapictl(vapi, "assistants", "sync", "--url", URL)
    print(r.stderr[-2000:])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    assert summary(r.stdout) == \
        "assistants sync: 1500 changed, 1000 unchanged, 0 failed, 0 skipped"
    ids = patched_ids(vapi)
    assert len(ids) == 1500 and set(ids) == wrong
    # The list pages (each changed assistant is also read back with GET /assistant/{id}).
    pages = [p for p in vapi.log("GET", "/assistant", status=200) if p["path"] == "/assistant"]
    print("%d pages, %d answers 429" % (len(pages), len(vapi.log(status=429))))
    assert len(pages) >= 3 and all(p["query"]["limit"] == "1000" for p in pages)
    # The fake answered every 7th request 429: vapictl retried each one.
    assert len(vapi.log(status=429)) >= (1500 + len(pages)) // 7
    assert not vapi.log(status=400)
    for aid in wrong:
        assert in_sync(vapi.assistant(aid)), vapi.assistant(aid)
        assert vapi.assistant(aid)["name"].startswith("wrong-")  # nothing else touched
    assert {a: vapi.assistant(a) for a in right} == before
    # The PATCH bodies carry the whole server object and nothing retired.
    body = vapi.log("PATCH", "/assistant/")[0]["body"]
    assert set(body) == {"server", "serverMessages"}
    assert body["server"] == SERVER and sorted(body["serverMessages"]) == sorted(NOTIFY)

    vapi.reset_log()
    r = vapictl(vapi, "assistants", "sync", "--url", URL)
    assert r.returncode == 0, r.stderr
    assert summary(r.stdout) == "assistants sync: 0 changed, 2500 unchanged, 0 failed, 0 skipped"
    assert vapi.log("PATCH") == []


def test_dry_run_changes_nothing(vapi):
    right, wrong = seed_assistants(vapi, 40, 60)
    before = vapi.snapshot()
    r = vapictl(vapi, "assistants", "sync", "--url", URL, "--dry-run", "--page-size", "30")
    assert r.returncode == 0, r.stderr
    assert summary(r.stdout) == \
        "assistants sync (dry run): 60 would change, 40 unchanged, 0 failed, 0 skipped"
    planned = {line.split()[3].rstrip(":") for line in r.stdout.splitlines()
               if line.startswith("would change assistant ")}
    assert planned == wrong
    assert vapi.log("PATCH") == [] and vapi.log("POST") == []
    assert vapi.snapshot() == before


def test_small_pages_split_milliseconds_and_lose_nothing(vapi):
    right, wrong = seed_assistants(vapi, 0, 100)
    r = vapictl(vapi, "assistants", "sync", "--url", URL, "--page-size", "7")
    assert r.returncode == 0, r.stderr
    assert sorted(patched_ids(vapi)) == sorted(wrong)
    assert all(in_sync(vapi.assistant(a)) for a in wrong)


def test_sync_converges_when_patch_merges_server(vapi):
    vapi.server_patch = "merge"
    _, wrong = seed_assistants(vapi, 10, 30)
    r = vapictl(vapi, "assistants", "sync", "--url", URL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(patched_ids(vapi)) == 30
    vapi.reset_log()
    r = vapictl(vapi, "assistants", "sync", "--url", URL)
    assert r.returncode == 0 and vapi.log("PATCH") == [], r.stdout


def test_failed_patches_are_counted_and_transient_ones_retried(vapi):
    _, wrong = seed_assistants(vapi, 5, 10)
    refused, flaky = sorted(wrong)[:2]
    vapi.fail_next("PATCH", "/assistant/" + refused, 400, times=20)
    vapi.fail_next("PATCH", "/assistant/" + flaky, 503, times=2)
    r = vapictl(vapi, "assistants", "sync", "--url", URL)
    assert r.returncode == 1, r.stdout + r.stderr
    assert summary(r.stdout) == "assistants sync: 9 changed, 5 unchanged, 1 failed, 0 skipped"
    assert "failed assistant %s: PATCH /assistant/%s: HTTP 400: injected failure" % (
        refused, refused) in r.stdout
    # A 400 is not retried; the 503s are, and the third attempt succeeds.
    assert [x["status"] for x in vapi.log("PATCH", "/assistant/" + refused)
            if x["status"] != 429] == [400]
    assert [x["status"] for x in vapi.log("PATCH", "/assistant/" + flaky)
            if x["status"] != 429] == [503, 503, 200]
    assert in_sync(vapi.assistant(flaky)) and not in_sync(vapi.assistant(refused))


def test_extra_server_messages(vapi):
    aid = vapi.add_assistant({"name": "a", "server": dict(SERVER), "serverMessages": NOTIFY})
    r = vapictl(vapi, "assistants", "sync", "--url", URL, "--messages", "transcript, hang")
    assert r.returncode == 0, r.stderr
    assert sorted(vapi.assistant(aid)["serverMessages"]) == sorted(NOTIFY + ["transcript"])
    r = vapictl(vapi, "assistants", "sync", "--url", URL, "--messages", "tool-calls")
    assert r.returncode == 2 and "tool-calls expects an answer" in r.stderr
    assert len(vapi.log("PATCH")) == 1


def test_phone_number_patches_carry_provider(vapi):
    ids = {}
    for i, provider in enumerate(["twilio", "vapi", "byo-phone-number", "vonage", "telnyx"]):
        ids[provider] = vapi.add_phone_number({
            "provider": provider, "number": "+1555000%04d" % i, "assistantId": "asst-%d" % i,
            "server": {"url": OTHER_URL}})
    squad = vapi.add_phone_number({"provider": "twilio", "number": "+15550009001",
                                   "squadId": "squad-1"})
    right = vapi.add_phone_number({"provider": "vapi", "number": "+15550009002",
                                   "assistantId": "asst-r", "server": dict(SERVER)})
    # No assistant, squad or workflow: its URL answers assistant-request; left alone.
    unassigned = vapi.add_phone_number({"provider": "twilio", "number": "+15550009003",
                                        "server": {"url": "https://router.example/ar"}})

    r = vapictl(vapi, "phone-numbers", "sync", "--url", URL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert summary(r.stdout) == \
        "phone-numbers sync: 6 changed, 1 unchanged, 0 failed, 1 skipped"
    assert "skipped phone-number %s" % unassigned in r.stdout
    patches = vapi.log("PATCH", "/phone-number/", status=200)
    assert len(patches) == 6
    for p in patches:
        pid = p["path"].rsplit("/", 1)[1]
        assert p["body"]["provider"] == vapi.phone_number(pid)["provider"]
        assert p["body"]["server"] == SERVER and set(p["body"]) == {"provider", "server"}
    assert {p["path"].rsplit("/", 1)[1] for p in patches} == set(ids.values()) | {squad}
    assert vapi.phone_number(right)["server"] == SERVER
    assert vapi.phone_number(unassigned)["server"]["url"] == "https://router.example/ar"

    vapi.reset_log()
    r = vapictl(vapi, "phone-numbers", "sync", "--url", URL)
    assert r.returncode == 0 and vapi.log("PATCH") == [], r.stdout
    r = vapictl(vapi, "phone-numbers", "sync", "--url", URL, "--include-unassigned")
    assert r.returncode == 0, r.stdout
    assert vapi.phone_number(unassigned)["server"] == SERVER


# ---- list ----

def test_list_json_and_table(vapi):
    good = vapi.add_assistant({"name": "good", "server": dict(SERVER), "serverMessages": NOTIFY})
    stale = vapi.add_assistant({"name": "stale", "server": {"url": URL}})
    other = vapi.add_assistant({"name": "other", "server": {"url": OTHER_URL}})
    bare = vapi.add_assistant({"name": "bare"})

    r = vapictl(vapi, "assistants", "list", "--json", "--url", URL)
    assert r.returncode == 0, r.stderr
    rows = {row["id"]: row for row in json.loads(r.stdout)}
    assert list(rows) == [bare, other, stale, good]  # newest first
    assert rows[good]["matches"] is True and rows[good]["inSync"] is True
    assert rows[good]["differs"] == []
    assert rows[stale]["matches"] is True and rows[stale]["inSync"] is False
    assert rows[stale]["differs"] == ["headers", "timeoutSeconds", "backoffPlan",
                                      "serverMessages"]
    assert rows[other]["matches"] is False and rows[other]["serverUrl"] == OTHER_URL
    assert rows[bare]["serverUrl"] is None and rows[bare]["name"] == "bare"

    # VAPI_WEBHOOK_URL is the default desired URL; without a secret only the URL is judged.
    r = vapictl(vapi, "assistants", "list", "--json",
                env={"VAPI_WEBHOOK_URL": OTHER_URL, "WEBHOOK_SECRET": None})
    rows = {row["id"]: row for row in json.loads(r.stdout)}
    assert rows[other]["matches"] is True and rows[good]["matches"] is False
    assert "inSync" not in rows[good]

    r = vapictl(vapi, "assistants", "list", "--url", URL)
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "MATCH", "SYNC", "SERVER", "URL"]
    assert lines[-1] == "4 assistants, 2 with the webhook URL " + URL
    assert any(line.startswith(good) and " yes " in line and " ok " in line for line in lines)

    pn = vapi.add_phone_number({"provider": "twilio", "number": "+15550001111",
                                "assistantId": good, "server": dict(SERVER)})
    r = vapictl(vapi, "phone-numbers", "list", "--json", "--url", URL)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [{
        "id": pn, "name": None, "createdAt": vapi.phone_number(pn)["createdAt"],
        "serverUrl": URL, "matches": True, "number": "+15550001111", "provider": "twilio",
        "assistantId": good, "unassigned": False, "inSync": True, "differs": []}]
    assert vapi.log("PATCH") == [] and vapi.log("POST") == []


def test_empty_list_is_valid_json(vapi):
    r = vapictl(vapi, "phone-numbers", "list", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == []


# ---- create ----

def write_json(tmp_path, obj, name="assistant.json"):
    p = tmp_path / name
    p.write_text(json.dumps(obj))
    return str(p)


def test_create_injects_the_server(vapi, tmp_path):
    f = write_json(tmp_path, {"name": "Sales", "firstMessage": "Hello",
                              "model": {"provider": "openai", "model": "gpt-4o"},
                              "serverMessages": ["tool-calls", "transcript"]})
    r = vapictl(vapi, "assistants", "create", "--file", f, "--url", URL)
    assert r.returncode == 0, r.stdout + r.stderr
    body = vapi.log("POST", "/assistant", status=201)[0]["body"]
    assert body["server"] == SERVER and body["serverMessages"] == NOTIFY
    assert body["name"] == "Sales" and body["model"]["model"] == "gpt-4o"
    new_id = r.stdout.split()[2]
    assert r.stdout.startswith("created assistant ") and in_sync(vapi.assistant(new_id))

    r = vapictl(vapi, "assistants", "create", "--file", f, "--url", URL, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["server"]["url"] == URL


def test_create_refuses_a_foreign_server(vapi, tmp_path):
    f = write_json(tmp_path, {"name": "Other", "server": {"url": OTHER_URL}})
    r = vapictl(vapi, "assistants", "create", "--file", f, "--url", URL)
    assert r.returncode == 2 and "server.url is %s" % OTHER_URL in r.stderr
    assert vapi.log("POST") == []

    r = vapictl(vapi, "assistants", "create", "--file", f, "--url", URL, "--keep-server")
    assert r.returncode == 0, r.stderr
    assert vapi.log("POST", status=201)[0]["body"] == {"name": "Other",
                                                        "server": {"url": OTHER_URL}}

    # Its own URL with other settings is fine: the server is replaced as a whole.
    f = write_json(tmp_path, {"name": "Ours", "server": {"url": URL, "timeoutSeconds": 5}})
    r = vapictl(vapi, "assistants", "create", "--file", f, "--url", URL)
    assert r.returncode == 0 and vapi.log("POST", status=201)[-1]["body"]["server"] == SERVER


def test_create_refuses_retired_fields_and_bad_files(vapi, tmp_path):
    f = write_json(tmp_path, {"name": "Old", "serverUrl": URL, "serverUrlSecret": "x"})
    r = vapictl(vapi, "assistants", "create", "--file", f, "--url", URL)
    assert r.returncode == 2 and "serverUrl is no longer accepted" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x",\n "model": }')
    r = vapictl(vapi, "assistants", "create", "--file", str(bad), "--url", URL)
    assert r.returncode == 2 and "bad.json: line 2" in r.stderr
    r = vapictl(vapi, "assistants", "create", "--file", str(tmp_path / "none.json"),
                "--url", URL)
    assert r.returncode == 2
    assert vapi.log("POST") == []


# ---- org ----

def test_org_set_server_falls_back_to_the_dashboard(vapi):
    r = vapictl(vapi, "org", "set-server", "--url", URL)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "https://dashboard.vapi.ai" in r.stdout and URL in r.stdout
    assert "property server should not exist" in r.stdout
    assert SECRET not in r.stdout + r.stderr  # the steps name the variable, not the value
    patch = vapi.log("PATCH", "/org/")
    assert [p["path"] for p in patch if p["status"] != 429][0] == "/org/" + ORG_ID
    assert patch[-1]["body"] == {"server": SERVER}

    vapi.org_mode = "missing"
    r = vapictl(vapi, "org", "set-server", "--url", URL)
    assert r.returncode == 3 and "GET /org: HTTP 404" in r.stdout

    vapi.org_mode = "ignore"
    r = vapictl(vapi, "org", "set-server", "--url", URL, "--org-id", ORG_ID)
    assert r.returncode == 3 and "was accepted, but" in r.stdout


def test_org_set_server_where_the_route_works(vapi):
    vapi.org_mode = "accept"
    r = vapictl(vapi, "org", "set-server", "--url", URL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "organization %s: server URL set to %s\n" % (ORG_ID, URL)
    assert vapi.snapshot()[2]["server"] == SERVER


# ---- configuration ----

def test_configuration_errors_name_the_variable(vapi, tmp_path):
    r = vapictl(vapi, "assistants", "list", env={"VAPI_API_KEY": None})
    assert r.returncode == 2 and "VAPI_API_KEY: required" in r.stderr
    r = vapictl(vapi, "assistants", "sync", "--url", URL, env={"WEBHOOK_SECRET": None})
    assert r.returncode == 2 and "WEBHOOK_SECRET: required" in r.stderr
    r = vapictl(vapi, "assistants", "list", env={"VAPI_BASE_URL": "api.vapi.ai"})
    assert r.returncode == 2 and "VAPI_BASE_URL" in r.stderr
    r = vapictl(vapi, "assistants", "sync", "--url", URL,
                env={"VAPI_WEBHOOK_TIMEOUT_SECONDS": "900"})
    assert r.returncode == 2 and "VAPI_WEBHOOK_TIMEOUT_SECONDS" in r.stderr
    r = vapictl(vapi, "assistants", "sync")
    assert r.returncode == 2 and "VAPI_WEBHOOK_URL" in r.stderr
    r = vapictl(vapi, "assistants", "sync", "--url", "ftp://x")
    assert r.returncode == 2 and "--url" in r.stderr
    r = vapictl(vapi, "backfill", "--since", "2026-01-01", env={"REDIS_URL": "http://x"})
    assert r.returncode == 2 and "REDIS_URL" in r.stderr
    r = vapictl(vapi, "assistants", "list", "--dry-run")
    assert r.returncode == 2 and "--dry-run does not apply" in r.stderr
    for flag in ("--api-key=x", "--secret", "--webhook-secret=x"):
        r = vapictl(vapi, "assistants", "sync", "--url", URL, flag)
        assert r.returncode == 2 and "never read from the command line" in r.stderr
    assert vapi.log() == []

    key = tmp_path / "key"
    key.write_text(API_KEY + "\n")
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    vapi.add_assistant({"name": "a"})
    r = vapictl(vapi, "assistants", "sync", "--url", URL,
                env={"VAPI_API_KEY": None, "VAPI_API_KEY_FILE": key,
                     "WEBHOOK_SECRET": None, "WEBHOOK_SECRET_FILE": secret})
    assert r.returncode == 0, r.stderr
    assert vapi.log("PATCH", status=200)[0]["body"]["server"]["headers"] == \
        {"X-Vapi-Secret": SECRET}
    r = vapictl(vapi, "assistants", "list", env={"VAPI_API_KEY_FILE": key})
    assert r.returncode == 2 and "both set" in r.stderr
    r = vapictl(vapi, "assistants", "list",
                env={"VAPI_API_KEY": None, "VAPI_API_KEY_FILE": tmp_path / "missing"})
    assert r.returncode == 2 and "VAPI_API_KEY_FILE: cannot open" in r.stderr

    # A key the API does not accept: 401, not retried, exit 1.
    r = vapictl(vapi, "assistants", "list", env={"VAPI_API_KEY": "wrong"})
    assert r.returncode == 1 and "HTTP 401" in r.stderr


# ---- backfill ----

def iso(us):
    return (datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) +
            datetime.timedelta(microseconds=us)).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def parse_iso(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def make_call(i, status="ended", legacy=False):
    start = T0_US + i * 60000000
    call = {"id": "bf-call-%03d" % i, "orgId": ORG_ID, "type": "inboundPhoneCall",
            "status": status, "phoneNumberId": "pn_bf_%d" % (i % 2), "assistantId": "asst-x",
            "customer": {"number": "+1555777%04d" % i}, "startedAt": iso(start)}
    if status != "ended":
        return call
    call.update(endedAt=iso(start + 45000000 + i * 1000), endedReason="customer-ended-call",
                cost=round(0.05 + i / 100, 2))
    if legacy:
        call.update(transcript="AI: hi %d" % i, recordingUrl="https://rec.example/%d.wav" % i,
                    summary="legacy summary %d" % i)
    else:
        call.update(artifact={"transcript": "AI: hello %d" % i,
                              "recordingUrl": "https://rec.example/%d.wav" % i,
                              "messages": [{"role": "bot", "message": "hello"}]},
                    analysis={"summary": "summary %d" % i, "successEvaluation": "true"})
    return call


def test_backfill_lands_calls_in_postgres(vapi, stack):
    seed(stack.pg, ["org_bf"], [("pn_bf_0", "org_bf"), ("pn_bf_1", "org_bf")])
    ended = {}
    for i in range(40):
        c = make_call(i, legacy=i % 4 == 0)
        vapi.add_call(c, created_us=T0_US + i * 60000000)
        ended[c["id"]] = c
    for i in range(40, 43):  # still going: no report yet
        vapi.add_call(make_call(i, status="in-progress"), created_us=T0_US + i * 60000000)
    for i in range(1, 6):  # before --since
        vapi.add_call(make_call(100 + i), created_us=T0_US - i * 60000000)

    env = {"REDIS_URL": stack.redis.url}
    since = iso(T0_US - 1000)
    r = vapictl(vapi, "backfill", "--since", since, "--page-size", "15", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1] == \
        "backfill: 43 calls listed, 40 enqueued, 3 not ended, 0 failed"
    assert all(q["query"]["createdAtGt"] == since for q in vapi.log("GET", "/call"))

    entries = stack.redis.client().xrange(STREAM)
    assert len(entries) == 40
    for _, f in entries:
        assert f[b"source"] == b"backfill"
        cid = f[b"request_id"].decode()[len("backfill-"):]
        assert cid in ended and int(f[b"received_at"]) > 0
        msg = json.loads(f[b"body"])["message"]
        assert msg["type"] == "end-of-call-report" and msg["call"] == vapi.call(cid)
        assert msg["phoneNumber"] == {"id": ended[cid]["phoneNumberId"]}

    stack.start_worker("w1")
    stack.wait_drained()
    rows = query(stack.pg, "SELECT vapi_call_id, organization_id, status, started_at, ended_at, "
                 "ended_reason, cost, transcript, recording_url, summary, customer_number, "
                 "updated_at FROM calls ORDER BY vapi_call_id")
    assert [row[0] for row in rows] == sorted(ended)
    for (cid, org, status, started, end, reason, cost, transcript, rec, summ, cust,
         _) in rows:
        c, i = ended[cid], int(cid[-3:])
        assert org == "org_bf" and status == "ended" and reason == "customer-ended-call"
        assert started == parse_iso(c["startedAt"]) and end == parse_iso(c["endedAt"])
        assert float(cost) == c["cost"] and cust == c["customer"]["number"]
        assert rec == "https://rec.example/%d.wav" % i
        if i % 4 == 0:
            assert transcript == "AI: hi %d" % i and summ == "legacy summary %d" % i
        else:
            assert transcript == "AI: hello %d" % i and summ == "summary %d" % i
    events = query(stack.pg, "SELECT count(*), count(DISTINCT vapi_call_id) FROM call_events "
                   "WHERE type = 'end-of-call-report' AND source = 'backfill'")
    assert events == [(40, 40)]

    # Overlap is harmless: a second run adds entries, but the rows stay as they were.
    r = vapictl(vapi, "backfill", "--since", since, env=env)
    assert r.returncode == 0, r.stderr
    stack.wait_drained()
    assert query(stack.pg, "SELECT vapi_call_id, organization_id, status, started_at, "
                 "ended_at, ended_reason, cost, transcript, recording_url, summary, "
                 "customer_number, updated_at FROM calls ORDER BY vapi_call_id") == rows
    assert query(stack.pg, "SELECT count(*) FROM call_events") == [(40,)]


def test_backfill_window_and_dry_run(vapi, stack):
    for i in range(10):
        vapi.add_call(make_call(i), created_us=T0_US + i * 60000000)
    since, until = str((T0_US + 2 * 60000000) // 1000), iso(T0_US + 7 * 60000000)
    r = vapictl(vapi, "backfill", "--since", since, "--until", until, "--dry-run",
                env={"REDIS_URL": stack.redis.url})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == \
        "backfill (dry run): 4 calls listed, 4 would be enqueued, 0 not ended, 0 failed"
    assert sorted(line.split()[3] for line in r.stdout.splitlines()
                  if line.startswith("would enqueue")) == ["bf-call-%03d" % i
                                                           for i in (3, 4, 5, 6)]
    assert stack.redis.client().exists(STREAM) == 0

    r = vapictl(vapi, "backfill", "--since", until, "--until", since)
    assert r.returncode == 2 and "--until must be later" in r.stderr
    r = vapictl(vapi, "backfill", "--since", "yesterday")
    assert r.returncode == 2 and "--since" in r.stderr


def test_backfill_spreads_calls_over_the_shards(vapi, stack):
    for i in range(10):
        vapi.add_call(make_call(i), created_us=T0_US + i * 60000000)
    r = vapictl(vapi, "backfill", "--since", iso(T0_US - 1000),
                env={"REDIS_URL": stack.redis.url, "SWITCHBOARD_SHARDS": "2"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1] == \
        "backfill: 10 calls listed, 10 enqueued, 0 not ended, 0 failed"
    client = stack.redis.client()
    shards = [client.xrange("%s:{%d}" % (STREAM, i)) for i in range(2)]
    assert [len(s) for s in shards] == [5, 5]  # round-robin
    ids = sorted(f[b"request_id"].decode() for s in shards for _, f in s)
    assert ids == ["backfill-bf-call-%03d" % i for i in range(10)]
    assert client.exists(STREAM) == 0

    r = vapictl(vapi, "backfill", "--since", iso(T0_US - 1000),
                env={"REDIS_URL": stack.redis.url, "SWITCHBOARD_SHARDS": "300"})
    assert r.returncode == 2 and "SWITCHBOARD_SHARDS" in r.stderr
