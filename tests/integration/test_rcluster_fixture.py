"""The Redis Cluster fixture: keys written through redis-cli -c survive a master's SIGKILL."""

import subprocess

from rcluster import redis_cluster  # noqa: F401 (the fixture)


def test_a_killed_master_is_replaced_by_its_replica(redis_cluster):  # noqa: F811
    c = redis_cluster
    cmds = "".join("SET k{%d} v%d\n" % (i, i) for i in range(100))
    r = subprocess.run(["redis-cli", "-c", "-p", str(c.nodes[0].port)], input=cmds,
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.split().count("OK") == 100, r.stdout + r.stderr  # and "-> Redirected"
    old = c.master_for_key("k{42}")
    assert old.client().execute_command("WAIT", 1, 5000) == 1  # the replica has it
    c.kill(old)
    new = c.wait_failover(old)
    assert new is not old and c.master_for_key("k{42}") is new
    assert new.client().get("k{42}") == b"v42"
