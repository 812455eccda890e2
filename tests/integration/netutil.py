"""Small helpers shared by the integration tests and the benchmark harness."""

import glob
import os
import pwd
import socket
import subprocess
import time


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what):
    """Polls pred every 50 ms; raises AssertionError naming what after timeout seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


def pg_bindir():
    """The newest PostgreSQL server binaries of the system's packages, or None."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    return dirs[-1] if dirs else None


class PgCluster:
    """A PostgreSQL cluster made with initdb in tmp/pg, listening on a free loopback port and
    no unix socket, with `settings` (e.g. "-c fsync=off") added at start. As root it belongs
    to the postgres user, since initdb refuses to run as root."""

    def __init__(self, tmp, settings):
        self.bindir = pg_bindir()
        if self.bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install "
                               "postgresql)")
        self.settings = settings
        self.dir = os.path.join(tmp, "pg")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        os.makedirs(self.dir)
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chmod(tmp, 0o755)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                 "--no-sync", "--locale=C")

    def run(self, tool, *args, timeout=120):
        argv = [os.path.join(self.bindir, tool)] + list(args)
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                       cwd="/", timeout=timeout)

    def start(self):
        opts = "-p %d -k '' -c listen_addresses=127.0.0.1 %s" % (self.port, self.settings)
        self.run("pg_ctl", "-D", self.data, "-o", opts, "-l",
                 os.path.join(self.dir, "server.log"), "-w", "-t", "60", "start")

    def stop(self, mode="fast"):
        # pg_ctl signals the postmaster by the PID in its postmaster.pid.
        self.run("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")

    def dsn(self, db):
        return "postgresql://postgres@127.0.0.1:%d/%s" % (self.port, db)
