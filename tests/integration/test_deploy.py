"""The deployment files, proved as far as a machine without a Docker engine allows.

- docker-compose.yml is read by a real Compose implementation (Debian's docker-compose 1.29,
  `config`: interpolation, merge keys, its own schema check) and validated against the
  published compose-spec JSON schema (tests/deploy/compose-spec.json); then its wiring is
  checked, and that every setting the binaries read (from their --help) is set in it or
  documented in .env.example, with the binaries' own defaults.
- The command and environment of each compose service, and the ExecStart and environment of
  each systemd unit, run natively against local redis-server and PostgreSQL: migrate, ingest,
  three workers, messages in, rows out, `switchboard-worker drain` exits 0. Only container
  addresses are mapped (service host names and ports to the local servers, container paths
  to temporary folders, /usr/local/bin to our bin/).
- The Dockerfile's build stage runs here: its apt lists exist in the archive, its make runs
  in a copy of the build context, and every header, library and pkg-config file the build
  touched, and every shared library the binaries load, belongs to a package that the stage's
  apt list (with its dependencies and the base image) installs.
- The TLS proxy example (deploy/tls/Caddyfile) runs with Caddy in front of a real ingest.
"""

import fnmatch
import glob
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.parse

import pytest
import redis as redislib

# Debian's python3-yaml and python3-jsonschema (scripts/deps.sh); a missing one fails the
# tests that need it, not the collection of the whole suite.
try:
    import yaml
except ImportError:  # pragma: no cover
    yaml = None
try:
    import jsonschema
except ImportError:  # pragma: no cover
    jsonschema = None

from conftest import (BIN, ROOT, Proc, body, free_port, pg_bindir, query, reset_database, seed,
                      wait_until)

COMPOSE = os.path.join(ROOT, "docker-compose.yml")
ENV_EXAMPLE = os.path.join(ROOT, ".env.example")
DOCKERFILE = os.path.join(ROOT, "deploy", "Dockerfile")
SYSTEMD = os.path.join(ROOT, "deploy", "systemd")
SYSTEMD_ENV = os.path.join(SYSTEMD, "switchboard.env")
CADDYFILE = os.path.join(ROOT, "deploy", "tls", "Caddyfile")
SCHEMA = os.path.join(ROOT, "tests", "deploy", "compose-spec.json")
# Where the image puts the binaries (Dockerfile COPY --from=build ... /usr/local/bin/).
IMAGE_BIN = "/usr/local/bin"
SWITCHBOARD_SERVICES = ("migrate", "ingest", "worker")
# Values the compose file deliberately sets differently from the binary's default, and why.
COMPOSE_OVERRIDES = {
    "REDIS_URL": "the compose service `redis`",
    "DATABASE_URL": "the compose service `postgres`",
    "INGEST_LISTEN": "all interfaces inside the container",
    "WORKER_METRICS_LISTEN": "the worker health check needs the listener",
    "INGEST_SPOOL_DIR": "a volume",
}
FILLED = {"WEBHOOK_SECRET": "compose-secret-0123456789", "POSTGRES_PASSWORD": "pg-pass-42",
          "DB_OWNER_PASSWORD": "owner-pass-42", "DB_WORKER_PASSWORD": "worker-pass-42"}
# The roles deploy/postgres/roles.sh creates; migrate connects as the first, the rest as the
# second.
DB_OWNER, DB_WORKER = "switchboard_owner", "switchboard_worker"
ROLES_SCRIPT = os.path.join(ROOT, "deploy", "postgres", "roles.sh")
SENSITIVE = re.compile(r"SECRET|PASSWORD|TOKEN|API_KEY")


def sensitive(name):
    """Whether a variable holds a secret (a header name or an algorithm does not)."""
    return bool(SENSITIVE.search(name)) and not re.search(
        r"_(HEADER|ALGORITHM|TOLERANCE)$", name)


# --------------------------------------------------------------------------- helpers

def minimal_env(**extra):
    """The environment a container or a unit starts with: a PATH, nothing inherited (so
    nothing the files forget is supplied by the test runner), sanitizer options kept."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    env.update({k: v for k, v in os.environ.items()
                if k.split("_")[0] in ("ASAN", "UBSAN", "LSAN")})
    env.update(extra)
    return env


def help_settings(binary):
    """{VARIABLE: default or None} from `binary --help`."""
    r = subprocess.run([os.path.join(BIN, binary), "--help"], env=minimal_env(),
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^\s+([A-Z][A-Z0-9_]+)\s+--[a-z0-9-]+\s+(.*)$", line)
        if m:
            d = re.search(r"\[default: (.*)\]\s*$", m.group(2))
            out[m.group(1)] = d.group(1) if d else None
    assert len(out) >= 6, "could not read the settings from %s --help" % binary
    return out


def compose_raw():
    assert yaml is not None, "python3-yaml not installed (sh scripts/deps.sh)"
    with open(COMPOSE) as f:
        return yaml.safe_load(f)


def compose_text_without_comments():
    with open(COMPOSE) as f:
        return "".join(line for line in f if not line.lstrip().startswith("#"))


def compose_vars():
    """{NAME: (kind, default)} for each ${NAME...} in docker-compose.yml; kind is '-' (with a
    default), '?' (required) or '' (plain)."""
    out = {}
    for m in re.finditer(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?])([^}]*))?\}",
                         compose_text_without_comments()):
        out[m.group(1)] = (m.group(2) or "", m.group(3) if m.group(2) == "-" else None)
    return out


def parse_env_example(path):
    """(active {K: v}, commented {K: v}, every upper-case name mentioned anywhere)."""
    active, commented, mentioned = {}, {}, set()
    with open(path) as f:
        for line in f:
            s = line.strip()
            m = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", s)
            if m:
                active[m.group(1)] = m.group(2)
            m = re.match(r"^#\s?([A-Z][A-Z0-9_]*)=(.*)$", s)
            if m:
                commented[m.group(1)] = m.group(2)
            mentioned.update(re.findall(r"\b[A-Z][A-Z0-9_]{2,}\b", s))
    return active, commented, mentioned


def docker_compose(env_text, *args, profiles=(), shell=None):
    """Runs Debian's docker-compose (v1, Python) on our file with env_text as its .env;
    shell: variables of the shell that runs it."""
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose not installed (sh scripts/deps.sh)"
    assert yaml is not None, "python3-yaml not installed (sh scripts/deps.sh)"
    with tempfile.NamedTemporaryFile("w", suffix=".env") as f:
        f.write(env_text)
        f.flush()
        argv = [exe, "--project-directory", ROOT, "-f", COMPOSE, "--env-file", f.name]
        for p in profiles:
            argv += ["--profile", p]
        with tempfile.TemporaryDirectory() as home:
            return subprocess.run(argv + list(args), env=minimal_env(HOME=home, **(shell or {})),
                                  capture_output=True, text=True, timeout=60, cwd=ROOT)


def compose_config(env_text=None, profiles=("tls",), shell=None):
    if env_text is None:
        env_text = "".join("%s=%s\n" % kv for kv in FILLED.items())
    r = docker_compose(env_text, "config", profiles=profiles, shell=shell)
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout)


def duration_s(text):
    """Compose durations: 1m30s, 60s, 500ms."""
    total = 0.0
    for n, unit in re.findall(r"([0-9.]+)(ms|us|h|m|s)", str(text)):
        total += float(n) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}[unit]
    return total


def dockerfile_stages(path=DOCKERFILE):
    """[(stage name or None, [(INSTRUCTION, arguments text)])], continuation lines joined,
    comments dropped."""
    stages, logical, cur = [], [], ""
    with open(path) as f:
        for line in f:
            s = line.rstrip("\n")
            if s.lstrip().startswith("#"):
                continue
            if s.endswith("\\"):
                cur += s[:-1] + " "
                continue
            cur += s
            if cur.strip():
                logical.append(cur.strip())
            cur = ""
    for ins in logical:
        word, _, rest = ins.partition(" ")
        word = word.upper()
        if word == "FROM":
            m = re.search(r"\s+AS\s+(\S+)\s*$", rest, re.I)
            stages.append((m.group(1) if m else None, [("FROM", rest.strip())]))
        else:
            stages[-1][1].append((word, rest.strip()))
    return stages


def apt_packages(instrs):
    pkgs = []
    for word, rest in instrs:
        if word == "RUN":
            for m in re.finditer(r"apt-get\s+install\s+([^&;|]*)", rest):
                pkgs += [t for t in m.group(1).split() if not t.startswith("-")]
    return pkgs


def image_env(instrs):
    """ENV of a stage (both the `ENV K=V K2=V2` and the old `ENV K V` forms)."""
    env = {}
    for word, rest in instrs:
        if word != "ENV":
            continue
        toks = shlex.split(rest)
        if toks and "=" not in toks[0]:
            env[toks[0]] = " ".join(toks[1:])
        else:
            env.update(t.split("=", 1) for t in toks)
    return env


def image_binaries():
    """Names of the files the final stage copies from the build stage into IMAGE_BIN."""
    names = []
    for word, rest in dockerfile_stages()[-1][1]:
        if word == "COPY" and rest.startswith("--from="):
            toks = rest.split()
            if toks[-1].rstrip("/") == IMAGE_BIN:
                names += [os.path.basename(t) for t in toks[1:-1]]
    return names


def http_get(port, path, timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    except OSError:
        return 0, ""
    finally:
        c.close()


def metric_sum(text, name, labels):
    """Sum of the samples of name{labels} in Prometheus text."""
    prefix = name + labels + " "
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(prefix))


ORG, PHONE = "org_deploy", "pn_deploy"


def messages(n_calls):
    """Three messages for each of n_calls inbound calls, routed by phone number."""
    out = []
    for i in range(n_calls):
        call = {"id": "deploy-call-%03d" % i, "type": "inboundPhoneCall",
                "phoneNumberId": PHONE, "status": "queued"}
        t = 1767225600000 + i * 1000
        out.append(body({"type": "status-update", "status": "ringing", "timestamp": t,
                         "call": call}))
        out.append(body({"type": "status-update", "status": "in-progress",
                         "timestamp": t + 100, "call": call}))
        out.append(body({"type": "end-of-call-report", "timestamp": t + 900, "call": call,
                         "endedReason": "customer-ended-call", "cost": 0.01,
                         "startedAt": "2026-01-01T00:00:00.000Z",
                         "endedAt": "2026-01-01T00:00:05.000Z"}))
    return out


def post(port, data, header, secret):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("POST", "/api/vapi/webhook", body=data,
                  headers={header: secret, "Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


class LocalProc(Proc):
    """conftest's Proc, started in a given folder."""

    def __init__(self, name, argv, env, logdir, cwd):
        self.name = name
        self.log_path = os.path.join(logdir, name + ".log")
        self.log = open(self.log_path, "ab")
        self.p = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                  cwd=cwd)


