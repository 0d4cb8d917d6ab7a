"""Backfill: the slots of a past range enqueued by hand, each at most once, the schedule untouched."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from rq.job import Job

from rediscron import RedisCronJob, RedisCronScheduler
from rediscron import keys as k
from rediscron.backfill import ALREADY_ENQUEUED, ENQUEUED, MAY_HAVE_RUN, WOULD_ENQUEUE
from rediscron.catchup import Drop
from rediscron.cli import main
from rediscron.errors import InvalidJobError
from rediscron.job import rq_job_id
from tests import jobs

DAY = 86400


def _now(connection: redis.Redis) -> datetime:
    seconds, _micro = connection.time()
    return datetime.fromtimestamp(int(seconds), timezone.utc)


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture
def daily(connection: redis.Redis) -> RedisCronJob:
    RedisCronScheduler(connection, logging_level="WARNING").register(
        jobs.noop, "reports", id="report:daily", cron="0 0 * * *", args=("daily",)
    )
    return RedisCronJob.fetch("report:daily", connection)


def _timing(job: RedisCronJob) -> tuple[Any, ...]:
    return (job.next_enqueue_time, job.latest_enqueue_time, job.run_count, job.revision)


def test_last_weeks_slots_are_enqueued_once_and_the_schedule_is_untouched(
    connection: redis.Redis, daily: RedisCronJob
) -> None:
    today = _midnight(_now(connection))
    before = _timing(RedisCronJob.fetch("report:daily", connection))
    done = daily.backfill(today - timedelta(days=7), today - timedelta(seconds=1))
    slots = [int((today - timedelta(days=d)).timestamp()) for d in range(7, 0, -1)]
    assert [int(s.slot.timestamp()) for s in done.slots] == slots
    assert [s.outcome for s in done.slots] == [ENQUEUED] * 7
    assert [s.rq_job_id for s in done.slots] == [rq_job_id("report:daily", slot) for slot in slots]
    queued = [x.decode() for x in connection.lrange("rq:queue:reports", 0, -1)]
    assert queued == [rq_job_id("report:daily", slot) for slot in slots]
    run = Job.fetch(queued[0], connection=connection)
    assert run.args == ["daily"] and run.meta["rediscron_slot"] == slots[0] and run.meta["rediscron_backfill"]
    assert _timing(RedisCronJob.fetch("report:daily", connection)) == before  # the schedule is not moved
    assert {x.decode() for x in connection.zrange(k.history("report:daily"), 0, -1)} == set(queued)
    # Again: every slot has its run already; nothing more is queued.
    again = daily.backfill(today - timedelta(days=7), today - timedelta(seconds=1))
    assert [s.outcome for s in again.slots] == [ALREADY_ENQUEUED] * 7
    assert connection.llen("rq:queue:reports") == 7


def test_a_dry_run_enqueues_nothing(connection: redis.Redis, daily: RedisCronJob) -> None:
    today = _midnight(_now(connection))
    done = daily.backfill(today - timedelta(days=3), today - timedelta(seconds=1), dry_run=True)
    assert [s.outcome for s in done.slots] == [WOULD_ENQUEUE] * 3 and done.dry_run
    assert connection.llen("rq:queue:reports") == 0
    assert not connection.exists(k.history("report:daily"))


def test_slots_since_creation_are_taken_only_if_recorded_as_not_run_or_asked(
    connection: redis.Redis, daily: RedisCronJob
) -> None:
    today = _midnight(_now(connection))
    created = today - timedelta(days=2, hours=12)
    missed = int((today - timedelta(days=1)).timestamp())
    connection.hset(
        k.job("report:daily"),
        mapping={
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            # As the scheduler records a slot it did not run (catchup.Drop.record), and a junk entry.
            "drop_log": json.dumps([Drop(missed, missed, 1, True, "missed").record(time.time()), {"from": 1}]),
        },
    )
    job = RedisCronJob.fetch("report:daily", connection)
    start, end = today - timedelta(days=4), today - timedelta(seconds=1)
    done = job.backfill(start, end)
    # Two slots before it was created; then one it may have run, then one its drop log says it did not.
    assert [s.outcome for s in done.slots] == [ENQUEUED, ENQUEUED, MAY_HAVE_RUN, ENQUEUED]
    assert done.slots[3].rq_job_id == rq_job_id("report:daily", missed)
    everything = job.backfill(start, end, scheduled=True)
    assert [s.outcome for s in everything.slots] == [ALREADY_ENQUEUED, ALREADY_ENQUEUED, ENQUEUED, ALREADY_ENQUEUED]


def test_an_interval_jobs_slots_keep_its_rhythm(connection: redis.Redis) -> None:
    RedisCronScheduler(connection, logging_level="WARNING").register(jobs.noop, "q", id="every:7h", interval=7 * 3600)
    job = RedisCronJob.fetch("every:7h", connection)
    assert job.next_enqueue_time is not None
    anchor = int(job.next_enqueue_time.timestamp())
    done = job.backfill(_now(connection) - timedelta(days=2), _now(connection) - timedelta(hours=1))
    assert done.slots and all((int(s.slot.timestamp()) - anchor) % (7 * 3600) == 0 for s in done.slots)
    assert len(done.slots) in (6, 7)


def test_bad_ranges_are_refused_naming_the_field(connection: redis.Redis, daily: RedisCronJob) -> None:
    now = _now(connection)
    with pytest.raises(InvalidJobError, match=r"'report:daily': to: .* is in the future"):
        daily.backfill(now - timedelta(days=1), now + timedelta(hours=1))
    with pytest.raises(InvalidJobError, match=r": to: .* is before from"):
        daily.backfill(now - timedelta(days=1), now - timedelta(days=2))
    with pytest.raises(InvalidJobError, match=r": from/to: the range holds more than 1,000 slots"):
        daily.backfill(now - timedelta(days=2000), now - timedelta(days=1))
    with pytest.raises(InvalidJobError, match=r": max_slots: must be"):
        daily.backfill(now - timedelta(days=2), now, max_slots=0)
    with pytest.raises(InvalidJobError, match=r": from: must be a datetime"):
        daily.backfill("yesterday", now)  # type: ignore[arg-type]
    assert len(daily.backfill(now - timedelta(days=1500), now - timedelta(days=1), max_slots=1500).slots) == 1499
    assert connection.llen("rq:queue:reports") == 1499


def test_the_command_line(redis_url: str, connection: redis.Redis, daily: RedisCronJob) -> None:
    runner = CliRunner()
    today = _midnight(_now(connection))
    start, end = (today - timedelta(days=2)).isoformat(), (today - timedelta(seconds=1)).isoformat()

    def rqrcron(*args: str) -> Any:
        return runner.invoke(main, ["-u", redis_url, *args], catch_exceptions=False)

    dry = rqrcron("backfill", "report:daily", "--from", start, "--to", end, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.output.count("would enqueue") == 3  # two slots and the total
    assert "report:daily: 2 slot(s) from" in dry.output and connection.llen("rq:queue:reports") == 0
    done = rqrcron("backfill", "report:daily", "--from", start, "--to", end, "--json")
    assert [s["outcome"] for s in json.loads(done.output)["slots"]] == [ENQUEUED, ENQUEUED]
    too_many = rqrcron("backfill", "report:daily", "--from", "2020-01-01", "--to", end)
    assert too_many.exit_code == 2 and "more than 1,000 slots" in too_many.output  # bad input: a usage error
    missing = rqrcron("backfill", "nope", "--from", start, "--to", end)
    assert missing.exit_code == 1 and "'nope' does not exist" in missing.output
    bad = rqrcron("backfill", "report:daily", "--from", "last week", "--to", end)
    assert bad.exit_code == 2 and "ISO 8601" in bad.output


def test_a_backfilled_slot_is_never_enqueued_again_even_once_its_run_expired(
    connection: redis.Redis, daily: RedisCronJob
) -> None:
    today = _midnight(_now(connection))
    start, end = today - timedelta(days=2), today - timedelta(seconds=1)
    first = daily.backfill(start, end)
    assert [s.outcome for s in first.slots] == [ENQUEUED, ENQUEUED]
    for s in first.slots:
        connection.delete(k.rq_job(s.rq_job_id))  # the runs finished and rq expired them
    assert [s.outcome for s in daily.backfill(start, end).slots] == [ALREADY_ENQUEUED] * 2
    assert [s.outcome for s in daily.backfill(start, end, dry_run=True).slots] == [ALREADY_ENQUEUED] * 2
    assert connection.llen("rq:queue:reports") == 2
    daily.delete()
    assert not connection.exists(k.backfilled("report:daily"))  # deleted with the job


def test_hostile_records_and_keys_never_break_a_backfill(connection: redis.Redis, daily: RedisCronJob) -> None:
    today = _midnight(_now(connection))
    connection.set(k.history("report:daily"), "not a sorted set")  # bookkeeping only: the runs still go
    done = daily.backfill(today - timedelta(days=1), today - timedelta(seconds=1))
    assert [s.outcome for s in done.slots] == [ENQUEUED] and connection.llen("rq:queue:reports") == 1
    connection.hset(k.job("report:daily"), "drop_log", "[" * 100_000)  # deeper than any parser goes
    assert RedisCronJob.fetch("report:daily", connection).drop_log == []
    connection.hdel(k.job("report:daily"), "created_at")  # hand-written: any slot may have run
    job = RedisCronJob.fetch("report:daily", connection)
    assert [s.outcome for s in job.backfill(today - timedelta(days=3), today - timedelta(days=2, seconds=1)).slots] == [
        MAY_HAVE_RUN
    ]
    with pytest.raises(InvalidJobError, match=r": from: must be between the years 1970 and 9000"):
        job.backfill(datetime(1, 1, 1), datetime(1, 1, 3))


def test_an_ended_interval_job_keeps_the_rhythm_of_its_slots_not_of_its_fire_times(connection: redis.Redis) -> None:
    RedisCronScheduler(connection, logging_level="WARNING").register(jobs.noop, "q", id="ended", interval=3600)
    job = RedisCronJob.fetch("ended", connection)
    assert job.next_enqueue_time is not None
    slot = int(job.next_enqueue_time.timestamp()) - 7200
    # Ended: no next slot; its last run was enqueued 1.5 s after its slot, as a late fire is.
    connection.zadd(k.history("ended"), {rq_job_id("ended", slot): slot + 1.5})
    connection.hset(k.job("ended"), "latest_enqueue_time", "2000-01-01T00:00:01.500000Z")
    connection.hdel(k.job("ended"), "next_enqueue_time")
    ended = RedisCronJob.fetch("ended", connection)
    now = _now(connection)
    done = ended.backfill(now - timedelta(hours=5), now - timedelta(minutes=1), scheduled=True, dry_run=True)
    assert done.slots and all((int(s.slot.timestamp()) - slot) % 3600 == 0 for s in done.slots)
