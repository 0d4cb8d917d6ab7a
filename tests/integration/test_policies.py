"""Scheduling options against a real Redis, with an injected clock: time zones, catch-up, misfire grace,
overlap, jitter, windows and run limits, rq job options, history figures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import redis
from rq import Queue, Retry, SimpleWorker
from rq.job import Job
from rq.serializers import JSONSerializer

from rediscron import InvalidJobError, RedisCronJob, RedisCronScheduler
from rediscron import keys as k
from rediscron.catchup import CATCHUP_LIMIT
from rediscron.job import rq_job_id
from rediscron.view import snapshot
from tests import jobs
from tests.custom_rq import AuditJob, AuditQueue

T0 = 1_900_000_800  # a whole hour (UTC)


class Clock:
    def __init__(self, now: float = T0 + 0.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def scheduler(connection: redis.Redis, clock: Clock) -> Iterator[RedisCronScheduler]:
    s = RedisCronScheduler(connection, name="p", clock=clock, lock_ttl=30, logging_level="WARNING")
    s.register_birth()
    yield s
    s.register_death()


def queued(connection: redis.Redis, queue: str = "q") -> list[str]:
    return [x.decode() for x in connection.lrange(f"rq:queue:{queue}", 0, -1)]


def slots_run(connection: redis.Redis, job_id: str, queue: str = "q") -> list[int]:
    prefix = rq_job_id(job_id, 0).rsplit("-", 1)[0]
    return sorted(
        int(x.rsplit("-", 1)[1])
        for x in queued(connection, queue)
        if x.startswith(prefix) and x.rsplit("-", 1)[1].isdigit()
    )


def drain(connection: redis.Redis, queue: str = "q") -> None:
    SimpleWorker([Queue(queue, connection=connection)], connection=connection).work(burst=True)


class TestTimezone:
    def test_cron_read_in_the_zone_and_stored(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock
    ) -> None:
        clock.now = datetime(2030, 6, 1, tzinfo=timezone.utc).timestamp()
        job = scheduler.register(jobs.noop, "q", id="tz", cron="0 9 * * *", timezone="Europe/Berlin")
        assert job.next_enqueue_time == datetime(2030, 6, 1, 7, tzinfo=timezone.utc)
        assert connection.hget(k.job("tz"), "timezone") == b"Europe/Berlin"
        assert RedisCronJob.fetch("tz", connection).timezone == "Europe/Berlin"
        # Changing the zone moves the next run; going back to UTC removes the field.
        job = scheduler.register(jobs.noop, "q", id="tz", cron="0 9 * * *", timezone="America/New_York")
        assert job.next_enqueue_time == datetime(2030, 6, 1, 13, tzinfo=timezone.utc)
        scheduler.register(jobs.noop, "q", id="tz", cron="0 9 * * *")
        assert connection.hget(k.job("tz"), "timezone") is None

    def test_fires_at_the_zones_time(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock
    ) -> None:
        clock.now = datetime(2030, 1, 1, tzinfo=timezone.utc).timestamp()
        scheduler.register(jobs.noop, "q", id="tokyo", cron="30 8 * * *", timezone="Asia/Tokyo")
        clock.now = datetime(2030, 1, 1, 23, 29, tzinfo=timezone.utc).timestamp()
        assert scheduler.enqueue_jobs() == []
        clock.now += 60
        scheduler.enqueue_jobs()
        assert slots_run(connection, "tokyo") == [int(datetime(2030, 1, 1, 23, 30, tzinfo=timezone.utc).timestamp())]

    def test_bad_zone_is_refused_and_nothing_written(
        self, scheduler: RedisCronScheduler, connection: redis.Redis
    ) -> None:
        with pytest.raises(InvalidJobError) as info:
            scheduler.register(jobs.noop, "q", id="bad", cron="0 9 * * *", timezone="Europe/Atlantis")
        assert (info.value.job_id, info.value.field) == ("bad", "timezone")
        assert not connection.exists(k.job("bad"))

    def test_seconds_field(self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock) -> None:
        scheduler.register(jobs.noop, "q", id="sec", cron="* * * * * */10")
        for _ in range(3):
            clock.now += 10
            scheduler.enqueue_jobs()
        assert slots_run(connection, "sec") == [T0 + 10, T0 + 20, T0 + 30]


class TestCatchup:
    def down_for_an_hour(self, scheduler: RedisCronScheduler, clock: Clock, **options: object) -> RedisCronJob:
        scheduler.register(jobs.noop, "q", id="m", cron="* * * * *", **options)  # type: ignore[arg-type]
        clock.now += 3630  # slots T0+60 .. T0+3600 come due while nothing runs; the newest is 30 s late
        scheduler.enqueue_jobs()
        return RedisCronJob.fetch("m", scheduler.connection)

    def test_coalesce_runs_once_for_the_newest_slot(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock
    ) -> None:
        job = self.down_for_an_hour(scheduler, clock)
        assert slots_run(connection, "m") == [T0 + 3600]
        assert job.missed_count == 59
        assert job.drop_log[-1]["reason"] == "coalesced" and job.drop_log[-1]["slots"] == 59
        assert job.next_enqueue_time == datetime.fromtimestamp(T0 + 3660, timezone.utc)

    def test_skip_runs_nothing_late_and_waits(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock
    ) -> None:
        job = self.down_for_an_hour(scheduler, clock, catchup="skip")
        assert queued(connection) == []
        assert job.missed_count == 60 and job.drop_log[-1]["reason"] == "skipped"
        clock.now = T0 + 3660.5  # the next slot, on time, runs
        scheduler.enqueue_jobs()
        assert slots_run(connection, "m") == [T0 + 3660]

    def test_all_runs_every_missed_slot_in_order(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock
    ) -> None:
        scheduler.register(jobs.noop, "q", id="m", cron="* * * * *", catchup="all")
        clock.now += 300
        scheduler.enqueue_jobs()
        assert slots_run(connection, "m") == [T0 + 60 * i for i in range(1, 6)]
        assert RedisCronJob.fetch("m", connection).missed_count == 0

    def test_all_over_a_long_outage_runs_the_newest_hundred(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock
    ) -> None:
        scheduler.register(jobs.noop, "q", id="i", interval=60, catchup="all")  # due at T0
        clock.now += 86400  # 1441 slots due
        scheduler.enqueue_jobs()
        ran = slots_run(connection, "i")
        assert len(ran) == CATCHUP_LIMIT
        assert ran[-1] == T0 + 86400 and ran[0] == T0 + 86400 - 60 * (CATCHUP_LIMIT - 1)
        job = RedisCronJob.fetch("i", connection)
        assert job.missed_count == 1441 - CATCHUP_LIMIT
        assert "catch-up limit" in job.drop_log[-1]["reason"]

    def test_grace_time_drops_a_late_slot(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock
    ) -> None:
        job = self.down_for_an_hour(scheduler, clock, misfire_grace_time=30)
        assert queued(connection) == []
        assert job.missed_count == 60 and job.drop_log[-1]["reason"] == "misfired"

    def test_grace_time_keeps_a_slot_late_within_it(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock
    ) -> None:
        scheduler.register(jobs.noop, "q", id="g", cron="* * * * *", misfire_grace_time=30)
        clock.now = T0 + 60 + 29
        scheduler.enqueue_jobs()
        assert slots_run(connection, "g") == [T0 + 60]

    def test_all_with_grace_runs_only_slots_within_it(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock
    ) -> None:
        self.down_for_an_hour(scheduler, clock, catchup="all", misfire_grace_time=150)
        assert slots_run(connection, "m") == [T0 + 3540, T0 + 3600]
        assert RedisCronJob.fetch("m", connection).missed_count == 58

    def test_counts_show_in_history(self, scheduler: RedisCronScheduler, clock: Clock) -> None:
        job = self.down_for_an_hour(scheduler, clock)
        stats = job.get_stats()
        assert (stats.missed, stats.runs, stats.last_status) == (59, 1, "queued")


class TestOverlap:
    def test_skip_while_previous_run_is_queued(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock
    ) -> None:
        scheduler.register(jobs.noop, "q", id="o", interval=60, overlap="skip")
        scheduler.enqueue_jobs()  # T0 runs, and stays queued: no worker
        clock.now += 60
        scheduler.enqueue_jobs()
        assert slots_run(connection, "o") == [T0]
        job = RedisCronJob.fetch("o", connection)
        assert job.overlap_count == 1 and job.drop_log[-1]["reason"].startswith("overlap")
        assert job.next_enqueue_time == datetime.fromtimestamp(T0 + 120, timezone.utc)
        drain(connection)  # the previous run finishes
        clock.now += 60
        scheduler.enqueue_jobs()
        assert slots_run(connection, "o") == [T0 + 120]

    def test_allow_is_the_default(self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock) -> None:
        scheduler.register(jobs.noop, "q", id="o", interval=60)
        scheduler.enqueue_jobs()
        clock.now += 60
        scheduler.enqueue_jobs()
        assert slots_run(connection, "o") == [T0, T0 + 60]

    def test_a_triggered_run_in_progress_also_counts(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock
    ) -> None:
        scheduler.register(jobs.noop, "q", id="o", cron="* * * * *", overlap="skip")
        scheduler.trigger("o")
        clock.now += 60
        scheduler.enqueue_jobs()
        assert slots_run(connection, "o") == []
        assert RedisCronJob.fetch("o", connection).overlap_count == 1


class TestJitter:
    def test_delay_is_per_slot_deterministic_and_keeps_the_slot(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock
    ) -> None:
        scheduler.register(jobs.noop, "q", id="j", cron="* * * * *", jitter=50)
        score = connection.zscore(k.schedule(), "j")
        assert T0 + 60 <= score <= T0 + 110
        again = RedisCronJob.fetch("j", connection)
        assert again.score(T0 + 60) == score
        clock.now = score - 0.5
        assert scheduler.enqueue_jobs() == []
        clock.now = score
        scheduler.enqueue_jobs()
        assert slots_run(connection, "j") == [T0 + 60]  # the RQ job id names the slot, not the delay

    def test_delays_spread(self) -> None:
        job = RedisCronJob(id="x", queue_name="q", func=jobs.noop, cron="0 * * * *", jitter=600)
        delays = {job.score(T0 + 3600 * i) - (T0 + 3600 * i) for i in range(200)}
        assert len(delays) > 100 and min(delays) >= 0 and max(delays) <= 600

    def test_jitter_must_be_shorter_than_the_interval(self) -> None:
        with pytest.raises(InvalidJobError, match="jitter"):
            RedisCronJob(id="x", queue_name="q", func=jobs.noop, interval=60, jitter=60)


class TestWindowAndLimit:
    def test_start_time_delays_the_first_run(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock
    ) -> None:
        start = datetime.fromtimestamp(T0 + 1000, timezone.utc)
        job = scheduler.register(jobs.noop, "q", id="s", interval=300, start_time=start)
        assert job.next_enqueue_time == start
        assert job.state() == f"enabled, starts at {start:%Y-%m-%dT%H:%M:%S.%f}Z"
        clock.now = T0 + 999
        assert scheduler.enqueue_jobs() == []
        clock.now = T0 + 1000
        scheduler.enqueue_jobs()
        assert slots_run(connection, "s") == [T0 + 1000]

    def test_end_time_stops_the_job(self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock) -> None:
        end = datetime.fromtimestamp(T0 + 150, timezone.utc)
        scheduler.register(jobs.noop, "q", id="e", interval=60, end_time=end)
        for _ in range(5):
            scheduler.enqueue_jobs()
            clock.now += 60
        assert slots_run(connection, "e") == [T0, T0 + 60, T0 + 120]
        assert connection.zscore(k.schedule(), "e") is None
        assert RedisCronJob.fetch("e", connection).state().startswith("ended: end_time")

    def test_max_runs(self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock) -> None:
        scheduler.register(jobs.noop, "q", id="r", interval=60, max_runs=3)
        for _ in range(5):
            scheduler.enqueue_jobs()
            clock.now += 60
        assert slots_run(connection, "r") == [T0, T0 + 60, T0 + 120]
        job = RedisCronJob.fetch("r", connection)
        assert (job.run_count, job.state()) == (3, "ended: ran max_runs=3 times")
        assert [row.state for row in snapshot(connection).rows] == ["ended"]
        assert snapshot(connection).rows[0].as_json()["enabled"] is True
        # Raising the limit resumes it, from now.
        scheduler.register(jobs.noop, "q", id="r", interval=60, max_runs=4)
        assert connection.zscore(k.schedule(), "r") is not None
        scheduler.enqueue_jobs()
        assert len(slots_run(connection, "r")) == 4

    def test_window_is_checked(self) -> None:
        start = datetime(2030, 1, 1, tzinfo=timezone.utc)
        with pytest.raises(InvalidJobError, match="end_time"):
            RedisCronJob(id="x", queue_name="q", func=jobs.noop, interval=60, start_time=start, end_time=start)
        with pytest.raises(InvalidJobError, match=r"start_time.*no time zone"):
            RedisCronJob(id="x", queue_name="q", func=jobs.noop, interval=60, start_time=datetime(2030, 1, 1))
        with pytest.raises(InvalidJobError, match="max_runs"):
            RedisCronJob(id="x", queue_name="q", func=jobs.noop, interval=60, max_runs=0)


class TestRqOptions:
    def test_options_reach_the_rq_job(self, scheduler: RedisCronScheduler, connection: redis.Redis) -> None:
        scheduler.register(
            jobs.noop,
            "q",
            id="opt",
            interval=60,
            description="nightly noop",
            retry=Retry(max=3, interval=[10, 60]),
            on_success=jobs.on_success,
            on_failure="tests.jobs.noop",
            at_front=True,
        )
        connection.rpush("rq:queue:q", "someone-else")
        scheduler.enqueue_jobs()
        first = queued(connection)[0]
        assert first == rq_job_id("opt", T0)  # at_front
        job = Job.fetch(first, connection=connection)
        assert job.description == "nightly noop"
        assert (job.retries_left, job.retry_intervals) == (3, [10, 60])
        assert (job.success_callback, job.failure_callback) == (jobs.on_success, jobs.noop)

    def test_options_survive_the_round_trip(self, scheduler: RedisCronScheduler, connection: redis.Redis) -> None:
        kwargs = dict(
            description="d",
            retry=2,
            at_front=True,
            on_stopped="tests.jobs.noop",
            queue_class=AuditQueue,
            job_class=AuditJob,
            serializer=JSONSerializer,
            timezone="Europe/Paris",
            misfire_grace_time=30,
            catchup="all",
            overlap="skip",
            jitter=5,
            max_runs=10,
            start_time=datetime(2030, 1, 1, tzinfo=timezone.utc),
            end_time=datetime(2031, 1, 1, tzinfo=timezone(timedelta(hours=2))),
            labels={"team": "ops", "env": "prod"},
            max_consecutive_failures=4,
        )
        scheduler.register(jobs.noop, "q", id="rt", cron="0 * * * *", **kwargs)  # type: ignore[arg-type]
        job = RedisCronJob.fetch("rt", connection)
        assert job.options() == {
            **kwargs,
            "retry": {"max": 2, "interval": [0]},
            "on_success": None,
            "on_failure": None,
            "queue_class": "tests.custom_rq.AuditQueue",
            "job_class": "tests.custom_rq.AuditJob",
            "serializer": "rq.serializers.JSONSerializer",
            "webhooks": None,
            "end_time": datetime(2030, 12, 31, 22, tzinfo=timezone.utc),
            "labels": {"env": "prod", "team": "ops"},  # sorted by name
        }

    def test_queue_class_job_class_and_serializer(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock
    ) -> None:
        job = scheduler.register(
            jobs.record,
            "q",
            id="cls",
            interval=60,
            args=(1,),
            queue_class=AuditQueue,
            job_class="tests.custom_rq.AuditJob",
            serializer=JSONSerializer,
        )
        # The process that registered the job uses the classes it named.
        queue = scheduler.get_queue_for_job(job)
        assert isinstance(queue, AuditQueue) and queue.job_class is AuditJob
        assert scheduler.allow_import.allows("tests.custom_rq.AuditJob")
        # Another scheduler imports what it reads from Redis only through its allowlist (rq's by default).
        other = RedisCronScheduler(connection, name="other", clock=clock, logging_level="WARNING")
        scheduler.register_death()
        other.register_birth()
        assert other.enqueue_jobs() == []
        error = other.get_invalid_jobs()["cls"]
        assert "queue_class tests.custom_rq.AuditQueue is outside" in error and "--allow-import" in error
        other.register_death()
        scheduler.register_birth()
        assert scheduler.retry_quarantined() == ["cls"]
        clock.now += 60
        scheduler.enqueue_jobs()
        rq_job = AuditJob.fetch(queued(connection)[0], connection=connection, serializer=JSONSerializer)
        assert rq_job.args == [1]
        # The stored payload is JSON, not pickle.
        assert connection.hget(rq_job.key, "data").startswith(b"x")  # zlib-compressed JSON, as rq stores it

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            ("retry", 0),
            ("retry", {"max": 2, "interval": -1}),
            ("retry", "3"),
            ("at_front", 1),
            ("on_success", "tests.jobs.nothing_here"),
            ("on_failure", lambda: None),
            ("queue_class", int),
            ("job_class", "tests.custom_rq.AuditQueue"),
            ("serializer", "json.dumps"),
            ("description", 5),
            ("catchup", "later"),
            ("overlap", "queue"),
            ("misfire_grace_time", 0),
            ("jitter", -1),
        ],
    )
    def test_bad_options_name_the_field(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, option: str, value: object
    ) -> None:
        with pytest.raises(InvalidJobError) as info:
            scheduler.register(jobs.noop, "q", id="bad", interval=60, **{option: value})  # type: ignore[arg-type]
        assert (info.value.job_id, info.value.field) == ("bad", option)
        assert not connection.exists(k.job("bad"))

    def test_callbacks_go_to_the_worker_by_path_never_imported_here(
        self, scheduler: RedisCronScheduler, connection: redis.Redis
    ) -> None:
        scheduler.register(jobs.noop, "q", id="good", interval=60)
        scheduler.register(jobs.noop, "q", id="cb", interval=60, on_success="tests.jobs.on_success")
        connection.hset(k.job("cb"), "on_success", "tests.not_a_module_here.callback")
        scheduler.enqueue_jobs()
        assert slots_run(connection, "good") == [T0]
        assert slots_run(connection, "cb") == [T0]  # the worker is the one to find it missing
        assert (
            connection.hget(f"rq:job:{rq_job_id('cb', T0)}", "success_callback_name")
            == b"tests.not_a_module_here.callback"
        )
        assert "cb" not in scheduler.get_invalid_jobs()


class TestHistory:
    def test_last_status_and_consecutive_failures(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock
    ) -> None:
        scheduler.register(jobs.noop, "q", id="h", interval=60)
        scheduler.enqueue_jobs()
        drain(connection)
        scheduler.register(jobs.fail, "q", id="h", interval=60)
        for _ in range(3):
            clock.now += 60
            scheduler.enqueue_jobs()
            drain(connection)
        stats = RedisCronJob.fetch("h", connection).get_stats()
        assert (stats.last_status, stats.consecutive_failures, stats.runs) == ("failed", 3, 4)
        assert stats.last_fire_time == datetime.fromtimestamp(T0 + 180.25, timezone.utc)
