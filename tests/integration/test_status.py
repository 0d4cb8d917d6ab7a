"""rqrcron status: the leader, fires and lag, counts and totals, from one read."""

from __future__ import annotations

import json
import os
from typing import Any

import redis
from click.testing import CliRunner

from rediscron import RedisCronJob, RedisCronScheduler
from rediscron import keys as k
from rediscron.cli import main
from rediscron.status import read_status
from tests import jobs


def run(redis_url: str, *args: str) -> Any:
    return CliRunner().invoke(main, ["-u", redis_url, *args], catch_exceptions=False)


def test_status_of_a_running_registry(connection: redis.Redis, redis_url: str) -> None:
    s = RedisCronScheduler(connection, name="leader-1", logging_level="WARNING")
    for i in range(3):
        s.register(jobs.noop, "q", id=f"i{i}", interval=60)
    s.register(jobs.noop, "q", id="later", cron="0 0 1 1 *")
    s.register(jobs.noop, "q", id="off", interval=60, enabled=False)
    connection.hset(k.job("broken"), mapping={"id": "broken", "func_name": "x"})
    connection.sadd(k.ids(), "broken")
    connection.zadd(k.schedule(), {"broken": 0})
    s.register_birth()
    s.enqueue_jobs()  # fires three, quarantines the broken one

    report = read_status(connection)
    assert (report.leader, report.pid, report.fencing_epoch) == ("leader-1", os.getpid(), 1)
    assert (report.registered, report.scheduled, report.quarantined) == (6, 4, 1)
    # The leader has been up for under a second: the rate is over that, not over five minutes.
    assert report.fired_total == 3 and report.window == 1.0 and report.fires_per_minute == 180
    # Slots are whole seconds: a job registered at x.999 and fired at (x+1).002 is 1.003 s late.
    assert report.lag_p99 is not None and 0 <= report.lag_p99 < 2
    assert report.next_due_in is not None and 0 < report.next_due_in <= 60

    result = run(redis_url, "status")
    assert result.exit_code == 0, result.output
    assert "leader     leader-1 on " in result.output and "3 fired, 0 slots missed" in result.output
    assert json.loads(run(redis_url, "status", "--json").output)["scheduled"] == 4

    s.register_death()
    result = run(redis_url, "status")
    assert result.exit_code == 1 and "no scheduler is running" in result.output


def test_status_of_an_empty_redis(connection: redis.Redis, redis_url: str) -> None:
    result = run(redis_url, "status", "--json")
    data = json.loads(result.output)
    assert (data["leader"], data["registered"], data["fires_per_minute"], data["lag_p50"]) == (None, 0, 0.0, None)


def test_a_slot_overdue_longer_than_allowed_is_a_problem(connection: redis.Redis, redis_url: str) -> None:
    leader = RedisCronScheduler(connection, name="leader-2", logging_level="WARNING")
    leader.register(jobs.noop, "q", id="late", interval=60)
    leader.register_birth()  # holds the lock, but fires nothing
    now = read_status(connection).now
    connection.zadd(k.schedule(), {"late": now - 200})
    report = read_status(connection, max_overdue=60)
    assert 199 < report.oldest_overdue < 260
    assert any("due for 3.3 min" in problem for problem in report.problems), report.problems
    result = run(redis_url, "status")
    assert result.exit_code == 1 and "problem" in result.output and "no scheduler is firing" in result.output
    assert run(redis_url, "status", "--max-overdue", "600").exit_code == 0
    leader.register_death()


def test_a_dead_or_stale_leader_is_a_problem(connection: redis.Redis, redis_url: str) -> None:
    import subprocess
    import sys

    leader = RedisCronScheduler(connection, name="leader-3", lock_ttl=30, logging_level="WARNING")
    leader.register(jobs.noop, "q", id="a", interval=60)
    leader.register_birth()
    assert read_status(connection).problems == []
    # The leader's heartbeat stops: older than two of its beats (every lock_ttl / 3 seconds).
    connection.zadd("rq:cron_schedulers", {"leader-3": read_status(connection).now - 25})
    report = read_status(connection)
    assert any("last heartbeat was" in problem for problem in report.problems), report.problems
    # The leader ran on this host and its process is gone.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    connection.hset(leader.key, "pid", dead.stdout.strip())
    report = read_status(connection)
    assert report.leader_alive is False
    assert any("process (pid" in problem and "is gone" in problem for problem in report.problems)
    result = run(redis_url, "status")
    assert result.exit_code == 1 and "is gone" in result.output
    leader.register_death()


