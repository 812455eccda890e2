"""The operator commands help instead of hang: --help on every subcommand, --timeout with a
one-line reason, settings that cannot work named, readable times, progress lines."""

import os
import re
import subprocess
import time

import psycopg2
import pytest

from conftest import (BIN, DEAD, GROUP, ROOT, STREAM, PgCluster, RedisServer, body, free_port,
                      seed, wait_until)

WORKER = os.path.join(BIN, "switchboard-worker")

SUBCOMMANDS = [["run"], ["migrate"], ["status"], ["drain"], ["replay"], ["reroute"], ["dlq"],
               ["dlq", "list"], ["dlq", "show"], ["dlq", "edit"], ["dlq", "redrive"],
               ["dlq", "delete"], ["dlq", "purge"]]


def worker(*args, timeout=60, **env):
    e = dict(os.environ)
    e.update({k: str(v) for k, v in env.items()})
    t0 = time.monotonic()
    r = subprocess.run([WORKER] + list(args), env=e, cwd=ROOT, capture_output=True, text=True,
                       timeout=timeout)
    return r, time.monotonic() - t0


def nothing_on():
    """URLs of a Redis and a PostgreSQL that are not there."""
    return {"REDIS_URL": "redis://127.0.0.1:%d/0" % free_port(),
            "DATABASE_URL": "postgresql://postgres@127.0.0.1:%d/switchboard" % free_port()}


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=" ".join)
def test_every_subcommand_answers_help_with_its_own_usage(words):
    # No server is reachable: --help must answer without trying one.
    r, took = worker(*(words + ["--help"]), timeout=10, **nothing_on())
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first.startswith("usage: switchboard-worker [settings] " + " ".join(words)), first
    assert r.stderr == ""
    assert took < 5


def test_top_level_help_points_at_the_commands_help():
    r, _ = worker("--help")
    assert r.returncode == 0 and "COMMAND --help" in r.stdout
    assert "dlq list|show|edit|redrive|delete|purge" in r.stdout


def test_status_against_a_stopped_redis_exits_within_its_timeout(tmp_root, pg_server):
    rs = RedisServer(tmp_root, name="redis-stopped")
    url = rs.url
    rs.stop()
    env = {"REDIS_URL": url, "DATABASE_URL": pg_server.url}
    r, took = worker("status", "--timeout", "2s", **env)
    assert r.returncode == 1
    assert took < 4, took
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert re.match(r"status: redis unreachable for 2s \(--timeout\): connect 127\.0\.0\.1:\d+: "
                    r"Connection refused$", lines[0]), lines[0]
    # The default is 10 s.
    r, took = worker("dlq", "list", **env)
    assert r.returncode == 1 and 9 < took < 13, took
    assert "unreachable for 10s" in r.stderr


def test_unreachable_postgres_is_one_line_too(redis_server):
    env = nothing_on()
    env["REDIS_URL"] = redis_server.url
    r, took = worker("reroute", "--timeout", "1s", **env)
    assert r.returncode == 1 and took < 3
    assert r.stderr.strip().startswith("reroute: postgres unreachable for 1s (--timeout): ")
    assert "Connection refused" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_database_that_does_not_exist_is_an_error_naming_the_setting(redis_server, pg_server):
    env = {"REDIS_URL": redis_server.url,
           "DATABASE_URL": pg_server.url.rsplit("/", 1)[0] + "/no_such_db"}
    # Not retried for the whole --timeout: the setting is wrong, not the server down.
    r, took = worker("status", "--timeout", "30s", **env)
    assert r.returncode == 1 and took < 5, (took, r.stderr)
    assert r.stderr.startswith("status: DATABASE_URL: ")
    assert 'database "no_such_db" does not exist' in r.stderr
    r, took = worker("run", timeout=30, WORKER_CONSUMER="w-nodb", **env)
    assert r.returncode == 1 and took < 10
    errors = [line for line in r.stderr.splitlines() if '"level":"error"' in line]
    assert any("DATABASE_URL: " in e and "no_such_db" in e for e in errors), r.stderr
    assert "retrying" not in r.stderr
    r, _ = worker("migrate", **env)
    assert r.returncode == 1 and "DATABASE_URL: " in r.stderr


def test_a_bad_timeout_is_a_usage_error():
    r, _ = worker("status", "--timeout", "soon", **nothing_on())
    assert r.returncode == 2 and "--timeout" in r.stderr


