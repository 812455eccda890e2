"""The status page in a real browser (Debian's headless Chromium) against the real worker:
it loads with no console error, shows the numbers the API gives, its search finds a call, and
a screenshot is written for a person to look at."""

import html.parser
import os
import shutil
import subprocess

import pytest

from conftest import seed
from test_status import ORGS, api, post_known, start, wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(apt-get install chromium; .ci/run installs it)")


def chromium(tmp, url, *extra):
    """Runs headless Chromium on url; returns (stdout, stderr)."""
    profile = os.path.join(tmp, "chromium-profile")
    os.makedirs(profile, exist_ok=True)
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0",
            "--virtual-time-budget=6000"] + list(extra) + [url]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout, r.stderr


class Texts(html.parser.HTMLParser):
    """The text inside each element with an id, and every table cell's text."""

    def __init__(self):
        super().__init__()
        self.stack, self.by_id, self.cells = [], {}, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.stack.append((tag, a.get("id")))
        if tag == "td":
            self.cells.append("")

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data):
        for _, i in self.stack:
            if i:
                self.by_id[i] = self.by_id.get(i, "") + data
        if any(t == "td" for t, _ in self.stack) and self.cells:
            self.cells[-1] += data


def test_the_page_shows_what_the_api_says_and_finds_a_call(stack, tmp_path):
    seed(stack.pg, ORGS)
    stack.start_ingest()
    _, port = start(stack)
    rids = post_known(stack)
    stack.wait_drained()
    wait_until(lambda: api(port, "/api/status")[1]["dead_letters"]["count"] == 1, 10,
               "a fresh snapshot")
    st = api(port, "/api/status")[1]

    url = "http://127.0.0.1:%d/#q=%s" % (port, rids["call-3"])
    dom, log = chromium(str(tmp_path), url, "--dump-dom")
    console = [line for line in log.splitlines() if ":CONSOLE(" in line]
    assert console == [], "console messages:\n" + "\n".join(console)
    t = Texts()
    t.feed(dom)
    assert t.by_id["verdict"] == "Action needed" or t.by_id["verdict"] == "Attention"
    assert t.by_id["t-redis"] == "up" and t.by_id["t-postgres"] == "up"
    assert t.by_id["t-length"] == str(st["stream"]["length"]) == "8"
    assert t.by_id["t-lag"] == str(st["stream"]["lag"])
    assert t.by_id["t-pending"] == str(st["stream"]["pending"])
    assert t.by_id["t-dead"] == str(st["dead_letters"]["count"]) == "1"
    assert t.by_id["t-unrouted"] == str(st["unrouted"]["count"]) == "2"
    assert t.by_id["t-spool"] == "0"
    assert t.by_id["t-workers"] == "1 / 1"
    assert "1 dead letter(s)" in t.by_id["problems"] and "2 unrouted" in t.by_id["problems"]
    # The search ran for the request id and found call-3, its number masked.
    assert t.by_id["call-title"] == "Call call-3 (found by request id %s)" % rids["call-3"]
    fields = t.by_id["call-fields"]
    assert "call-3" in fields and "org_b" in fields and "+*******1234" in fields
    assert "+15550001234" not in dom
    assert rids["call-3"] in t.cells  # the event's request id in the events table
    for o in st["organizations"]:
        assert o["id"] in t.by_id["orgs"]

    shot = str(tmp_path / "status.png")
    chromium(str(tmp_path), url, "--screenshot=" + shot, "--window-size=1280,1500",
             "--hide-scrollbars")
    assert os.path.getsize(shot) > 20000
    print("screenshot:", shot)
