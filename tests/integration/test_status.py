"""rqrcron status: the leader, fires and lag, counts and totals, from one read."""

from __future__ import annotations

import json
import os
from typing import Any

import redis
from click.testing import CliRunner

from rediscron import RedisCronScheduler
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
    assert report.lag_p99 is not None and 0 <= report.lag_p99 < 1
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