def test_status_prints_readable_times_and_none_pending(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    r = stack.redis.client()
    r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    res = stack.run_worker_cmd("status")
    assert res.returncode == 0, res.stderr
    assert "lag 0, none pending" in res.stdout
    assert "unrouted: 0\n" in res.stdout
    msg = body({"type": "status-update", "status": "queued",
                "call": {"id": "c1", "type": "webCall", "assistantId": "asst_1"}})
    # Delivered 3 minutes ago to a consumer that stopped: its id carries that time.
    old = int(time.time() * 1000) - 192000
    r.xadd(STREAM, {"body": msg, "received_at": str(old), "source": "http"}, id="%d-0" % old)
    r.xreadgroup(GROUP, "gone", {STREAM: ">"}, count=1)
    res = stack.run_worker_cmd("status")
    assert re.search(r"pending 1 \(oldest 3m1[0-9]s\), last delivered %d-0 "
                     r"\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\)" % old, res.stdout), res.stdout
    assert re.search(r"consumer gone\s+pending 1, idle \d+(ms|s)\n", res.stdout), res.stdout


def test_drain_prints_progress_while_it_waits(stack):
    r = stack.redis.client()
    r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    r.xadd(STREAM, {"body": body({"type": "status-update", "call": {"id": "c"}}),
                    "received_at": "1", "source": "http"})
    r.xreadgroup(GROUP, "ghost", {STREAM: ">"}, count=1)
    res = stack.run_worker_cmd("drain", "--timeout", "5s", WORKER_CLAIM_IDLE="1h")
    assert res.returncode == 1
    waits = [line for line in res.stdout.splitlines() if line.startswith("draining: ")]
    assert len(waits) >= 1, res.stdout
    assert re.match(r"draining: lag 0, pending 1 across \d+ consumers \(\d+s\)$", waits[0])
    assert res.stdout.splitlines()[-1].startswith("drain timed out after 5s: lag 0, pending 1")


def test_replay_dry_run_counts_malformed_like_the_replay_and_shows_progress(stack):
    seed(stack.pg, ["org_a"], assistants=[("asst_1", "org_a")])
    r = stack.redis.client()
    r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    pipe = r.pipeline(transaction=False)
    for i in range(2400):
        pipe.xadd(STREAM, {"body": body({"type": "status-update", "status": "queued",
                                         "call": {"id": "c%d" % (i % 50), "type": "webCall",
                                                  "assistantId": "asst_1"}}),
                           "received_at": "1", "source": "http"})
    for raw in (b"{not json", b'{"message": {}}', b"\xff"):
        pipe.xadd(STREAM, {"body": raw, "received_at": "1", "source": "http"})
    pipe.execute()
    dry = stack.run_worker_cmd("replay", "--since", "0", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run: 2400 of 2403 entries match, 3 malformed (a replay skips them)" in dry.stdout
    prog = [line for line in dry.stderr.splitlines() if line.startswith("replay (dry run): ")]
    assert prog[:2] == ["replay (dry run): 1000 entries", "replay (dry run): 2000 entries"], \
        dry.stderr
    real = stack.run_worker_cmd("replay", "--since", "0")
    assert real.returncode == 0, real.stderr
    assert "replayed 2400 matching entries: 2400 filed, 0 unrouted, 3 malformed" in real.stdout
    assert r.xlen(DEAD) == 0


def test_a_wrong_password_is_an_error_naming_the_setting(tmp_root, redis_server):
    # A cluster of its own that checks passwords (the shared one trusts every local user).
    tmp = os.path.join(tmp_root, "pg-scram")
    os.makedirs(tmp)
    pg = PgCluster(tmp, "-c password_encryption=scram-sha-256")
    with open(os.path.join(pg.data, "pg_hba.conf"), "w") as f:
        f.write("host all postgres 127.0.0.1/32 trust\n"
                "host all all 127.0.0.1/32 scram-sha-256\n")
    pg.start()
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=pg.port, user="postgres",
                                dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE ROLE sb LOGIN PASSWORD 'right-password'")
        conn.cursor().execute("CREATE DATABASE sbdb OWNER sb")
        conn.close()
        env = {"REDIS_URL": redis_server.url,
               "DATABASE_URL": "postgresql://sb:wrong@127.0.0.1:%d/postgres" % pg.port}
        r, took = worker("status", "--timeout", "30s", **env)
        assert r.returncode == 1 and took < 5, (took, r.stderr)
        assert r.stderr.startswith("status: DATABASE_URL: ")
        assert 'password authentication failed for user "sb"' in r.stderr
        env["DATABASE_URL"] = "postgresql://sb:right-password@127.0.0.1:%d/sbdb" % pg.port
        r, _ = worker("migrate", **env)
        assert r.returncode == 0, r.stderr  # the right one works (and can create the schema)
    finally:
        pg.stop("immediate")


def test_a_redis_password_that_is_wrong_or_missing_names_redis_url(tmp_root, pg_server):
    d = os.path.join(tmp_root, "redis-auth")
    os.makedirs(d)
    port = free_port()
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
                          "--requirepass", "right-pass", "--save", "", "--logfile", ""],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: subprocess.run(["redis-cli", "-p", str(port), "-a", "right-pass",
                                           "--no-auth-warning", "ping"], capture_output=True,
                                          text=True).stdout.strip() == "PONG",
                   10, "redis-server with a password")
        for url, text in (("redis://:wrong@127.0.0.1:%d/0" % port, "WRONGPASS"),
                          ("redis://127.0.0.1:%d/0" % port, "NOAUTH")):
            r, took = worker("status", "--timeout", "30s", REDIS_URL=url,
                             DATABASE_URL=pg_server.url)
            assert r.returncode == 1 and took < 5, (url, took, r.stderr)
            assert r.stderr.startswith("status: REDIS_URL: ") and text in r.stderr, r.stderr
    finally:
        p.terminate()
        p.wait(10)
