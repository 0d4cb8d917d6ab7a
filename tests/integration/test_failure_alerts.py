"""Failure alerts: a job whose runs fail ``max_consecutive_failures`` times in a row is disabled, and told."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import redis
from rq import Queue, SimpleWorker

from rediscron import RedisCronJob, RedisCronScheduler
from rediscron import keys as k
from rediscron.audit import read
from rediscron.job import rq_job_id
from tests import jobs
from tests.integration.test_policies import Clock

T0 = 1_900_000_800


def _work(connection: redis.Redis) -> None:
    SimpleWorker([Queue("q", connection=connection)], connection=connection).work(burst=True)


def _fire(scheduler: RedisCronScheduler, clock: Clock, at: float) -> None:
    clock.now = at
    scheduler.enqueue_jobs()


def _failing(connection: redis.Redis, on_disable: Any, limit: int = 2) -> tuple[RedisCronScheduler, Clock]:
    clock = Clock(T0 + 0.5)
    s = RedisCronScheduler(connection, name="alerts", clock=clock, logging_level="WARNING", on_disable=on_disable)
    s.register(jobs.fail, "q", id="f", interval=60, max_consecutive_failures=limit)
    s.register_birth()
    return s, clock


def test_a_job_failing_too_often_is_disabled_at_its_next_slot_and_the_hook_is_told(connection: redis.Redis) -> None:
    told: list[dict[str, Any]] = []
    s, clock = _failing(connection, told.append)
    _fire(s, clock, T0 + 0.5)  # run 1
    _work(connection)  # fails
    _fire(s, clock, T0 + 60.5)  # run 2: one failure so far
    _work(connection)  # fails
    assert RedisCronJob.fetch("f", connection).enabled and told == []
    _fire(s, clock, T0 + 120.5)  # two in a row: disabled instead of run 3
    job = RedisCronJob.fetch("f", connection)
    assert not job.enabled and job.consecutive_failures == 2
    assert not connection.exists(f"rq:job:{rq_job_id('f', T0 + 120)}")
    assert connection.zscore(k.schedule(), "f") is None
    assert "2 runs in a row failed (max_consecutive_failures=2)" in job.drop_log[-1]["reason"]
    entry = read(connection, "f")[0]
    assert (entry.action, entry.actor, entry.changes) == ("disabled", "rediscron scheduler", {"enabled": ("1", "0")})
    assert len(told) == 1 and told[0]["id"] == "f" and told[0]["failures"] == 2 and told[0]["scheduler"] == "alerts"
    assert s.stats.disabled_for_failing == 1
    _fire(s, clock, T0 + 180.5)  # disabled: nothing more
    assert connection.llen("rq:queue:q") == 0 and len(told) == 1
    s.register_death()


def test_a_success_in_between_starts_the_count_again(connection: redis.Redis) -> None:
    s, clock = _failing(connection, None, limit=2)
    _fire(s, clock, T0 + 0.5)
    _work(connection)  # fails
    s.register(jobs.noop, "q", id="f", interval=60, max_consecutive_failures=2)  # fixed
    _fire(s, clock, T0 + 60.5)
    _work(connection)  # succeeds
    s.register(jobs.fail, "q", id="f", interval=60, max_consecutive_failures=2)  # broken again
    _fire(s, clock, T0 + 120.5)
    _work(connection)  # fails: one in a row
    _fire(s, clock, T0 + 180.5)
    assert RedisCronJob.fetch("f", connection).enabled
    assert connection.exists(f"rq:job:{rq_job_id('f', T0 + 180)}")
    s.register_death()


def test_a_hook_that_fails_never_stops_the_scheduler(connection: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("pager down")

    s, clock = _failing(connection, broken, limit=1)
    _fire(s, clock, T0 + 0.5)
    _work(connection)
    _fire(s, clock, T0 + 60.5)
    assert not RedisCronJob.fetch("f", connection).enabled
    assert "on_disable hook failed for cron job f" in caplog.text
    s.register_death()


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]], threading.Event]]:
    got: list[dict[str, Any]] = []
    arrived = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()
            arrived.set()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", got, arrived
    server.shutdown()


def test_a_webhook_is_posted_the_event(
    connection: redis.Redis, receiver: tuple[str, list[dict[str, Any]], threading.Event]
) -> None:
    url, got, arrived = receiver
    s, clock = _failing(connection, url, limit=1)
    _fire(s, clock, T0 + 0.5)
    _work(connection)
    _fire(s, clock, T0 + 60.5)
    assert arrived.wait(5)
    assert got[0]["event"] == "disabled" and got[0]["id"] == "f" and got[0]["max_consecutive_failures"] == 1
    s.register_death()


def test_a_bad_hook_is_refused(connection: redis.Redis) -> None:
    with pytest.raises(ValueError, match="on_disable must be a callable or an http"):
        RedisCronScheduler(connection, on_disable="ftp://example.com")
    with pytest.raises(ValueError, match="on_disable must be"):
        RedisCronScheduler(connection, on_disable=42)  # type: ignore[arg-type]
