"""Dead letters can be found, fixed and removed one by one: list with filters, show, delete,
redrive by filter, edit. Each command changes exactly the entries it names."""

import json
import os
import re
import stat
import time

from conftest import DEAD, GROUP, STREAM, body, query, seed, wait_until

HOUR = 3600 * 1000


def good(call_id):
    return body({"type": "status-update", "status": "ended",
                 "call": {"id": call_id, "type": "webCall", "assistantId": "asst_1"}})


def dead_letters(stack):
    """Seven dead letters, an hour apart ending one hour ago: {name: id}."""
    r = stack.redis.client()
    r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    t0 = int(time.time() * 1000) - 7 * HOUR
    spec = [("bad1", b"{broken", "invalid JSON at line 1 column 2: string or '}' expected"),
            ("max1", good("call-m1"), "max deliveries: delivered 6 times"),
            ("pg1", good("call-p1"), "postgres: ERROR: value too long"),
            ("max2", good("call-m2"), "max deliveries: delivered 6 times"),
            ("notype", b'{"message": {"call": {"id": "call-nt"}}}', "no message.type"),
            ("max3", good("call-m3"), "max deliveries: delivered 7 times"),
            ("bad2", b"nope", "invalid JSON at line 1 column 1: '[' or '{' expected")]
    ids = {}
    for i, (name, raw, reason) in enumerate(spec):
        at = t0 + i * HOUR
        ids[name] = r.xadd(DEAD, {"reason": reason, "original_id": "%d-0" % (at - 5),
                                  "attempts": "6", "dead_at": str(at), "consumer": "w9",
                                  "body": raw, "received_at": str(at - 10),
                                  "request_id": "req-" + name, "source": "http"},
                           id="%d-0" % at).decode()
    return ids


def remaining(stack):
    return [i.decode() for i, _ in stack.redis.client().xrange(DEAD)]


def test_list_has_time_call_and_reason_columns_and_filters(stack):
    ids = dead_letters(stack)
    res = stack.run_worker_cmd("dlq", "list")
    assert res.returncode == 0, res.stderr
    head, *rows = res.stdout.splitlines()
    assert head.split() == ["ID", "DEAD_AT", "CALL_ID", "ATTEMPTS", "REASON"]
    assert [r.split()[0] for r in rows] == list(ids.values())
    max1 = rows[1].split()
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", max1[1])
    assert max1[2] == "call-m1" and max1[3] == "6" and rows[1].endswith("delivered 6 times")
    assert rows[0].split()[2] == "-"  # no call id in a broken body
    res = stack.run_worker_cmd("dlq", "list", "--reason", "MAX DELIVERIES")
    assert [r.split()[0] for r in res.stdout.splitlines()[1:]] == \
        [ids["max1"], ids["max2"], ids["max3"]]
    since = ids["pg1"].split("-")[0]
    until = ids["max3"].split("-")[0]
    res = stack.run_worker_cmd("dlq", "list", "--since", since, "--until", until, "--limit", "3")
    assert [r.split()[0] for r in res.stdout.splitlines()[1:]] == \
        [ids["pg1"], ids["max2"], ids["notype"]]
    res = stack.run_worker_cmd("dlq", "list", "--reason", "nothing like this")
    assert res.stdout.splitlines()[1:] == ["(no dead letters match)"]
    assert stack.run_worker_cmd("dlq", "list", "--limit", "0").returncode == 2
    assert stack.run_worker_cmd("dlq", "list", "--since", "last week").returncode == 2


def test_show_has_readable_times(stack):
    ids = dead_letters(stack)
    res = stack.run_worker_cmd("dlq", "show", ids["max1"])
    assert res.returncode == 0
    at = int(ids["max1"].split("-")[0])
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at // 1000)) + ".%03dZ" % (at % 1000)
    assert "id: %s (dead-lettered %s)" % (ids["max1"], iso) in res.stdout
    assert "dead_at: %s (%d)" % (iso, at) in res.stdout
    assert "received_at: " in res.stdout and "body: " + good("call-m1").decode() in res.stdout


def test_delete_removes_exactly_the_ids_named(stack):
    ids = dead_letters(stack)
    res = stack.run_worker_cmd("dlq", "delete", ids["bad1"], ids["notype"])
    assert res.returncode == 0 and "deleted: 2, not found: 0" in res.stdout
    assert remaining(stack) == [v for k, v in ids.items() if k not in ("bad1", "notype")]
    res = stack.run_worker_cmd("dlq", "delete", ids["bad1"], ids["bad2"])
    assert res.returncode == 1 and "deleted: 1, not found: 1" in res.stdout
    assert ids["bad1"] in res.stderr and "no such dead letter" in res.stderr
    assert remaining(stack) == [ids[k] for k in ("max1", "pg1", "max2", "max3")]
    assert stack.run_worker_cmd("dlq", "delete").returncode == 2
    assert stack.redis.client().xlen(STREAM) == 0


