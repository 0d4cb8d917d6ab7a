"""A scheduler process with JSON logs and a metrics endpoint."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest
import redis

from rediscron import RedisCronScheduler
from tests import jobs
from tests.system.conftest import wait_until
from tests.system.test_processes import Spawn, ids_of

pytestmark = pytest.mark.system


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_json_logs_and_metrics(connection: redis.Redis, spawn: Spawn) -> None:
    RedisCronScheduler(connection, logging_level="WARNING").register(jobs.noop, "default", id="obs", interval=1)
    port = free_port()
    proc = spawn("obs", "--log-format", "json", "--metrics-port", str(port), "--metrics-host", "127.0.0.1")
    wait_until(lambda: len(ids_of(connection, "obs")) >= 2, what="fires")

    def fires() -> int:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
        return int(next(line for line in body.splitlines() if line.startswith("rediscron_fires_total ")).split()[1])

    wait_until(lambda: fires() >= 2, what="metrics")
    events = [json.loads(line) for line in proc.log().splitlines() if line.startswith("{")]
    assert {"lock_acquired", "fire"} <= {e.get("event") for e in events}
    assert all(e["job_id"] == "obs" and e["lag"] < 1 for e in events if e.get("event") == "fire")