class Launched:
    """Processes started for one scenario; all stopped by PID at the end."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []

    def start(self, name, argv, env, cwd=ROOT):
        p = LocalProc(name, argv, env, self.tmp, cwd)
        self.procs.append(p)
        return p

    def stop_all(self, sig=signal.SIGTERM, timeout=30, last=()):
        """Signals every process at once (as `docker compose stop` and systemd do), those
        named in last only after the others have exited. Returns {name: (exit code,
        seconds from the signal to the exit)}."""
        codes = {}
        for group in ([p for p in self.procs if p.name not in last],
                      [p for p in self.procs if p.name in last]):
            t0 = time.monotonic()
            for p in group:
                if p.alive():
                    p.p.send_signal(sig)
            for p in group:
                try:
                    p.p.wait(max(0.1, timeout - (time.monotonic() - t0)))
                except subprocess.TimeoutExpired:
                    p.p.kill()
                    p.p.wait()
                codes[p.name] = (p.p.returncode, time.monotonic() - t0)
                p.log.close()
        self.procs = []
        return codes


def run_scenario(pg, redis_client, ingest_port, admin_port, secret_header, secret,
                 worker_ports, worker_procs, ingest_proc, drain_argv, drain_env, n_calls=12):
    """Posts 3 * n_calls messages through ingest, waits until PostgreSQL has them, runs the
    drain command, checks status and metrics (ingest's on its admin listener at admin_port).
    Returns the parsed `status --json`."""
    seed(pg, [ORG], [(PHONE, ORG)])
    assert post(ingest_port, body({"type": "status-update"}), secret_header, "wrong") == 401
    bodies = messages(n_calls)
    statuses = [post(ingest_port, b, secret_header, secret) for b in bodies]
    assert statuses == [200] * len(bodies), statuses

    def filed():
        return query(pg, "SELECT count(*) FROM call_events WHERE organization_id = %s",
                     (ORG,))[0][0] == len(bodies)
    wait_until(filed, 60, "all %d messages to be filed" % len(bodies))
    calls = query(pg, "SELECT count(*), count(*) FILTER (WHERE status = 'ended') FROM calls "
                  "WHERE organization_id = %s", (ORG,))[0]
    assert calls == (n_calls, n_calls)
    for p in worker_procs + [ingest_proc]:
        assert p.alive(), "%s exited:\n%s" % (p.name, p.output())

    r = subprocess.run(drain_argv, env=drain_env, capture_output=True, text=True, timeout=90,
                       cwd=ROOT)
    assert r.returncode == 0, "drain failed (%d):\n%s\n%s" % (r.returncode, r.stdout, r.stderr)
    assert "drained" in r.stdout

    status_argv = [drain_argv[0], "status", "--json"]
    st = subprocess.run(status_argv, env=drain_env, capture_output=True, text=True,
                        timeout=30, cwd=ROOT)
    assert st.returncode == 0, st.stderr
    status = json.loads(st.stdout)
    assert status["lag"] == 0 and status["pending"] == 0, status
    assert status["dead_letters"] == 0 and status["unrouted"] == 0, status
    assert len(status["consumers"]) >= len(worker_procs), status

    # Every message was counted by one of the scaled workers; ingest counted every 200.
    def counted():
        total = 0
        for port in worker_ports:
            code, text = http_get(port, "/metrics")
            assert code == 200
            total += metric_sum(text, "switchboard_worker_messages_total",
                                '{outcome="filed"}')
        return total == len(bodies)
    wait_until(counted, 20, "the workers' metrics to count every message")
    assert http_get(ingest_port, "/metrics")[0] == 404  # only on the admin listener
    code, text = http_get(admin_port, "/metrics")
    assert code == 200
    assert metric_sum(text, "switchboard_ingest_requests_total",
                      '{route="webhook",status="200"}') == len(bodies)
    assert redis_client.xlen(status["stream"]) >= len(bodies)
    return status


# --------------------------------------------------------------------------- compose: files

def test_compose_file_is_valid_compose():
    """The published compose-spec schema and a real Compose implementation both accept the
    file; both reject a broken copy (so neither check is a no-op); the required settings
    are enforced."""
    assert jsonschema is not None, "python3-jsonschema not installed (sh scripts/deps.sh)"
    with open(SCHEMA) as f:
        schema = json.load(f)
    validator = jsonschema.Draft201909Validator(schema)
    doc = compose_raw()
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join("%s: %s" % (list(e.path), e.message) for e in errors)

    broken = json.loads(json.dumps(doc))
    broken["services"]["worker"]["depends_on"]["migrate"]["condition"] = "service_done"
    assert list(validator.iter_errors(broken)), "the schema accepted a wrong condition"

    cfg = compose_config()
    assert set(cfg["services"]) == set(doc["services"])

    # docker-compose rejects the same mistake in a copy of the file.
    with tempfile.TemporaryDirectory() as d:
        bad = os.path.join(d, "docker-compose.yml")
        with open(bad, "w") as f:
            yaml.safe_dump(broken, f)
        r = subprocess.run([shutil.which("docker-compose"), "--project-directory", d, "-f", bad,
                            "config", "-q"], env=minimal_env(HOME=d, **FILLED),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "condition" in r.stderr, r.stderr

    # .env.example as shipped leaves the secrets empty: compose refuses to start.
    with open(ENV_EXAMPLE) as f:
        r = docker_compose(f.read(), "config", "-q")
    assert r.returncode != 0
    required = [k for k, (kind, _) in compose_vars().items() if kind == "?"]
    assert set(required) >= {"POSTGRES_PASSWORD", "DB_OWNER_PASSWORD", "DB_WORKER_PASSWORD",
                             "WEBHOOK_SECRET"}, required
    assert any(k in r.stderr for k in required), r.stderr
    # Each required value alone missing (or empty) stops compose, naming it: ingest without
    # its secret would refuse to start and restart in a loop.
    for k in required:
        r = docker_compose("".join("%s=%s\n" % (n, "" if n == k else v)
                                   for n, v in FILLED.items()), "config", "-q")
        assert r.returncode != 0 and k in r.stderr, (k, r.stderr)


def test_compose_wiring():
    cfg = compose_config()
    raw = compose_raw()
    sv = cfg["services"]
    assert {"redis", "postgres", "migrate", "ingest", "worker"} <= set(sv)

    # redis: official image, deploy/redis.conf mounted and used, data on a named volume.
    redis = sv["redis"]
    assert redis["image"].split(":")[0] == "redis"
    conf = [v for v in redis["volumes"] if v.split(":")[0] == os.path.join(ROOT, "deploy",
                                                                          "redis.conf")]
    assert conf, redis["volumes"]
    assert conf[0].split(":")[1] in redis["command"]
    assert any(v.split(":")[0] in cfg["volumes"] and v.split(":")[1] == "/data"
               for v in redis["volumes"]), redis["volumes"]
    assert redis["healthcheck"]["test"]

    pg = sv["postgres"]
    assert pg["image"].split(":")[0] == "postgres"
    assert any(v.split(":")[0] in cfg["volumes"] and
               v.split(":")[1] == "/var/lib/postgresql/data" for v in pg["volumes"])
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])

    # One image for the three switchboard services, built from deploy/Dockerfile.
    for name in SWITCHBOARD_SERVICES:
        s = sv[name]
        assert s["build"]["dockerfile"] == "deploy/Dockerfile", name
        assert s["image"] == sv["ingest"]["image"], name
        assert os.path.basename(s["command"][0]) in image_binaries(), name

    migrate = sv["migrate"]
    assert migrate["command"][-1] == "migrate"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate.get("restart") == "no"

    ingest = sv["ingest"]
    assert ingest["depends_on"]["redis"]["condition"] == "service_healthy"
    listen_port = int(ingest["environment"]["INGEST_LISTEN"].rsplit(":", 1)[1])
    # Long syntax ({target, published}) or short ("[host:]published:target").
    targets = [p["target"] if isinstance(p, dict) else
               int(str(p).rsplit(":", 1)[1].split("/")[0])
               for p in ingest["ports"]]
    assert targets == [listen_port], ingest["ports"]
    assert "http://127.0.0.1:%d/healthz" % listen_port in ingest["healthcheck"]["test"]
    assert duration_s(ingest["stop_grace_period"]) >= 10

    worker = sv["worker"]
    deps = worker["depends_on"]
    assert deps["migrate"]["condition"] == "service_completed_successfully"
    assert deps["redis"]["condition"] == "service_healthy"
    # Scalable: no fixed name, no host port, at least two replicas.
    assert "container_name" not in worker and "ports" not in worker
    assert "container_name" not in raw["services"]["worker"]
    assert worker["deploy"]["replicas"] >= 2
    mport = int(worker["environment"]["WORKER_METRICS_LISTEN"].rsplit(":", 1)[1])
    assert "http://127.0.0.1:%d/readyz" % mport in worker["healthcheck"]["test"]
    # Long enough for a full batch; the native run below measures how long SIGTERM takes.
    assert duration_s(worker["stop_grace_period"]) >= 30

    # Ingest and the workers must agree on where the webhooks go.
    for k in ("REDIS_URL", "SWITCHBOARD_STREAM", "SWITCHBOARD_GROUP",
              "SWITCHBOARD_DEAD_STREAM"):
        assert ingest["environment"][k] == worker["environment"][k] == \
            migrate["environment"][k], k

    # The TLS proxy forwards to ingest's listener and is off unless asked for.
    if "tls" in sv:
        tls = sv["tls"]
        assert tls["profiles"] == ["tls"]
        assert tls["environment"]["INGEST_UPSTREAM"] == "ingest:%d" % listen_port
        assert any(v.split(":")[0] == CADDYFILE for v in tls["volumes"])

    # Nothing secret written into the file: secrets only come from the environment.
    for name, s in raw["services"].items():
        for k, v in (s.get("environment") or {}).items():
            if sensitive(k):
                assert isinstance(v, str) and re.fullmatch(r"\$\{%s(:\?[^}]*|:-)?\}" % k, v), \
                    "%s.%s must come from the environment, with no default" % (name, k)
    assert "POSTGRES_PASSWORD" in raw["services"]["postgres"]["environment"]

    # No Switchboard service connects as the superuser: migrate as the schema's owner, the
    # workers (and the operator commands, run in the worker service) as a role of their own.
    users = {name: urllib.parse.urlparse(sv[name]["environment"]["DATABASE_URL"])
             for name in ("migrate", "worker")}
    assert (users["migrate"].username, users["worker"].username) == (DB_OWNER, DB_WORKER)
    assert users["migrate"].password == FILLED["DB_OWNER_PASSWORD"]
    assert users["worker"].password == FILLED["DB_WORKER_PASSWORD"]
    for name in SWITCHBOARD_SERVICES:
        assert FILLED["POSTGRES_PASSWORD"] not in json.dumps(sv[name]), name
    # The roles script is run by the postgres image on its first start.
    mounts = {v.split(":")[0]: v.split(":")[1] for v in pg["volumes"]}
    assert re.fullmatch(r"/docker-entrypoint-initdb\.d/[^/]+\.sh", mounts[ROLES_SCRIPT]), mounts
    for k in ("DB_OWNER_PASSWORD", "DB_WORKER_PASSWORD"):
        assert pg["environment"][k] == FILLED[k], k


def test_compose_ignores_addresses_from_the_shell():
    """Settings a local run leaves exported in the shell (Compose reads the shell before
    .env) do not move the containers' addresses: those are fixed in the file."""
    shell = {"REDIS_URL": "redis://127.0.0.1:6390/0",
             "DATABASE_URL": "postgresql://127.0.0.1:5490/switchboard",
             "INGEST_LISTEN": "127.0.0.1:8080", "WORKER_METRICS_LISTEN": "127.0.0.1:9101",
             "INGEST_SPOOL_DIR": "/tmp/spool"}
    assert compose_config(shell=shell) == compose_config()
    env = compose_config()["services"]
    for name in SWITCHBOARD_SERVICES:
        assert env[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0", name
    # The variables the file does read from the shell are documented as such.
    with open(ENV_EXAMPLE) as f:
        assert "wins over this file" in f.read()


def test_every_setting_is_set_or_documented():
    ingest = help_settings("switchboard-ingest")
    worker = help_settings("switchboard-worker")
    raw = compose_raw()["services"]
    active, commented, mentioned = parse_env_example(ENV_EXAMPLE)
    cvars = compose_vars()
    problems = []

    for service, settings in (("ingest", ingest), ("worker", worker)):
        env = raw[service]["environment"]
        for name, default in settings.items():
            if name not in env:
                if name not in mentioned:
                    problems.append("%s reads %s: neither set in docker-compose.yml nor "
                                    "documented in .env.example" % (service, name))
                continue
            m = re.fullmatch(r"\$\{%s:-(.*)\}" % name, str(env[name]))
            if m and default is not None and m.group(1) != default and \
                    name not in COMPOSE_OVERRIDES:
                problems.append("docker-compose.yml: %s defaults to %r, the binary to %r" %
                                (name, m.group(1), default))

    for name, (kind, default) in cvars.items():
        if kind == "?":
            if name not in active:
                problems.append(".env.example: required %s must be an uncommented line" %
                                name)
        elif name not in commented and name not in active:
            problems.append(".env.example does not document %s" % name)
        elif kind == "-" and commented.get(name, active.get(name)) != default:
            problems.append(".env.example shows %s=%s, docker-compose.yml's default is %r" %
                            (name, commented.get(name, active.get(name)), default))
    for name in list(active) + list(commented):
        if name not in cvars:
            problems.append(".env.example sets %s, which docker-compose.yml never reads" %
                            name)
    assert not problems, "\n".join(problems)

    # The values shown commented out are the defaults: uncommenting them all changes nothing.
    lines = ["%s=%s" % kv for kv in FILLED.items()]
    lines += ["%s=%s" % kv for kv in commented.items() if kv[0] not in FILLED]
    assert compose_config("\n".join(lines) + "\n") == compose_config()


def test_systemd_env_file_documents_every_setting():
    settings = dict(help_settings("switchboard-ingest"))
    settings.update(help_settings("switchboard-worker"))
    active, commented, mentioned = parse_env_example(SYSTEMD_ENV)
    problems = []
    for name, default in settings.items():
        if name not in mentioned:
            problems.append("deploy/systemd/switchboard.env does not mention %s" % name)
        elif name in commented and default is not None and commented[name] != default:
            problems.append("switchboard.env shows #%s=%s, the default is %r" %
                            (name, commented[name], default))
    for name in list(active) + list(commented):
        if name not in settings:
            problems.append("switchboard.env sets %s, which no binary reads" % name)
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- compose: run

class ComposeMapper:
    """Maps a compose service's container view onto this machine."""

    def __init__(self, cfg, tmp, ports):
        self.cfg = cfg
        self.tmp = tmp
        self.ports = ports  # {"redis:6379": "127.0.0.1:N", "postgres:5432": ...}

    def binary(self, argv0):
        name = os.path.basename(argv0)
        assert name in image_binaries(), "%s is not in the image" % argv0
        assert argv0 in (name, os.path.join(IMAGE_BIN, name))
        return os.path.join(BIN, name)

    def env(self, service, listen_ports):
        """The process environment: image ENV, then the service's environment, mapped.
        listen_ports maps container ports to the local ports this process listens on."""
        s = self.cfg["services"][service]
        env = dict(image_env(dockerfile_stages()[-1][1]))
        env.update({k: str(v) for k, v in (s.get("environment") or {}).items()})
        mounts = {v.split(":")[1]: v.split(":")[0] for v in s.get("volumes", [])}
        out = {}
        for k, v in env.items():
            for addr, local in self.ports.items():
                v = re.sub(r"(?<=[/@])%s(?=[/:]|$)" % re.escape(addr), local, v)
            m = re.fullmatch(r"0\.0\.0\.0:(\d+)", v)
            if m:  # a port this process does not serve (ENV of the image) gets a free one
                v = "127.0.0.1:%d" % listen_ports.get(int(m.group(1)), free_port())
            if v in mounts:  # a container path on a volume: a private folder here
                v = os.path.join(self.tmp, "%s-%s" % (service, os.path.basename(v)))
                os.makedirs(v, exist_ok=True)
            assert not re.search(r"\b(redis|postgres|ingest):\d", v), \
                "%s=%s still names a container" % (k, v)
            out[k] = v
        return minimal_env(**out)

    def health_argv(self, service, listen_ports):
        test = self.cfg["services"][service]["healthcheck"]["test"]
        assert test[0] == "CMD", test
        argv = []
        for a in test[1:]:
            for cport, lport in listen_ports.items():
                a = a.replace("127.0.0.1:%d/" % cport, "127.0.0.1:%d/" % lport)
            argv.append(a)
        return argv


def wait_healthy(argv, proc, what, timeout=20, env=None):
    def ok():
        if proc is not None and not proc.alive():
            pytest.fail("%s exited:\n%s" % (proc.name, proc.output()))
        return subprocess.run(argv, capture_output=True, timeout=10,
                              env=env or minimal_env()).returncode == 0
    wait_until(ok, timeout, what)


def dockerfile_healthcheck(proc, env):
    """Runs the image's HEALTHCHECK command for proc (its /proc/1 is proc's own PID)."""
    for word, rest in dockerfile_stages()[-1][1]:
        if word == "HEALTHCHECK":
            cmd = rest.split(" CMD ", 1)[1].strip()
            cmd = cmd.replace("/proc/1/", "/proc/%d/" % proc.pid)
            return subprocess.run(["sh", "-c", cmd], env=env, capture_output=True,
                                  timeout=10).returncode
    raise AssertionError("the Dockerfile has no HEALTHCHECK")


def test_compose_services_run_natively(tmp_root, pg_server):
    """redis (its compose command, with deploy/redis.conf), migrate, ingest and the worker
    three times, each with the command and environment docker-compose resolves, against
    this machine's redis-server and the test PostgreSQL."""
    cfg = compose_config()
    sv = cfg["services"]
    tmp = tempfile.mkdtemp(prefix="compose-", dir=tmp_root)
    run = Launched(tmp)
    try:
        # redis: the exact command; the mounted config file is ours; only the port (the
        # container's 6379 is not free here) and the bind address are added.
        rport = free_port()
        rdata = os.path.join(tmp, "redis-data")
        os.makedirs(rdata)
        mounts = {v.split(":")[1]: v.split(":")[0] for v in sv["redis"]["volumes"]}
        argv = [mounts.get(a, a) for a in sv["redis"]["command"]]
        argv[0] = shutil.which(argv[0])
        assert argv[0], "redis-server not installed"
        # In the data folder, as in the image (WORKDIR /data), where the AOF must appear.
        run.start("compose-redis", argv + ["--port", str(rport), "--bind", "127.0.0.1"],
                  minimal_env(), cwd=rdata)
        client = redislib.Redis(host="127.0.0.1", port=rport, socket_timeout=5)

        def redis_up():
            try:
                return client.ping()
            except redislib.RedisError:
                return False
        wait_until(redis_up, 10, "the compose redis to answer")
        conf = {k: client.config_get(k)[k] for k in ("appendonly", "appendfsync",
                                                      "maxmemory-policy", "maxmemory")}
        assert conf == {"appendonly": "yes", "appendfsync": "always",
                        "maxmemory-policy": "noeviction", "maxmemory": "0"}, conf
        rh = sv["redis"]["healthcheck"]["test"]
        assert rh[0] == "CMD"
        assert subprocess.run(rh[1:2] + ["-p", str(rport)] + rh[2:], capture_output=True,
                              timeout=10).returncode == 0

        # postgres: the test server stands in for the image; its health check runs as is.
        reset_database(pg_server)
        ph = sv["postgres"]["healthcheck"]["test"]
        pg_env = minimal_env(PGPORT=str(pg_server.port))
        pg_env["PATH"] = pg_bindir() + ":" + pg_env["PATH"]
        assert subprocess.run(ph[1:], env=pg_env, capture_output=True,
                              timeout=10).returncode == 0

        # The image's first start runs the mounted roles script with the service's
        # environment, as the superuser; here against the test server (twice: it may be run
        # again by hand).
        mounts = {v.split(":")[1]: v.split(":")[0] for v in sv["postgres"]["volumes"]}
        (init,) = [mounts[t] for t in mounts if t.startswith("/docker-entrypoint-initdb.d/")]
        init_env = dict(pg_env, PGHOST="127.0.0.1", POSTGRES_USER="postgres",
                        **{k: str(v) for k, v in sv["postgres"]["environment"].items()})
        for _ in range(2):
            r = subprocess.run(["sh", init], env=init_env, capture_output=True, text=True,
                               timeout=30)
            assert r.returncode == 0, r.stderr

        m = ComposeMapper(cfg, tmp, {"redis:6379": "127.0.0.1:%d" % rport,
                                     "postgres:5432": "127.0.0.1:%d" % pg_server.port})

        # migrate: one-shot, must exit 0 before the others start; the schema is its role's.
        mig = sv["migrate"]
        r = subprocess.run([m.binary(mig["command"][0])] + mig["command"][1:],
                           env=m.env("migrate", {}), capture_output=True, text=True,
                           timeout=60, cwd=ROOT)
        assert r.returncode == 0, r.stderr
        assert query(pg_server, "SELECT DISTINCT tableowner FROM pg_tables "
                     "WHERE schemaname = 'public'") == [(DB_OWNER,)]

        # ingest; without any credential it refuses to start (why compose requires
        # WEBHOOK_SECRET, test_compose_file_is_valid_compose).
        ing = sv["ingest"]
        bare = dict(m.env("ingest", {8080: free_port()}), WEBHOOK_SECRET="")
        r = subprocess.run([m.binary(ing["command"][0])] + ing["command"][1:],
                           env=bare, capture_output=True, text=True, timeout=10, cwd=ROOT)
        assert r.returncode == 2 and "WEBHOOK_SECRET" in r.stderr, (r.returncode, r.stderr)
        iport, aport = free_port(), free_port()
        admin_cport = int(ing["environment"]["INGEST_ADMIN_LISTEN"].rsplit(":", 1)[1])
        ing_ports = {8080: iport, admin_cport: aport}
        ing_env = m.env("ingest", ing_ports)
        ingest = run.start("compose-ingest", [m.binary(ing["command"][0])] +
                           ing["command"][1:], ing_env)
        wait_healthy(m.health_argv("ingest", ing_ports), ingest, "ingest's health check")
        assert dockerfile_healthcheck(ingest, ing_env) == 0

        # worker, three times (docker compose up --scale worker=3)
        wk = sv["worker"]
        mport = int(wk["environment"]["WORKER_METRICS_LISTEN"].rsplit(":", 1)[1])
        workers, wports = [], []
        for i in range(3):
            port = free_port()
            env = m.env("worker", {mport: port})
            p = run.start("compose-worker-%d" % (i + 1),
                          [m.binary(wk["command"][0])] + wk["command"][1:], env)
            workers.append(p)
            wports.append(port)
        for p, port in zip(workers, wports):
            wait_healthy(m.health_argv("worker", {mport: port}), p,
                         "%s's health check (/readyz)" % p.name)
        assert dockerfile_healthcheck(workers[0], m.env("worker", {mport: wports[0]})) == 0
        assert query(pg_server, "SELECT DISTINCT usename FROM pg_stat_activity WHERE "
                     "datname = 'switchboard' AND backend_type = 'client backend' "
                     "AND pid <> pg_backend_pid()") == [(DB_WORKER,)]
        denied = subprocess.run([os.path.join(pg_bindir(), "psql"), "-h", "127.0.0.1", "-p",
                                 str(pg_server.port), "-U", DB_WORKER, "-d", "switchboard",
                                 "-c", "ALTER TABLE calls ADD COLUMN x int"],
                                env=minimal_env(), capture_output=True, text=True, timeout=30)
        assert denied.returncode != 0 and "must be owner" in denied.stderr, denied.stderr
        # ...but it may look after call_events' partitions, through the owner's function.
        kept = subprocess.run([os.path.join(pg_bindir(), "psql"), "-h", "127.0.0.1", "-p",
                               str(pg_server.port), "-U", DB_WORKER, "-d", "switchboard",
                               "-tAc", "SELECT created, dropped FROM "
                               "switchboard_event_maintain(3, interval '90 days')"],
                              env=minimal_env(), capture_output=True, text=True, timeout=30)
        assert kept.returncode == 0 and kept.stdout.strip() == "1|0", kept.stdout + kept.stderr

        # `docker compose run --rm worker switchboard-worker drain`
        drain_env = m.env("worker", {mport: free_port()})
        assert http_get(aport, "/readyz")[0] == 200
        status = run_scenario(pg_server, client, iport, aport,
                              ing_env["WEBHOOK_SECRET_HEADER"], FILLED["WEBHOOK_SECRET"],
                              wports, workers, ingest,
                              [m.binary("switchboard-worker"), "drain", "--timeout", "60s"],
                              drain_env)
        host = socket.gethostname()
        names = {"%s-%d" % (host, p.pid) for p in workers}
        assert names <= set(status["consumers"]), status["consumers"]

        # docker compose stop: SIGTERM, exit 0 well within the grace period.
        grace = {"ingest": duration_s(ing["stop_grace_period"]),
                 "worker": duration_s(wk["stop_grace_period"])}
        codes = run.stop_all(last=("compose-redis",))
        assert codes.pop("compose-redis")[0] == 0
        for name, (code, took) in codes.items():
            limit = grace["worker" if "worker" in name else "ingest"]
            assert code == 0, "%s exited %s" % (name, code)
            assert took < limit / 2, "%s took %.1fs to stop (grace %ss)" % (name, took, limit)

        assert glob.glob(os.path.join(rdata, "appendonlydir", "*.aof")), \
            "no AOF written in redis's data folder"
    finally:
        run.stop_all()


# --------------------------------------------------------------------------- systemd

def read_unit(path):
    """{section: [(key, value)]}, keys in file order (repeated keys kept)."""
    out, cur = {}, None
    with open(path) as f:
        for line in f:
            s = line.strip()
            if not s or s[0] in "#;":
                continue
            if s.startswith("["):
                cur = s.strip("[]")
                out.setdefault(cur, [])
                continue
            k, _, v = s.partition("=")
            out[cur].append((k.strip(), v.strip()))
    return out


def specifiers(text, instance):
    def sub(m):
        c = m.group(1)
        if c == "%":
            return "%"
        if c == "i":
            return instance
        if c == "H":
            return socket.gethostname()
        raise AssertionError("specifier %%%s is not handled by this test" % c)
    return re.sub(r"%(.)", sub, text)


def read_env_file(path):
    """systemd EnvironmentFile= syntax: KEY=VALUE lines, # and ; comments, optional quotes."""
    env = {}
    with open(path) as f:
        for line in f:
            s = line.strip()
            if not s or s[0] in "#;":
                continue
            k, _, v = s.partition("=")
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
                v = v[1:-1]
            env[k.strip()] = v
    return env


class Unit:
    def __init__(self, name, instance=""):
        self.name = name
        self.instance = instance
        self.conf = read_unit(os.path.join(SYSTEMD, name))
        self.service = self.conf["Service"]

    def get(self, key, section="Service"):
        vals = [specifiers(v, self.instance) for k, v in self.conf[section] if k == key]
        return vals

    def argv(self):
        (cmd,) = self.get("ExecStart")
        argv = shlex.split(cmd.lstrip("-@+!:"))
        assert os.path.dirname(argv[0]) == IMAGE_BIN, argv
        return [os.path.join(BIN, os.path.basename(argv[0]))] + argv[1:]

    def env(self, env_files):
        """Environment= first, then each EnvironmentFile= (which override it)."""
        env = {}
        for v in self.get("Environment"):
            env.update(t.split("=", 1) for t in shlex.split(v))
        for path in self.get("EnvironmentFile"):
            optional = path.startswith("-")
            path = path.lstrip("-")
            assert path in env_files or optional, "no test content for %s" % path
            if path in env_files:
                env.update(read_env_file(env_files[path]))
        return env


def test_systemd_units_run_natively(tmp_root, redis_server, pg_server):
    """switchboard-migrate, switchboard-ingest and switchboard-worker@ three times: each
    ExecStart with the unit's Environment= and the documented /etc/switchboard/env, against
    local redis-server and PostgreSQL; and `systemd-analyze verify` accepts the units."""
    units = sorted(os.path.basename(p) for p in glob.glob(os.path.join(SYSTEMD, "*.service")))
    # switchboard-vapi-sync.service (vapictl, with its timer) is run and verified in
    # test_vapictl_watch.py.
    units.remove("switchboard-vapi-sync.service")
    assert units == ["switchboard-ingest.service", "switchboard-migrate.service",
                     "switchboard-worker@.service"], units
    tmp = tempfile.mkdtemp(prefix="systemd-", dir=tmp_root)
    ingest_port, admin_port = free_port(), free_port()
    worker_ports = [free_port() for _ in range(3)]

    # /etc/switchboard/env from deploy/systemd/switchboard.env, addresses mapped to the test
    # servers and the secret filled in, as an operator would.
    example = read_env_file(SYSTEMD_ENV)
    state = os.path.join(tmp, "state")
    mapping = {"127.0.0.1:6379": "127.0.0.1:%d" % redis_server.port,
               "127.0.0.1:5432": "127.0.0.1:%d" % pg_server.port,
               "127.0.0.1:8080": "127.0.0.1:%d" % ingest_port,
               "/var/lib/switchboard": state}
    env_file = {}
    for k, v in example.items():
        for a, b in mapping.items():
            v = v.replace(a, b)
        env_file[k] = v
    assert "WEBHOOK_SECRET" in env_file and env_file["WEBHOOK_SECRET"] == ""
    env_file["WEBHOOK_SECRET"] = "systemd-secret-0123456789"
    # The admin listener's default port (9100) may be taken here: the operator picks one.
    env_file["INGEST_ADMIN_LISTEN"] = "127.0.0.1:%d" % admin_port
    # Defaults that point into the unit's StateDirectory= move to the test folder too.
    for name, default in help_settings("switchboard-ingest").items():
        if name not in env_file and default and default.startswith("/var/lib/switchboard"):
            env_file[name] = default.replace("/var/lib/switchboard", state)
    path = os.path.join(tmp, "env")
    with open(path, "w") as f:
        f.writelines("%s=%s\n" % kv for kv in env_file.items())
    os.chmod(path, 0o600)
    env_files = {"/etc/switchboard/env": path}

    # The database as README describes it: a role that owns its database, no superuser.
    user = urllib.parse.urlparse(env_file["DATABASE_URL"]).username
    reset_database(pg_server)
    redis_server.client().flushall()
    conn = pg_server.connect("postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,))
        if not cur.fetchone():
            cur.execute("CREATE ROLE %s LOGIN" % user)
        cur.execute("ALTER DATABASE switchboard OWNER TO %s" % user)
    conn.close()

    run = Launched(tmp)
    try:
        mig = Unit("switchboard-migrate.service")
        assert mig.get("Type") == ["oneshot"]
        r = subprocess.run(mig.argv(), env=minimal_env(**mig.env(env_files)),
                           capture_output=True, text=True, timeout=60, cwd="/")
        assert r.returncode == 0, r.stderr
        owner = query(pg_server, "SELECT tableowner FROM pg_tables WHERE tablename = 'calls'")
        assert owner == [(user,)]

        ing = Unit("switchboard-ingest.service")
        # systemd creates StateDirectory= (/var/lib/NAME) before the start: here, in tmp.
        for d in ing.get("StateDirectory"):
            assert "/var/lib/" + d == "/var/lib/switchboard", d
            os.makedirs(state)
        ing_env = minimal_env(**ing.env(env_files))
        ingest = run.start("unit-ingest", ing.argv(), ing_env, cwd="/")
        wait_until(lambda: http_get(ingest_port, "/healthz")[0] == 200 or
                   (not ingest.alive() and pytest.fail(ingest.output())), 15,
                   "ingest /healthz")

        workers, wunits = [], []
        for port in worker_ports:
            u = Unit("switchboard-worker@.service", str(port))
            assert "switchboard-migrate.service" in " ".join(u.get("Requires", "Unit"))
            assert "switchboard-migrate.service" in " ".join(u.get("After", "Unit"))
            env = minimal_env(**u.env(env_files))
            assert env["WORKER_METRICS_LISTEN"] == "127.0.0.1:%d" % port
            workers.append(run.start("unit-worker@%d" % port, u.argv(), env, cwd="/"))
            wunits.append(u)
        for p, port in zip(workers, worker_ports):
            wait_until(lambda: http_get(port, "/readyz")[0] == 200 or
                       (not p.alive() and pytest.fail(p.output())), 20,
                       "%s /readyz" % p.name)

        # The operator's drain: the worker binary with the same environment file.
        drain_env = minimal_env(**read_env_file(path))
        status = run_scenario(pg_server, redis_server.client(), ingest_port, admin_port,
                              env_file.get("WEBHOOK_SECRET_HEADER", "X-Vapi-Secret"),
                              env_file["WEBHOOK_SECRET"], worker_ports, workers, ingest,
                              [os.path.join(BIN, "switchboard-worker"), "drain", "--timeout",
                               "60s"], drain_env)
        host = socket.gethostname()
        assert {"%s-%d" % (host, port) for port in worker_ports} <= set(status["consumers"])

        codes = run.stop_all()
        for name, (code, took) in codes.items():
            unit = ing if name == "unit-ingest" else wunits[0]
            (kill,) = unit.get("KillSignal")
            assert kill == "SIGTERM"
            (limit,) = unit.get("TimeoutStopSec")
            assert code == 0, "%s exited %s" % (name, code)
            assert took < float(limit) / 2, "%s took %.1fs (TimeoutStopSec=%s)" % (
                name, took, limit)
    finally:
        run.stop_all()

    # systemd's own parser: a scratch root with the units, the binaries and the env file.
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze not installed (sh scripts/deps.sh)"
    root = os.path.join(tmp, "root")
    shutil.copytree("/usr/lib/systemd/system", os.path.join(root, "usr/lib/systemd/system"),
                    symlinks=True)
    os.makedirs(os.path.join(root, "etc/systemd/system"))
    os.makedirs(os.path.join(root, "etc/switchboard"))
    os.makedirs(os.path.join(root, IMAGE_BIN.lstrip("/")))
    for u in units:
        shutil.copy(os.path.join(SYSTEMD, u), os.path.join(root, "etc/systemd/system"))
    for b in ("switchboard-ingest", "switchboard-worker"):
        shutil.copy(os.path.join(BIN, b), os.path.join(root, IMAGE_BIN.lstrip("/")))
    shutil.copy(path, os.path.join(root, "etc/switchboard/env"))
    r = subprocess.run([analyze, "verify", "--man=no", "--root=" + root,
                        "switchboard-migrate.service", "switchboard-ingest.service",
                        "switchboard-worker@9101.service"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
        r.stdout + r.stderr


# --------------------------------------------------------------------------- Dockerfile

def apt_closure(pkgs):
    """The packages apt installs for pkgs: themselves and their Depends/Pre-Depends,
    recursively (alternatives and virtual packages' providers included)."""
    if not pkgs:
        return set()
    r = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends",
                        "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces",
                        "--no-enhances"] + sorted(pkgs), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return {line.strip().strip("<>").split(":")[0] for line in r.stdout.splitlines()
            if line and not line.startswith(" ")}


def base_image_packages():
    """What debian:bookworm-slim has: the Essential and Priority: required packages (a
    minbase system) and what they depend on."""
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Essential}\t${Priority}\n"],
                       capture_output=True, text=True, timeout=60)
    base = {p for p, ess, prio in (line.split("\t") for line in r.stdout.splitlines())
            if ess == "yes" or prio == "required"}
    return apt_closure(base | {"apt"})


def package_of(paths):
    """{path: package} via dpkg -S; a path no package owns maps to None."""
    out = {}
    cands = {}
    for p in paths:
        alts = [p, os.path.realpath(p)]
        for a in list(alts):
            if a.startswith("/usr/lib/"):
                alts.append(a[4:])
            elif a.startswith("/lib/"):
                alts.append("/usr" + a)
        cands[p] = alts
    todo = sorted({a for alts in cands.values() for a in alts})
    owners = {}
    for i in range(0, len(todo), 200):
        r = subprocess.run(["dpkg", "-S"] + todo[i:i + 200], capture_output=True, text=True,
                           timeout=60)
        for line in r.stdout.splitlines():
            if line.startswith("diversion "):
                continue
            pkgs, _, path = line.partition(": ")
            owners[path] = pkgs.split(",")[0].strip().split(":")[0]
    for p, alts in cands.items():
        out[p] = next((owners[a] for a in alts if a in owners), None)
    return out


def docker_context(dest):
    """Copies the build context (the tree minus .dockerignore) to dest."""
    patterns = []
    with open(os.path.join(ROOT, ".dockerignore")) as f:
        for line in f:
            s = line.strip()
            if s and not s.startswith("#"):
                assert not s.startswith("!"), ".dockerignore exceptions are not handled here"
                patterns.append(s.strip("/"))

    def ignored(rel):
        for pat in patterns:
            if pat.startswith("**/"):
                if any(fnmatch.fnmatch(part, pat[3:]) for part in rel.split("/")):
                    return True
            elif fnmatch.fnmatch(rel, pat) or rel.startswith(pat + "/"):
                return True
        return False

    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = os.path.relpath(dirpath, ROOT)
        rel_dir = "" if rel_dir == "." else rel_dir
        dirnames[:] = [d for d in dirnames if not ignored(os.path.join(rel_dir, d))]
        os.makedirs(os.path.join(dest, rel_dir), exist_ok=True)
        for fn in filenames:
            rel = os.path.join(rel_dir, fn)
            if not ignored(rel):
                shutil.copy2(os.path.join(dirpath, fn), os.path.join(dest, rel),
                             follow_symlinks=False)


WRAPPER = r'''#!/usr/bin/python3
import json, os, sys
with open(os.environ["SB_TOOL_LOG"], "a") as f:
    f.write(json.dumps([%(name)r, os.getcwd()] + sys.argv[1:]) + "\n")
os.execv(%(real)r, [%(real)r] + sys.argv[1:])
'''


def test_dockerfile_build_stage_runs_here(tmp_root):
    """The build stage's apt list exists in Debian 12, its make builds the binaries in a copy
    of the build context, and every file the build reads outside the tree (headers,
    libraries, pkg-config files) belongs to a package that list installs; the runtime stage's
    list provides every shared library the binaries load and every tool its HEALTHCHECK
    uses."""
    t0 = time.monotonic()
    stages = dockerfile_stages()
    assert len(stages) == 2 and stages[0][0] == "build"
    for _, instrs in stages:
        assert instrs[0][1].split()[0] == "debian:bookworm-slim"
    with open("/etc/os-release") as f:
        osr = f.read()
    assert 'VERSION_ID="12"' in osr and "debian" in osr, \
        "this check needs a Debian 12 machine, like the image"
    build, final = stages[0][1], stages[1][1]
    build_pkgs, final_pkgs = apt_packages(build), apt_packages(final)
    assert "build-essential" in build_pkgs and final_pkgs

    # Each package is installed here or has an install candidate in the archive.
    for p in build_pkgs + final_pkgs:
        pol = subprocess.run(["apt-cache", "policy", p], capture_output=True, text=True,
                             timeout=60).stdout
        installed = re.search(r"Installed: (\S+)", pol)
        candidate = re.search(r"Candidate: (\S+)", pol)
        assert (installed and installed.group(1) != "(none)") or \
            (candidate and candidate.group(1) != "(none)"), "apt has no package %s" % p

    # The build: WORKDIR /src, COPY . ., then the make RUN, in a copy of the context.
    words = [w for w, _ in build]
    assert ("WORKDIR", "/src") in build and ("COPY", ". .") in build, build
    src = os.path.join(tempfile.mkdtemp(prefix="docker-build-", dir=tmp_root), "src")
    docker_context(src)
    for junk in ("bin", "build", "var", ".git", ".env"):
        assert not os.path.exists(os.path.join(src, junk)), junk
    wrap = os.path.join(os.path.dirname(src), "wrap")
    os.makedirs(wrap)
    log = os.path.join(os.path.dirname(src), "tools.log")
    for tool in ("cc", "pkg-config"):
        real = shutil.which(tool)
        assert real, "%s not installed" % tool
        with open(os.path.join(wrap, tool), "w") as f:
            f.write(WRAPPER % {"name": tool, "real": real})
        os.chmod(os.path.join(wrap, tool), 0o755)
    env = minimal_env(SB_TOOL_LOG=log, HOME=os.path.dirname(src))
    env["PATH"] = wrap + ":" + env["PATH"]
    runs = [rest for w, rest in build[words.index("WORKDIR"):] if w == "RUN"]
    assert any(re.search(r"\bmake\b", r) for r in runs), runs
    for cmd in runs:
        r = subprocess.run(["sh", "-c", cmd], cwd=src, env=env, capture_output=True,
                           text=True, timeout=240)
        assert r.returncode == 0, "RUN %s failed:\n%s\n%s" % (cmd, r.stdout, r.stderr[-4000:])

    copied = []
    for w, rest in final:
        if w == "COPY" and rest.startswith("--from=build"):
            for s in rest.split()[1:-1]:
                assert s.startswith("/src/"), s
                path = os.path.join(src, s[len("/src/"):])
                assert os.access(path, os.X_OK), "the build did not produce %s" % s
                copied.append(path)
    assert sorted(os.path.basename(c) for c in copied) == sorted(image_binaries())
    assert {"switchboard-ingest", "switchboard-worker"} <= set(image_binaries())

    # Everything the build read from the system, by package.
    files = set()
    with open(log) as f:
        calls = [json.loads(line) for line in f]
    for call in calls:
        tool, cwd, args = call[0], call[1], call[2:]
        if tool == "pkg-config":
            for mod in [a for a in args if not a.startswith("-")]:
                r = subprocess.run([shutil.which("pkg-config"), "--path", mod],
                                   capture_output=True, text=True)
                if r.returncode == 0:
                    files.add(r.stdout.strip())
        elif "-c" in args:
            dep = [a for a in args if a not in ("-c", "-MMD", "-MP")]
            if "-o" in dep:
                i = dep.index("-o")
                del dep[i:i + 2]
            r = subprocess.run([shutil.which("cc")] + dep + ["-M"], cwd=cwd,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            for tok in r.stdout.replace("\\\n", " ").split()[1:]:
                p = os.path.normpath(os.path.join(cwd, tok))
                if not p.startswith(src + "/"):
                    files.add(p)
        elif "-o" in args:
            for a in args:
                if a.startswith("-l"):
                    for ext in (".so", ".a"):
                        r = subprocess.run([shutil.which("cc"), "-print-file-name=lib%s%s" %
                                            (a[2:], ext)], capture_output=True, text=True)
                        found = r.stdout.strip()
                        if os.path.isabs(found) and os.path.exists(found):
                            files.add(os.path.normpath(found))
                            break
                    else:
                        raise AssertionError("cannot find the library for %s" % a)
    assert any(f.endswith("/hiredis.h") for f in files), "no system header seen"
    base = base_image_packages()
    have = apt_closure(set(build_pkgs)) | base
    owners = package_of(sorted(files))
    missing = sorted({"%s (%s)" % (pkg or "no package", p) for p, pkg in owners.items()
                      if pkg not in have})
    assert not missing, "the build stage's apt list lacks:\n" + "\n".join(missing)

    # The runtime stage: every shared library the binaries load, and the health check tools.
    have = apt_closure(set(final_pkgs)) | base
    libs = set()
    for b in copied:
        r = subprocess.run(["ldd", b], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        for m in re.finditer(r"=>\s+(/\S+)", r.stdout):
            libs.add(m.group(1))
    assert any("libpq" in lib for lib in libs)
    (health,) = [rest for w, rest in final if w == "HEALTHCHECK"]
    cmd = health.split(" CMD ", 1)[1]
    tools = {t for t in re.findall(r"(?:^|[;|&]|then|else)\s*([a-z][a-z0-9-]+)\s", cmd)
             if t not in ("if", "then", "else", "fi", "exit", "url")}
    assert "curl" in tools, tools
    for t in tools:
        assert shutil.which(t), t
        libs.add(shutil.which(t))
    owners = package_of(sorted(libs))
    missing = sorted({"%s (%s)" % (pkg or "no package", p) for p, pkg in owners.items()
                      if pkg not in have})
    assert not missing, "the runtime stage's apt list lacks:\n" + "\n".join(missing)

    # Not root, nothing secret.
    (user,) = [rest for w, rest in final if w == "USER"]
    assert user.split(":")[0] not in ("root", "0"), user
    for w, rest in final + build:
        if w in ("ENV", "ARG"):
            for tok in re.findall(r"[A-Z][A-Z0-9_]+", rest):
                assert not sensitive(tok), "%s %s" % (w, rest)
    print("Dockerfile build check took %.1fs" % (time.monotonic() - t0))


# --------------------------------------------------------------------------- TLS proxy

def test_tls_proxy_example(stack, tmp_root):
    """deploy/tls/Caddyfile, run as the compose `tls` service runs it, terminates TLS in
    front of a real ingest: webhooks pass through, the body limit applies, the metrics and
    health endpoints are not exposed."""
    caddy = shutil.which("caddy")
    assert caddy, "caddy not installed (sh scripts/deps.sh)"
    env_text = "".join("%s=%s\n" % kv for kv in FILLED.items()) + "PROXY_MAX_BODY=4KiB\n"
    tls = compose_config(env_text)["services"]["tls"]
    stack.start_ingest()
    tmp = tempfile.mkdtemp(prefix="caddy-", dir=tmp_root)
    https_port, http_port = free_port(), free_port()
    mounts = {v.split(":")[1]: v.split(":")[0] for v in tls["volumes"]}
    argv = [mounts.get(a, a) for a in tls["command"]]
    argv[0] = caddy
    env = {k: str(v) for k, v in tls["environment"].items()}
    assert env["SWITCHBOARD_DOMAIN"] == "", "the domain is the operator's to set"
    env["SWITCHBOARD_DOMAIN"] = "https://127.0.0.1:%d" % https_port
    env["INGEST_UPSTREAM"] = env["INGEST_UPSTREAM"].replace(
        "ingest:8080", "127.0.0.1:%d" % stack.ingest_port)
    # This machine only: loopback ports, a private certificate authority kept in tmp.
    env["CADDY_GLOBAL_OPTIONS"] = "\n".join([
        "admin off", "http_port %d" % http_port, "https_port %d" % https_port,
        "default_bind 127.0.0.1", "skip_install_trust", "auto_https disable_redirects",
        "storage file_system %s" % os.path.join(tmp, "data")])
    run = Launched(tmp)
    try:
        p = run.start("caddy", argv, minimal_env(HOME=tmp, XDG_DATA_HOME=tmp,
                                                XDG_CONFIG_HOME=tmp, **env), cwd=tmp)
        root_crt = os.path.join(tmp, "data", "pki", "authorities", "local", "root.crt")
        wait_until(lambda: os.path.exists(root_crt) or
                   (not p.alive() and pytest.fail(p.output())), 20, "Caddy's local CA")
        ctx = ssl.create_default_context(cafile=root_crt)

        def request(method, path, data=None, headers=None):
            c = http.client.HTTPSConnection("127.0.0.1", https_port, context=ctx, timeout=10)
            try:
                c.request(method, path, body=data, headers=headers or {})
                r = c.getresponse()
                return r.status, r.read()
            finally:
                c.close()

        def up():
            try:
                return request("GET", "/healthz")[0] == 404
            except (OSError, ssl.SSLError):
                return False
        wait_until(up, 20, "Caddy to serve HTTPS")
        ok = body({"type": "status-update", "status": "ringing", "call": {"id": "tls-1"}})
        hdr = {"X-Vapi-Secret": "test-secret-0123456789", "Content-Type": "application/json"}
        st, out = request("POST", "/api/vapi/webhook", ok, hdr)
        assert st == 200 and json.loads(out)["ok"] is True, (st, out)
        assert stack.redis.client().xlen("switchboard:webhooks") == 1
        assert request("POST", "/api/vapi/webhook", ok, {"X-Vapi-Secret": "nope"})[0] == 401
        # Over PROXY_MAX_BODY: refused by the proxy (Caddy 2.6, Debian 12's, answers 502; 413
        # is accepted too) and nothing reaches the stream.
        assert request("POST", "/api/vapi/webhook", b"x" * 8192, hdr)[0] in (413, 502)
        assert request("GET", "/metrics")[0] == 404
        assert stack.redis.client().xlen("switchboard:webhooks") == 1
    finally:
        run.stop_all()
