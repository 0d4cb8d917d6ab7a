"""Structured log lines and the Prometheus endpoint."""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.request

import pytest
import redis

from rediscron import RedisCronScheduler
from rediscron.dispatch import DROP_LINES_PER_FIRE
from rediscron.logs import JsonFormatter
from rediscron.metrics import MetricsServer, render
from tests import jobs

T0 = 1_900_000_800


def test_events_carry_their_fields_and_format_as_json(
    connection: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    now = [T0 + 0.25]
    s = RedisCronScheduler(connection, name="j", clock=lambda: now[0])
    s.register(jobs.noop, "q", id="a", cron="* * * * *")
    connection.hset("rq:cron_job:a", "revision", "x")  # unreadable: quarantined
    s.register(jobs.noop, "q", id="b", cron="* * * * *")
    with caplog.at_level(logging.INFO, logger="rediscron"):
        s.register_birth()
        now[0] += 3600  # b: one run for the newest slot, 59 missed
        s.enqueue_jobs()
        s.register_death()
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if hasattr(r, "rediscron")]
    by_event = {line["event"]: line for line in lines}
    assert by_event["lock_acquired"]["epoch"] == 1
    assert by_event["fire"]["job_id"] == "b" and by_event["fire"]["slot"] == T0 + 3600
    assert by_event["fire"]["lag"] == pytest.approx(0.25)
    assert (by_event["missed"]["slots"], by_event["missed"]["reason"]) == (59, "coalesced")
    assert by_event["quarantine"]["job_id"] == "a"
    assert by_event["lock_released"]["scheduler"] == "j"
    assert all(line["level"] in ("INFO", "WARNING", "ERROR") and line["message"] for line in lines)


def test_a_fire_dropping_many_jobs_slots_logs_the_first_ones_and_sums_up_the_rest(
    connection: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    now = [T0 + 0.25]
    s = RedisCronScheduler(connection, name="many", clock=lambda: now[0])
    for i in range(DROP_LINES_PER_FIRE + 5):
        s.register(jobs.noop, "q", id=f"m{i}", cron="* * * * *")
    with caplog.at_level(logging.INFO, logger="rediscron"):
        s.register_birth()
        now[0] += 600  # each job: one run for the newest slot, 9 missed
        s.enqueue_jobs()
        s.register_death()
    events = [r.rediscron for r in caplog.records if hasattr(r, "rediscron")]  # type: ignore[attr-defined]
    assert sum(1 for e in events if e["event"] == "missed") == DROP_LINES_PER_FIRE
    (more,) = [e for e in events if e["event"] == "missed_more"]
    assert (more["jobs"], more["slots"]) == (5, 45)
    assert s.dispatch.stats.missed == 9 * (DROP_LINES_PER_FIRE + 5)  # counted, logged or not


def test_metrics_endpoint(connection: redis.Redis) -> None:
    now = [T0 + 0.25]
    s = RedisCronScheduler(connection, name="m", clock=lambda: now[0], logging_level="ERROR")
    for i in range(3):
        s.register(jobs.noop, "q", id=f"j{i}", interval=60)
    server = MetricsServer(s, port=0)
    assert server.httpd.server_address[0] == "127.0.0.1"  # loopback unless told otherwise
    assert server.connection.connection_pool is not s.connection.connection_pool
    server.start()
    try:
        s.register_birth()
        s.enqueue_jobs()
        body = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5).read().decode()
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/nope", timeout=5)
    finally:
        server.stop()
        s.register_death()
    metrics = dict(line.rsplit(" ", 1) for line in body.splitlines() if not line.startswith("#"))
    assert metrics["rediscron_fires_total"] == "3"
    assert metrics['rediscron_lag_seconds_bucket{le="0.25"}'] == "3"
    assert metrics['rediscron_lag_seconds_bucket{le="0.1"}'] == "0"
    assert metrics["rediscron_lag_seconds_count"] == "3"
    assert metrics["rediscron_lock_held"] == "1" and metrics["rediscron_fencing_epoch"] == "1"
    assert metrics['rediscron_jobs{state="registered"}'] == "3"
    assert metrics['rediscron_jobs{state="failing"}'] == "0"
    assert metrics["rediscron_redis_up"] == "1"
    assert metrics["rediscron_failed_passes_total"] == "0" and metrics["rediscron_registry_lost"] == "0"
    assert float(metrics["rediscron_oldest_overdue_seconds"]) == 0.0


def test_metrics_count_the_oldest_overdue_slot_from_redis(connection: redis.Redis) -> None:
    s = RedisCronScheduler(connection, name="o", logging_level="ERROR")
    s.register(jobs.noop, "q", id="late", interval=60)
    now = float(connection.time()[0])
    connection.zadd("rq:cron_jobs:schedule", {"late": now - 90})
    metrics = dict(line.rsplit(" ", 1) for line in render(s).splitlines() if not line.startswith("#"))
    assert 89 <= float(metrics["rediscron_oldest_overdue_seconds"]) < 120


def test_a_busy_endpoint_refuses_more_clients_and_drops_silent_ones(connection: redis.Redis) -> None:
    s = RedisCronScheduler(connection, name="b", logging_level="ERROR")
    server = MetricsServer(s, port=0, max_clients=4, timeout=0.5)
    server.start()
    idle = []
    try:
        for _ in range(4):  # connect, send nothing
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        time.sleep(0.1)
        extra = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        extra.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        assert extra.recv(100) == b""  # closed at once, without a reply
        extra.close()
        time.sleep(0.8)  # the silent ones time out and free their places
        body = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5).read().decode()
        assert "rediscron_fires_total 0" in body
    finally:
        for sock in idle:
            sock.close()
        server.stop()


def test_a_client_trickling_its_request_is_cut_off(connection: redis.Redis) -> None:
    s = RedisCronScheduler(connection, name="t", logging_level="ERROR")
    server = MetricsServer(s, port=0, max_clients=1, timeout=1.0)
    server.start()
    try:
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        started = time.monotonic()
        for byte in b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 100:
            try:
                slow.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.1)  # each byte well within the per-read timeout
            if time.monotonic() - started > 4:
                break
        assert time.monotonic() - started < 3  # cut off at about 1 s, not served for ever
        slow.close()
        time.sleep(0.2)
        body = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5).read().decode()
        assert "rediscron_fires_total" in body  # the place was freed
    finally:
        server.stop()
