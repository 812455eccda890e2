"""vapictl's command line helps: per-command --help (with the fields a sync sets), a refused key
is an error and not an empty result, a sync reports a count and progress instead of a line
per assistant."""

import os
import subprocess

import pytest

from conftest import BIN, ROOT, free_port
from test_vapictl import URL, seed_assistants, summary, vapi, vapictl  # noqa: F401 (fixture)

COMMANDS = [["assistants", "list"], ["assistants", "sync"], ["assistants", "create"],
            ["phone-numbers", "list"], ["phone-numbers", "sync"], ["org", "set-server"],
            ["backfill"]]


@pytest.mark.parametrize("words", COMMANDS, ids=" ".join)
def test_every_command_answers_help_with_its_own_usage(words):
    # No key and no API: help needs neither.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAPI_", "WEBHOOK_"))}
    env["VAPI_BASE_URL"] = "http://127.0.0.1:%d" % free_port()
    for argv in (words + ["--help"], ["--help"] + words, words + ["--dry-run", "-h"]):
        r = subprocess.run([os.path.join(BIN, "vapictl")] + argv, env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, (argv, r.stderr)
        assert r.stdout.startswith("usage: vapictl " + " ".join(words) + " "), (argv, r.stdout)
        assert "Commands:" not in r.stdout and r.stderr == ""


def test_sync_help_lists_the_fields_it_sets():
    r = subprocess.run([os.path.join(BIN, "vapictl"), "assistants", "sync", "--help"],
                       capture_output=True, text=True, timeout=10)
    for field in ("server.url", "server.headers", "server.timeoutSeconds", "server.backoffPlan",
                  "serverMessages"):
        assert "  " + field + " " in r.stdout, field
    r = subprocess.run([os.path.join(BIN, "vapictl"), "phone-numbers", "sync", "--help"],
                       capture_output=True, text=True, timeout=10)
    assert "server.backoffPlan" in r.stdout and "serverMessages" not in r.stdout


def test_unknown_command_is_quoted_whole(vapi):
    r = vapictl(vapi, "assistants")
    assert r.returncode == 2
    assert 'unknown command "assistants" (see --help)' in r.stderr
    r = vapictl(vapi, "assistants", "frobnicate")
    assert 'unknown command "assistants frobnicate" (see --help)' in r.stderr


def test_a_refused_key_is_an_error_not_an_empty_list(vapi):
    seed_assistants(vapi, 3, 2)
    for argv in (["assistants", "list"], ["assistants", "list", "--json"],
                 ["phone-numbers", "list"], ["assistants", "sync", "--url", URL]):
        r = vapictl(vapi, *argv, env={"VAPI_API_KEY": "not-the-key"})
        assert r.returncode == 1, (argv, r.stdout, r.stderr)
        assert r.stdout == "", (argv, r.stdout)
        assert "401" in r.stderr, (argv, r.stderr)
    assert vapi.log("PATCH") == []


def test_sync_prints_a_count_and_progress_not_a_line_per_assistant(vapi):
    right, wrong = seed_assistants(vapi, 300, 1200)
    r = vapictl(vapi, "assistants", "sync", "--url", URL)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "assistants sync: 1200 changed, 300 unchanged, 0 failed, 0 skipped"]
    progress = [line for line in r.stderr.splitlines() if line.startswith("sync: ")]
    assert progress[0] == "sync: 1000 assistants", r.stderr
    # -v names each change.
    vapi.reset_log()
    seed_assistants(vapi, 0, 4)
    r = vapictl(vapi, "assistants", "sync", "--url", URL, "-v")
    assert r.returncode == 0
    assert len([line for line in r.stdout.splitlines()
                if line.startswith("changed assistant ")]) == 4
    assert summary(r.stdout) == "assistants sync: 4 changed, 1500 unchanged, 0 failed, 0 skipped"


def test_sync_reads_back_and_reports_assistants_whose_published_version_lacks_the_url(vapi):
    # Vapi's assistant versioning: the PATCH lands in a draft; inbound calls keep using the
    # published version, which GET shows.
    vapi.versioning = True
    right, wrong = seed_assistants(vapi, 3, 5)
    r = vapictl(vapi, "assistants", "sync", "--url", URL)
    assert r.returncode == 1, r.stdout + r.stderr
    assert summary(r.stdout) == ("assistants sync: 0 changed, 3 unchanged, 0 failed, 0 skipped,"
                                 " 5 changed only as an unpublished draft")
    drafts = {line.split()[2].rstrip(":") for line in r.stdout.splitlines()
              if line.startswith("unpublished assistant ")}
    assert drafts == wrong
    assert "publish it in Vapi's dashboard" in r.stdout
    assert len(vapi.log("GET", "/assistant/", status=200)) >= 5  # each one read back
    # Published (in the dashboard): the next sync finds them right and changes nothing.
    for a in wrong:
        vapi.publish(a)
    vapi.reset_log()
    r = vapictl(vapi, "assistants", "sync", "--url", URL)
    assert r.returncode == 0
    assert summary(r.stdout) == "assistants sync: 0 changed, 8 unchanged, 0 failed, 0 skipped"
    assert vapi.log("PATCH") == []