def test_a_registry_that_came_back_empty_is_a_problem(connection: redis.Redis, redis_url: str) -> None:
    leader = RedisCronScheduler(connection, name="leader-4", logging_level="CRITICAL")
    for i in range(3):
        leader.register(jobs.noop, "q", id=f"j{i}", interval=60)
    leader.register_birth()
    leader.heartbeat()
    connection.flushall()  # Redis restarted without its data
    leader.heartbeat()  # finds the lock gone, takes it again, and sees the registry empty
    assert leader.registry_lost == 3
    report = read_status(connection)
    assert report.registry_lost == 3
    assert any("registry is empty, and had 3" in problem for problem in report.problems)
    assert run(redis_url, "status").exit_code == 1
    leader.register(jobs.noop, "q", id="j0", interval=60)
    leader.heartbeat()
    assert leader.registry_lost is None and read_status(connection).problems == []
    leader.register_death()


def test_consecutive_failures_are_counted_when_the_next_run_is_enqueued(
    connection: redis.Redis, redis_url: str
) -> None:
    from rq import Queue, SimpleWorker

    now = [1_900_000_800.25]
    s = RedisCronScheduler(connection, name="f", clock=lambda: now[0], logging_level="CRITICAL")
    s.register(jobs.fail, "q", id="flaky", interval=60)
    s.register(jobs.noop, "q", id="fine", interval=60)
    s.register_birth()
    worker = SimpleWorker([Queue("q", connection=connection)], connection=connection)
    for run_number in range(1, 4):
        s.enqueue_jobs()
        worker.work(burst=True)
        now[0] += 60
        if run_number == 1:
            assert read_status(connection).failing == 0  # counted when the next run is enqueued
    s.enqueue_jobs()
    report = read_status(connection)
    assert (report.failing, report.most_failing) == (1, [("flaky", 3)])
    out = run(redis_url, "status").output
    assert "failing    1 job(s) whose latest runs failed: flaky (3 in a row)" in out
    row = next(line for line in run(redis_url, "info").output.splitlines() if line.startswith("flaky"))
    assert row.endswith("3 failures in a row")
    data = json.loads(run(redis_url, "info", "--json").output)
    assert {r["id"]: r["consecutive_failures"] for r in data["jobs"]} == {"fine": 0, "flaky": 3}
    # A run that succeeds resets it; deleting the job forgets it. (Each edit reaches the runs enqueued after it.)
    s.register(jobs.noop, "q", id="flaky", interval=60)
    for _ in range(2):
        worker.work(burst=True)
        now[0] += 60
        s.enqueue_jobs()
    assert read_status(connection).failing == 0
    s.register(jobs.fail, "q", id="flaky", interval=60)
    for _ in range(2):
        worker.work(burst=True)
        now[0] += 60
        s.enqueue_jobs()
    assert read_status(connection).most_failing == [("flaky", 1)]
    RedisCronJob.fetch("flaky", connection).delete()
    assert read_status(connection).failing == 0
    s.register_death()


def test_rates_cover_the_current_leader_only(connection: redis.Redis) -> None:
    import time

    first = RedisCronScheduler(connection, name="first", logging_level="WARNING")
    for i in range(10):
        first.register(jobs.noop, "q", id=f"j{i}", interval=3600)
    first.register_birth()
    assert len(first.enqueue_jobs()) == 10
    first.register_death()
    time.sleep(1.1)
    second = RedisCronScheduler(connection, name="second", logging_level="WARNING")
    second.register_birth()
    report = read_status(connection)
    # The ten fires were the first leader's: the second, up for a second, has fired nothing.
    assert report.leader == "second" and report.fires_per_minute == 0 and report.lag_p50 is None
    assert report.fired_total == 10
    second.register_death()
