"""Every rediscron operation on a real 3-node Redis Cluster, with rq's key prefix set to {rq}.

All keys then share one hash slot, so a plain client of the node that serves it runs every
script and transaction; a key in any other slot would be refused (MOVED, or a script's
"non local key" error).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
import rq.defaults

from rediscron.testing import RedisServer, free_port
from tests.system.conftest import ROOT, wait_until

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(
        not hasattr(rq.defaults, "RQ_KEY_PREFIX"),
        reason="this rq has no RQ_KEY_PREFIX: its job and queue keys cannot share rediscron's slot",
    ),
]

SLOTS = 16384


def _port_with_free_bus() -> int:
    """A free port whose cluster bus port (port + 10000) is valid and free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


@pytest.fixture
def cluster() -> Iterator[list[RedisServer]]:
    nodes: list[RedisServer] = []
    try:
        for _ in range(3):
            node = RedisServer(
                port=_port_with_free_bus(), extra_args=["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"]
            )
            node.extra_args += ["--cluster-config-file", os.path.join(node.dir, "nodes.conf")]
            node.start()
            nodes.append(node)
        per_node = SLOTS // 3
        for i, node in enumerate(nodes):
            end = SLOTS if i == 2 else (i + 1) * per_node
            node.client().execute_command("CLUSTER", "ADDSLOTS", *range(i * per_node, end))
        for node in nodes[1:]:
            nodes[0].client().execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        wait_until(
            lambda: all(n.client().cluster("info")["cluster_state"] == "ok" for n in nodes),
            timeout=20,
            what="cluster_state:ok",
        )
        yield nodes
    finally:
        for node in nodes:
            node.cleanup()


def test_every_operation_runs_in_one_slot(cluster: list[RedisServer]) -> None:
    slot = int(cluster[0].client().execute_command("CLUSTER", "KEYSLOT", "{rq}"))
    owner = cluster[min(2, slot // (SLOTS // 3))]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RQ_KEY_PREFIX": "{rq}"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.system.cluster_ops", str(owner.port)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["fired"] == ["a", "gone", "gone", "m0", "m1", "m2", "m3", "m4"]
    assert any("-manual-" in job_id for job_id in report["history"])
    assert report["invalid"] == ["m1"]
    assert (report["registered"], report["exported"]) == (6, 6)
    assert report["fired_total"] >= 6 and report["info_lines"] >= 6
    assert all(key.startswith("{rq}:") for key in report["keys"]), report["keys"]
    assert any(key.startswith("{rq}:job:") for key in report["keys"])
    for node in cluster:
        if node is not owner:
            assert node.client().dbsize() == 0
