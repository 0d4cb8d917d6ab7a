"""The kill switch: `Registry.pause()` stops every fire registry-wide, at once and atomically (the fire
script checks it); `resume()` lets each job's catch-up policy decide what runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from click.testing import CliRunner

from rediscron import RedisCronScheduler
from rediscron import keys as k
from rediscron.cli import main
from rediscron.job import rq_job_id
from rediscron.metrics import render
from rediscron.registry import Registry
from rediscron.status import read_status, render_status
from rediscron.view import render_info, snapshot
from tests import jobs
from tests.integration.test_policies import Clock, queued

T0 = 1_900_000_800


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + 0.5)


@pytest.fixture
def scheduler(connection: redis.Redis, clock: Clock) -> Iterator[RedisCronScheduler]:
    s = RedisCronScheduler(connection, name="p", clock=clock, lock_ttl=30, logging_level="WARNING", batch_size=2)
    s.register_birth()
    yield s
    s.register_death()


def drain(scheduler: RedisCronScheduler) -> float:
    """Passes until one says to wait (batches of 2: one pass fires one batch)."""
    for _ in range(20):
        wait = scheduler.run_once()
        if wait > 0.05:
            return wait
    raise AssertionError("the loop kept asking for another pass")


def test_a_pause_stops_every_fire_and_a_resume_catches_up_by_policy(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    registry = Registry(connection, clock=clock)
    registry.register(jobs.noop, "q", id="coalesce", interval=60)
    registry.register(jobs.noop, "q", id="all", interval=60, catchup="all")
    for i in range(3):  # more due than one batch: the loop must not spin on them
        registry.register(jobs.noop, "q", id=f"x{i}", interval=60, catchup="skip")
    drain(scheduler)
    first = set(queued(connection))
    assert len(first) == 5
    registry.pause(reason="deploying", actor="ops@test")
    assert registry.paused() == {"at": clock.now, "by": "ops@test", "reason": "deploying"}
    clock.now = T0 + 180.5  # three slots of each job come and go while paused
    wait = scheduler.run_once()
    assert set(queued(connection)) == first and wait > 0.5  # nothing fired, and it sleeps (no spin)
    assert scheduler.enqueue_jobs() == []  # rq's loop too (and it returns)
    assert registry.resume() is True and registry.paused() is None
    drain(scheduler)
    new = set(queued(connection)) - first
    assert rq_job_id("coalesce", T0 + 180) in new  # coalesced: the newest missed slot, once
    assert {rq_job_id("all", T0 + s) for s in (60, 120, 180)} <= new  # catchup="all": each
    assert not any(rq_job_id(f"x{i}", T0 + 120) in new for i in range(3))  # skip: none of the missed
    assert registry.resume() is False


def test_runs_built_ahead_do_not_fire_while_paused(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    scheduler.lookahead.enabled = True
    registry = Registry(connection, clock=clock)
    registry.register(jobs.noop, "q", id="s", cron="* * * * * *")
    scheduler.run_once()
    assert "s" in scheduler.lookahead.runs  # built for T0 + 1
    registry.pause()
    clock.now = T0 + 1.002
    scheduler.run_once()
    assert queued(connection) == []


def test_info_status_metrics_and_the_cli_show_the_pause(
    connection: redis.Redis, redis_url: str, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    runner = CliRunner()
    done = runner.invoke(main, ["-u", redis_url, "pause", "--reason", "db migration", "--by", "ana"])
    assert done.exit_code == 0 and "Paused" in done.output
    assert connection.exists(k.paused())
    status = read_status(connection, max_overdue=0)
    assert status.paused is not None and "db migration" in render_status(status)
    assert not any("no scheduler is firing" in problem for problem in status.problems)
    plain = "".join(str(part) for part in render_info(snapshot(connection), by_queue=False).renderables)
    assert "PAUSED" in plain and "ana" in plain
    assert "rediscron_paused 1" in render(scheduler)
    done = runner.invoke(main, ["-u", redis_url, "resume"])
    assert done.exit_code == 0 and "Resumed" in done.output and "rediscron_paused 0" in render(scheduler)
