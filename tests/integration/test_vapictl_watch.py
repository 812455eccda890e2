"""Drift is corrected: `vapictl assistants sync --watch` syncs again and again (an assistant
created in the dashboard meanwhile gets the configuration), and the systemd timer's service
runs the same syncs."""

import os
import shutil
import signal
import subprocess
import tempfile

from conftest import BIN, ROOT, SECRET, wait_until
from test_vapictl import (API_KEY, URL, in_sync, seed_assistants, vapi,  # noqa: F401
                          vapictl, wrong_assistant)

SYSTEMD = os.path.join(ROOT, "deploy", "systemd")


def test_watch_keeps_correcting_drift_until_sigterm(vapi, tmp_root):
    _, wrong = seed_assistants(vapi, 2, 3)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAPI_", "WEBHOOK_"))}
    env.update(VAPI_API_KEY=API_KEY, VAPI_BASE_URL=vapi.url, WEBHOOK_SECRET=SECRET)
    out = tempfile.NamedTemporaryFile(dir=tmp_root, delete=False)
    p = subprocess.Popen([os.path.join(BIN, "vapictl"), "assistants", "sync", "--url", URL,
                          "--watch", "1s"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        text = lambda: open(out.name).read()  # noqa: E731
        wait_until(lambda: "assistants sync: 3 changed" in text(), 20, "the first pass")
        assert all(in_sync(vapi.assistant(a)) for a in wrong)
        # Created in the dashboard after the first pass: the next pass fixes it.
        late = vapi.add_assistant(wrong_assistant(1))
        wait_until(lambda: in_sync(vapi.assistant(late)), 20, "the new assistant to be synced")
        wait_until(lambda: "assistants sync: 0 changed, 6 unchanged" in text(), 20,
                   "a pass with nothing left to do")
        assert "watch: pass 1 at " in text() and "watch: pass 3 at " in text()
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert text().rstrip().endswith("watch: stopped")


def test_watch_takes_a_duration(vapi):
    for bad in ("soon", "0s", "2d"):
        r = vapictl(vapi, "assistants", "sync", "--url", URL, "--watch", bad)
        assert r.returncode == 2 and "--watch" in r.stderr, bad
    r = vapictl(vapi, "assistants", "list", "--watch", "5s")
    assert r.returncode == 2 and "does not apply" in r.stderr


def unit_lines(name, key):
    with open(os.path.join(SYSTEMD, name)) as f:
        return [line.split("=", 1)[1].strip() for line in f if line.startswith(key + "=")]


def test_the_timer_service_runs_the_syncs(vapi, tmp_root):
    _, wrong = seed_assistants(vapi, 1, 4)
    pn = vapi.add_phone_number({"provider": "vapi", "number": "+15550007001",
                                "assistantId": sorted(wrong)[0]})
    creds = tempfile.mkdtemp(prefix="creds-", dir=tmp_root)
    with open(os.path.join(creds, "vapi-api-key"), "w") as f:
        f.write(API_KEY + "\n")
    with open(os.path.join(creds, "webhook-secret"), "w") as f:
        f.write(SECRET + "\n")
    # The unit's environment: its env file, then Environment= with %d = the credentials.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAPI_", "WEBHOOK_"))}
    with open(os.path.join(SYSTEMD, "vapictl.env")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                k, v = line.strip().split("=", 1)
                env[k] = v
    for assignment in " ".join(unit_lines("switchboard-vapi-sync.service",
                                          "Environment")).split():
        k, v = assignment.split("=", 1)
        env[k] = v.replace("%d", creds)
    env["VAPI_BASE_URL"] = vapi.url  # the one address mapped: the fake instead of Vapi
    assert unit_lines("switchboard-vapi-sync.service", "LoadCredential") == [
        "vapi-api-key:/etc/switchboard/vapi-api-key",
        "webhook-secret:/etc/switchboard/webhook-secret"]
    starts = unit_lines("switchboard-vapi-sync.service", "ExecStart")
    assert len(starts) == 2
    for cmd in starts:
        argv = cmd.replace("/usr/local/bin", BIN).split()
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, (cmd, r.stdout, r.stderr)
    assert all(vapi.assistant(a)["server"]["url"] == env["VAPI_WEBHOOK_URL"] for a in wrong)
    assert vapi.phone_number(pn)["server"]["url"] == env["VAPI_WEBHOOK_URL"]
    # systemd's own parser accepts the service and the timer.
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze not installed (sh scripts/deps.sh)"
    root = tempfile.mkdtemp(prefix="root-", dir=tmp_root)
    shutil.copytree("/usr/lib/systemd/system", os.path.join(root, "usr/lib/systemd/system"),
                    symlinks=True)
    for d in ("etc/systemd/system", "etc/switchboard", "usr/local/bin"):
        os.makedirs(os.path.join(root, d))
    for u in ("switchboard-vapi-sync.service", "switchboard-vapi-sync.timer"):
        shutil.copy(os.path.join(SYSTEMD, u), os.path.join(root, "etc/systemd/system"))
    shutil.copy(os.path.join(BIN, "vapictl"), os.path.join(root, "usr/local/bin"))
    shutil.copy(os.path.join(SYSTEMD, "vapictl.env"), os.path.join(root, "etc/switchboard"))
    r = subprocess.run([analyze, "verify", "--man=no", "--root=" + root,
                        "switchboard-vapi-sync.service", "switchboard-vapi-sync.timer"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
        r.stdout + r.stderr