def test_redrive_by_reason_moves_exactly_those_and_they_are_filed(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    ids = dead_letters(stack)
    res = stack.run_worker_cmd("dlq", "redrive", "--reason", "max deliveries", "--limit", "2")
    assert res.returncode == 0, res.stderr
    assert "redriven: 2, left malformed: 0, failed: 0" in res.stdout
    assert remaining(stack) == [v for k, v in ids.items() if k not in ("max1", "max2")]
    res = stack.run_worker_cmd("dlq", "redrive", "--reason", "max deliveries")
    assert "redriven: 1," in res.stdout
    assert remaining(stack) == [v for k, v in ids.items() if not k.startswith("max")]
    entries = stack.redis.client().xrange(STREAM)
    assert [f[b"redriven_from"].decode() for _, f in entries] == \
        [ids["max1"], ids["max2"], ids["max3"]]
    assert entries[0][1][b"request_id"] == b"req-max1"
    stack.start_worker("w1")
    stack.wait_drained(30)
    assert query(stack.pg, "SELECT vapi_call_id FROM calls ORDER BY 1") == \
        [("call-m1",), ("call-m2",), ("call-m3",)]
    # By filter, the malformed ones are left in place and named.
    res = stack.run_worker_cmd("dlq", "redrive", "--reason", "invalid JSON")
    assert res.returncode == 1 and "redriven: 0, left malformed: 2" in res.stdout
    assert res.stderr.count("dlq edit ") == 2
    assert remaining(stack) == [ids["bad1"], ids["pg1"], ids["notype"], ids["bad2"]]
    assert stack.run_worker_cmd("dlq", "redrive").returncode == 2
    assert stack.run_worker_cmd("dlq", "redrive", ids["pg1"], "--all").returncode == 2


def editor(tmp, name, text):
    """An $EDITOR that replaces the file it is given with text."""
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\ncat > \"$1\" <<'EOF'\n%s\nEOF\n" % text)
    os.chmod(path, stat.S_IRWXU)
    return path


def test_edit_requeues_the_fixed_body_and_only_then_removes_the_dead_letter(stack, tmp_root):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    ids = dead_letters(stack)
    # An edit that is still not JSON: refused, nothing changes, the edit is kept.
    bad = editor(tmp_root, "bad-editor", '{"message": {"type": ')
    res = stack.run_worker_cmd("dlq", "edit", ids["bad1"], EDITOR=bad, VISUAL="")
    assert res.returncode == 1
    assert "not JSON: line " in res.stderr and "dead letter kept" in res.stderr
    kept = re.search(r"the edit is in (\S+)", res.stderr).group(1)
    assert open(kept).read().startswith('{"message": {"type": ')
    assert remaining(stack) == list(ids.values())
    assert stack.redis.client().xlen(STREAM) == 0
    # JSON, but not a message: refused too.
    res = stack.run_worker_cmd("dlq", "edit", ids["bad1"],
                               EDITOR=editor(tmp_root, "no-type", '{"message": {}}'), VISUAL="")
    assert res.returncode == 1 and "message.type" in res.stderr
    # An editor that fails: nothing changes.
    res = stack.run_worker_cmd("dlq", "edit", ids["bad1"], EDITOR="false", VISUAL="")
    assert res.returncode == 1 and "exited with status 1" in res.stderr
    assert remaining(stack) == list(ids.values())
    fixed = json.loads(good("call-fixed"))
    res = stack.run_worker_cmd("dlq", "edit", ids["bad1"],
                               EDITOR=editor(tmp_root, "fix", json.dumps(fixed, indent=2)),
                               VISUAL="")
    assert res.returncode == 0, res.stderr
    assert "removed dead letter " + ids["bad1"] in res.stdout
    assert remaining(stack) == [v for k, v in ids.items() if k != "bad1"]
    (new_id, fields), = stack.redis.client().xrange(STREAM)
    assert re.search(r"re-queued %s as %s " % (ids["bad1"], new_id.decode()), res.stdout)
    assert fields[b"redriven_from"].decode() == ids["bad1"]
    assert fields[b"request_id"] == b"req-bad1" and fields[b"source"] == b"http"
    assert json.loads(fields[b"body"]) == fixed
    stack.start_worker("w1")
    stack.wait_drained(30)
    wait_until(lambda: query(stack.pg, "SELECT vapi_call_id FROM calls") == [("call-fixed",)],
               10, "the edited message to be filed")
    res = stack.run_worker_cmd("dlq", "edit", ids["bad1"], EDITOR="true", VISUAL="")
    assert res.returncode == 1 and "no such dead letter" in res.stderr
