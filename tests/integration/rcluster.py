"""Redis Cluster: masters * (1 + replicas) real redis-server processes on free loopback ports,
joined with `redis-cli --cluster create`. Nodes can be SIGKILLed and the failover to one of
their replicas waited for. Everything started here is stopped by PID."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile

import pytest
import redis as redislib

from conftest import Proc, RedisServer
from netutil import free_port, wait_until

SLOTS = 16384
BUS_OFFSET = 10000  # a node's cluster bus listens on its port + 10000


def cluster_tools_missing():
    """Why no Redis Cluster can be made here, or None: redis-server and a redis-cli with
    --cluster create are needed."""
    if not shutil.which("redis-server") or not shutil.which("redis-cli"):
        return "redis-server and redis-cli are needed for a Redis Cluster"
    r = subprocess.run(["redis-cli", "--cluster", "help"], capture_output=True, text=True,
                       timeout=10)
    if "create" not in r.stdout + r.stderr:
        return "this redis-cli has no --cluster create"
    return None


def skip_unless_cluster_tools():
    """Skips the calling test unless redis-server and a redis-cli with --cluster are here."""
    why = cluster_tools_missing()
    if why:
        pytest.skip(why)


def cluster_port():
    """A free port whose bus port (+10000) is a valid port and free too."""
    while True:
        port = free_port()
        if port + BUS_OFFSET > 65535:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + BUS_OFFSET))
        except OSError:
            continue
        return port


class Node(RedisServer):
    """One cluster-enabled redis-server in tmp/name; client(), ping() and stop() are
    RedisServer's. id is its node id once the cluster is created. conf: a configuration file
    read first; args: options given after the ones here (the last one given wins)."""

    def __init__(self, tmp, name, conf=None, args=()):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.name = name
        self.port = cluster_port()
        self.proc = None
        self.id = None
        self.conf = conf
        self.args = list(args)
        self.start()

    def start(self):
        argv = ["redis-server"] + ([self.conf] if self.conf else [])
        argv += ["--port", str(self.port), "--bind", "127.0.0.1",
                 "--dir", self.dir, "--cluster-enabled", "yes",
                 "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
                 "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                 "--daemonize", "no", "--logfile", "", "--maxmemory-policy", "noeviction"]
        argv += self.args
        self.proc = Proc(self.name, argv, dict(os.environ), self.dir)
        wait_until(self.ping, 10, self.name + " to answer PING")

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def call(self, *args):
        """One command on a new connection, the reply decoded (str, int, lists)."""
        c = redislib.Redis(host="127.0.0.1", port=self.port, socket_timeout=2,
                           socket_connect_timeout=2, decode_responses=True)
        try:
            return c.execute_command(*args)
        finally:
            c.close()

    def info(self):
        """CLUSTER INFO as a dict of strings."""
        text = self.call("CLUSTER", "INFO")
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def slots(self):
        """CLUSTER SLOTS as [(start, end, master port, [replica ports])]."""
        return [(int(r[0]), int(r[1]), int(r[2][1]), [int(x[1]) for x in r[3:]])
                for r in self.call("CLUSTER", "SLOTS")]

    def cluster_nodes(self):
        """CLUSTER NODES as [(id, port, flags, master id or "-")]."""
        out = []
        for line in self.call("CLUSTER", "NODES").splitlines():
            f = line.split()
            out.append((f[0], int(f[1].split("@")[0].rsplit(":", 1)[1]), f[2].split(","), f[3]))
        return out

    def kill(self):
        self.proc.p.send_signal(signal.SIGKILL)
        self.proc.p.wait()
        self.proc.log.close()
        self.proc = None


class RedisCluster:
    """`masters` shards of one master and `replicas` replicas each, nodes in tmp/node-N
    (conf and args: each Node's)."""

    def __init__(self, tmp, masters=3, replicas=1, conf=None, args=()):
        self.tmp = tmp
        self.masters = masters
        self.replicas = replicas
        self.conf = conf
        self.args = args
        self.nodes = []
        self.dead = {}  # port -> (ranges it owned, its replicas' ports) when killed

    def start(self):
        for i in range(self.masters * (1 + self.replicas)):
            self.nodes.append(Node(self.tmp, "node-%d" % i, self.conf, self.args))
        r = subprocess.run(["redis-cli", "--cluster", "create"] +
                           [n.addr for n in self.nodes] +
                           ["--cluster-replicas", str(self.replicas), "--cluster-yes"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("redis-cli --cluster create failed:\n" + r.stdout + r.stderr)
        for n in self.nodes:
            n.id = n.call("CLUSTER", "MYID")
        wait_until(self.ready, 30, "every node to see the whole cluster, state ok and "
                   "every replica in sync")
        return self

    def ready(self):
        """Every live node says cluster_state:ok with all slots covered, and every replica's
        link to its master is up (a replica that never synced cannot fail over)."""
        try:
            for n in self.nodes:
                if not n.alive():
                    continue
                i = n.info()
                if i.get("cluster_state") != "ok" or i.get("cluster_slots_ok") != str(SLOTS):
                    return False
                if sum(e - s + 1 for s, e, _, _ in n.slots()) != SLOTS:
                    return False
                repl = n.client().info("replication")
                if repl["role"] != "master" and repl.get("master_link_status") != "up":
                    return False
            return True
        except (redislib.RedisError, OSError):
            return False

    def node(self, port):
        return next(n for n in self.nodes if n.port == port)

    def topology(self):
        """CLUSTER SLOTS (as Node.slots) from the first live node that answers."""
        for n in self.nodes:
            if n.alive():
                try:
                    return n.slots()
                except (redislib.RedisError, OSError):
                    continue
        raise AssertionError("no cluster node answers")

    def seeds(self):
        """The masters' addresses, "127.0.0.1:p1,127.0.0.1:p2,...", in slot order."""
        ports = []
        for _, _, m, _ in sorted(self.topology()):
            if m not in ports:
                ports.append(m)
        return ",".join("127.0.0.1:%d" % p for p in ports)

    def keyslot(self, key):
        for n in self.nodes:
            if n.alive():
                try:
                    return int(n.call("CLUSTER", "KEYSLOT", key))
                except (redislib.RedisError, OSError):
                    continue
        raise AssertionError("no cluster node answers")

    def master_for_key(self, key):
        """The node that owns key's slot, as a live node sees it."""
        slot = self.keyslot(key)
        for s, e, m, _ in self.topology():
            if s <= slot <= e:
                return self.node(m)
        raise AssertionError("slot %d is not served" % slot)

    def kill(self, node):
        """SIGKILLs node, remembering the slots it served and its replicas (from CLUSTER
        NODES: CLUSTER SLOTS leaves out a replica until it has replicated some data)."""
        ranges = [(s, e) for s, e, m, _ in self.topology() if m == node.port]
        replicas = sorted(p for _, p, _, m in node.cluster_nodes() if m == node.id)
        self.dead[node.port] = (ranges, replicas)
        node.kill()

    def failed_over(self, dead):
        """The replica of dead that now serves all dead's slots on every live node, or None."""
        ranges, replicas = self.dead[dead.port]
        new = set()
        try:
            for n in self.nodes:
                if not n.alive():
                    continue
                if n.info().get("cluster_state") != "ok":
                    return None
                view = n.slots()
                for s, e in ranges:
                    owners = {m for vs, ve, m, _ in view if vs <= e and ve >= s}
                    covered = sum(min(ve, e) - max(vs, s) + 1
                                  for vs, ve, _, _ in view if vs <= e and ve >= s)
                    if covered != e - s + 1 or len(owners) != 1:
                        return None
                    new |= owners
        except (redislib.RedisError, OSError):
            return None
        if not ranges:
            return dead  # a replica was killed: there is nothing to take over
        if len(new) != 1 or not new <= set(replicas):
            return None
        n = self.node(new.pop())
        return n if n.alive() else None

    def wait_failover(self, dead, timeout=30):
        """Waits until a replica of the killed master serves all its slots and every live
        node says cluster_state:ok; returns that replica."""
        wait_until(lambda: self.failed_over(dead) is not None, timeout,
                   "a replica of %s to take over its slots" % dead.addr)
        return self.failed_over(dead)

    def stop(self):
        """Stops every live node (SIGTERM, then SIGKILL after a while), the last started first."""
        for n in reversed(self.nodes):
            if n.proc is not None:
                n.proc.stop(timeout=15)
                n.proc = None


@pytest.fixture
def redis_cluster(tmp_root):
    skip_unless_cluster_tools()
    c = RedisCluster(tempfile.mkdtemp(prefix="cluster-", dir=tmp_root))
    try:
        c.start()
        yield c
    finally:
        c.stop()
