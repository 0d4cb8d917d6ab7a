"""A scheduler process with JSON logs and a metrics endpoint."""

from __future__ import annotations

import contextlib
import json
import socket
import urllib.request

import pytest
import redis

from rediscron import RedisCronScheduler
from rediscron.testing import free_port
from tests import jobs
from tests.system.conftest import wait_until
from tests.system.test_processes import Spawn, ids_of

pytestmark = pytest.mark.system


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


def test_slow_and_idle_metrics_clients_never_delay_a_fire(connection: redis.Redis, spawn: Spawn) -> None:
    import threading
    import time

    from rediscron.status import read_status

    admin = RedisCronScheduler(connection, logging_level="WARNING")
    admin.register_many(
        [{"func": jobs.noop, "queue_name": "default", "id": f"s{i}", "cron": "* * * * * *"} for i in range(20)]
    )
    port = free_port()
    proc = spawn("busy", "--metrics-port", str(port))
    wait_until(lambda: len(ids_of(connection, "s0")) >= 2, what="fires")
    stop = threading.Event()
    sockets: list[socket.socket] = []
    for _ in range(200):  # connect and say nothing
        with contextlib.suppress(OSError):  # refused at once when busy: fine
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=5))

    def slowloris() -> None:  # a request trickled one byte every 0.2 s
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    for byte in b"GET /metrics HTTP/1.1\r\nHost: x\r\n":
                        if stop.is_set():
                            return
                        sock.sendall(bytes([byte]))
                        time.sleep(0.2)
            except OSError:
                time.sleep(0.1)

    threads = [threading.Thread(target=slowloris, daemon=True) for _ in range(20)]
    for thread in threads:
        thread.start()
    before = {f"s{i}": len(ids_of(connection, f"s{i}")) for i in range(20)}
    time.sleep(6)
    stop.set()
    for sock in sockets:
        sock.close()
    assert proc.alive(), proc.log()
    after = {f"s{i}": len(ids_of(connection, f"s{i}")) for i in range(20)}
    # Every job kept its rhythm: about one run a second each (no missed slot shows as 0 or a gap).
    assert all(after[j] - before[j] >= 5 for j in after), (before, after)
    report = read_status(connection)
    assert report.missed_total == 0
    assert report.lag_p99 is not None and report.lag_p99 < 0.25, report
    assert "Traceback" not in proc.log()
