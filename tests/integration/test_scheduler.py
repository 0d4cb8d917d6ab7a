"""RedisCronScheduler against a real Redis, with an injected clock: no sleeping to move time."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.cron import CronJob, CronScheduler
from rq.exceptions import StopRequested
from rq.job import Job

import rediscron
import rediscron.core
from rediscron import CorruptJobError, InvalidJobError, RedisCronJob, RedisCronScheduler, SchedulerLockedError
from rediscron import keys as k
from rediscron.job import rq_job_id
from tests import jobs

T0 = 1_900_000_800  # a whole hour (UTC); slots are whole seconds


class FakeClock:
    def __init__(self, now: float = T0 + 0.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def scheduler(connection: redis.Redis, clock: FakeClock) -> Iterator[RedisCronScheduler]:
    s = RedisCronScheduler(connection, name="primary", clock=clock, lock_ttl=30)
    yield s
    s.register_death()


def queued(connection: redis.Redis, queue: str = "metrics") -> list[str]:
    return [x.decode() for x in connection.lrange(f"rq:queue:{queue}", 0, -1)]


def test_public_names() -> None:
    assert rediscron.RedisCronJob is rediscron.core.RedisCronJob
    assert rediscron.RedisCronScheduler is rediscron.core.RedisCronScheduler
    assert issubclass(RedisCronScheduler, CronScheduler)
    assert issubclass(RedisCronJob, CronJob)


class TestRegister:
    def test_spec_usage(self, scheduler: RedisCronScheduler, connection: redis.Redis) -> None:
        job = scheduler.register(jobs.record, queue_name="metrics", id="metric:pm25", args=("pm25",), interval=300)
        assert isinstance(job, RedisCronJob)
        assert RedisCronJob.fetch("metric:pm25", connection).interval == 300

    def test_same_id_upserts(self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: FakeClock) -> None:
        first = scheduler.register(jobs.record, "metrics", id="m", interval=300)
        clock.advance(5)
        second = scheduler.register(jobs.record, "metrics", id="m", interval=600, args=(1,))
        assert second.created_at == first.created_at
        assert [j.id for j in scheduler.get_all_jobs()] == ["m"]
        assert connection.zcard(k.schedule()) == 1
        assert RedisCronJob.fetch("m", connection).interval == 600

    def test_keeps_enabled_state_unless_given(self, scheduler: RedisCronScheduler, connection: redis.Redis) -> None:
        scheduler.register(jobs.record, "metrics", id="m", interval=300, enabled=False)
        scheduler.register(jobs.record, "metrics", id="m", interval=300, args=(2,))
        assert RedisCronJob.fetch("m", connection).enabled is False
        assert scheduler.get_jobs() == []
        scheduler.register(jobs.record, "metrics", id="m", interval=300, enabled=True)
        assert [j.id for j in scheduler.get_jobs()] == ["m"]

    def test_args_only_edit_keeps_next_run(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: FakeClock
    ) -> None:
        scheduler.register(jobs.record, "metrics", id="c", cron="0 * * * *")
        before = connection.zscore(k.schedule(), "c")
        clock.advance(3600 * 5)
        scheduler.register(jobs.record, "metrics", id="c", cron="0 * * * *", kwargs={"x": 1})
        assert connection.zscore(k.schedule(), "c") == before
        scheduler.register(jobs.record, "metrics", id="c", cron="30 * * * *")
        assert connection.zscore(k.schedule(), "c") != before

    def test_validation_happens_before_writing(self, scheduler: RedisCronScheduler, connection: redis.Redis) -> None:
        for bad in (
            {"interval": 0},
            {"interval": None, "cron": "61 * * * *"},
            {"interval": 10, "cron": "* * * * *"},
            {"interval": 10, "args": (object(),)},
            {"interval": 10, "enabled": "yes"},
            {"interval": 10, "conflict": "merge"},
        ):
            with pytest.raises(InvalidJobError) as info:
                scheduler.register(jobs.record, "metrics", id="bad", **bad)
            assert "'bad'" in str(info.value)
        with pytest.raises(InvalidJobError, match="lambda"):
            scheduler.register(lambda: None, "metrics", id="bad", interval=10)
        assert connection.keys("rq:cron*") == []

    def test_kwargs_named_like_rq_options_reach_the_function(
        self, scheduler: RedisCronScheduler, connection: redis.Redis
    ) -> None:
        kwargs = {"meta": "m", "ttl": 1, "description": "d", "job_id": "j", "args": "a", "timeout": 3}
        scheduler.register(jobs.record, "metrics", id="kw", interval=60, args=("x",), kwargs=kwargs)
        scheduler.register_birth()
        scheduler.enqueue_jobs()
        job = Job.fetch(queued(connection)[0], connection=connection)
        assert job.args == ["x"]
        assert job.kwargs == kwargs
        assert job.perform() == {"args": ["x"], "kwargs": kwargs}

    def test_conflict_modes(self, scheduler: RedisCronScheduler, connection: redis.Redis) -> None:
        scheduler.register(jobs.record, "metrics", id="m", interval=300)
        kept = scheduler.register(jobs.record, "metrics", id="m", interval=600, conflict="ignore")
        assert kept.interval == 300
        with pytest.raises(InvalidJobError, match="exists"):
            scheduler.register(jobs.record, "metrics", id="m", interval=600, conflict="raise")
        assert RedisCronJob.fetch("m", connection).interval == 300


class TestListing:
    def test_get_jobs_prunes_stale_index_entries(self, scheduler: RedisCronScheduler, connection: redis.Redis) -> None:
        scheduler.register(jobs.noop, "metrics", id="a", interval=60)
        scheduler.register(jobs.noop, "metrics", id="b", interval=60)
        connection.delete(k.job("b"))  # the hash vanished behind our back
        assert [j.id for j in scheduler.get_jobs()] == ["a"]
        assert connection.zscore(k.schedule(), "b") is None
        assert not connection.sismember(k.ids(), "b")

    def test_get_all_jobs_includes_disabled(self, scheduler: RedisCronScheduler) -> None:
        scheduler.register(jobs.noop, "metrics", id="on", interval=60)
        scheduler.register(jobs.noop, "metrics", id="off", interval=60, enabled=False)
        assert [j.id for j in scheduler.get_all_jobs()] == ["off", "on"]
        assert [j.id for j in scheduler.get_jobs()] == ["on"]

    def test_corrupt_records_do_not_break_listing(self, scheduler: RedisCronScheduler, connection: redis.Redis) -> None:
        scheduler.register(jobs.noop, "metrics", id="good", interval=60)
        for job_id, mapping in corrupt_records().items():
            connection.hset(k.job(job_id), mapping=mapping)
            connection.sadd(k.ids(), job_id)
        assert [j.id for j in scheduler.get_all_jobs()] == ["good"]
        invalid = scheduler.get_invalid_jobs()
        assert set(invalid) == {"badcron", "badjson", "nofunc", "notdotted"}
        assert "not a dotted path" in invalid["notdotted"]


def corrupt_records() -> dict[str, dict[str, str]]:
    base = {
        "queue_name": "metrics",
        "func_name": "tests.jobs.noop",
        "interval": "1",
        "enabled": "1",
        "args": "[]",
        "kwargs": "{}",
    }
    return {
        "badcron": {**base, "interval": "", "cron": "99 99 * * *"},
        "badjson": {**base, "args": "[oops"},
        "notdotted": {**base, "func_name": "no_such_module"},
        "nofunc": {k_: v for k_, v in base.items() if k_ != "func_name"},
    }


class TestEnqueue:
    def test_nothing_without_the_lock(self, scheduler: RedisCronScheduler, connection: redis.Redis) -> None:
        scheduler.register(jobs.noop, "metrics", id="a", interval=60)
        assert scheduler.enqueue_jobs() == []
        assert queued(connection) == []

    def test_each_slot_once(self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: FakeClock) -> None:
        scheduler.register(jobs.noop, "metrics", id="a", interval=60)
        scheduler.register_birth()
        assert [j.id for j in scheduler.enqueue_jobs()] == ["a"]
        assert scheduler.enqueue_jobs() == []
        clock.advance(30)
        assert scheduler.enqueue_jobs() == []
        clock.advance(30)
        assert [j.id for j in scheduler.enqueue_jobs()] == ["a"]
        assert queued(connection) == [rq_job_id("a", T0), rq_job_id("a", T0 + 60)]
        job = Job.fetch(rq_job_id("a", T0 + 60), connection=connection)
        assert job.meta == {"rediscron_id": "a", "rediscron_slot": T0 + 60}
        stored = RedisCronJob.fetch("a", connection)
        assert stored.latest_enqueue_time and stored.latest_enqueue_time.timestamp() == pytest.approx(clock.now)
        assert stored.next_enqueue_time and stored.next_enqueue_time.timestamp() == T0 + 120

    def test_history_is_rqs_format_bounded_and_deleted_with_the_job(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: FakeClock
    ) -> None:
        from rediscron.history import HISTORY_LENGTH

        scheduler.register(jobs.noop, "metrics", id="h", interval=10)
        scheduler.register_birth()
        for _ in range(HISTORY_LENGTH + 5):
            scheduler.enqueue_jobs()
            clock.advance(10)
        job = RedisCronJob.fetch("h", connection)
        history = job.get_history()
        assert len(history) == HISTORY_LENGTH
        assert history[0].slot == T0 + 10 * (HISTORY_LENGTH + 4)
        assert history[0].rq_job_id == rq_job_id("h", T0 + 10 * (HISTORY_LENGTH + 4))
        assert {e.status for e in history} == {"queued"}
        Job.fetch(history[0].rq_job_id, connection=connection).delete()
        assert job.get_history(limit=1)[0].status == "expired"
        # rq's own history format: rq.cron.get_cron_job_ids (rq >= 2.10) reads the same sorted set.
        newest = connection.zrange("rq:cron_job:h:jobs", 0, 1, desc=True)
        assert [x.decode() for x in newest] == [e.rq_job_id for e in history[:2]]
        job.delete()
        assert not connection.exists(k.history("h"))

    def test_trigger_runs_now_without_moving_the_schedule(
        self, scheduler: RedisCronScheduler, connection: redis.Redis
    ) -> None:
        scheduler.register(jobs.noop, "metrics", id="t", cron="0 0 1 1 *")
        before = connection.zscore(k.schedule(), "t")
        rq_job = scheduler.trigger("t")
        assert queued(connection) == [rq_job.id]
        assert connection.zscore(k.schedule(), "t") == before
        assert RedisCronJob.fetch("t", connection).get_history()[0].rq_job_id == rq_job.id
        with pytest.raises(LookupError):
            scheduler.trigger("nope")

    def test_missed_slots_coalesce_into_one_late_run(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: FakeClock
    ) -> None:
        scheduler.register(jobs.noop, "metrics", id="c", cron="*/1 * * * *")
        scheduler.register_birth()
        clock.advance(3600)  # an hour of downtime: 60 missed slots
        assert len(scheduler.enqueue_jobs()) == 1
        assert len(queued(connection)) == 1
        assert scheduler.enqueue_jobs() == []
        assert connection.zscore(k.schedule(), "c") > clock.now

    def test_job_options_reach_rq(self, scheduler: RedisCronScheduler, connection: redis.Redis) -> None:
        scheduler.register(
            jobs.noop,
            "metrics",
            id="o",
            interval=60,
            job_timeout=77,
            result_ttl=0,
            ttl=900,
            failure_ttl=1234,
            meta={"team": "air"},
        )
        scheduler.register_birth()
        scheduler.enqueue_jobs()
        job = Job.fetch(queued(connection)[0], connection=connection)
        assert (job.timeout, job.result_ttl, job.ttl, job.failure_ttl) == (77, 0, 900, 1234)
        assert job.meta["team"] == "air"
        assert job.origin == "metrics"
        assert job.get_status() == "queued"

    def test_disabled_and_deleted_jobs_never_fire(self, scheduler: RedisCronScheduler, connection: redis.Redis) -> None:
        scheduler.register(jobs.noop, "metrics", id="d", interval=60)
        scheduler.register(jobs.noop, "metrics", id="x", interval=60)
        scheduler.register_birth()
        RedisCronJob.fetch("d", connection).disable()
        RedisCronJob.fetch("x", connection).delete()
        assert scheduler.enqueue_jobs() == []

    def test_two_schedulers_never_double_fire(self, connection: redis.Redis, clock: FakeClock) -> None:
        a = RedisCronScheduler(connection, name="a", clock=clock)
        b = RedisCronScheduler(connection, name="b", clock=clock)
        for i in range(20):
            a.register(jobs.noop, "metrics", id=f"j{i}", interval=10)
        a.register_birth()
        with pytest.raises(RuntimeError, match=r"a \(fencing epoch 1\)"):
            b.register_birth()
        with pytest.raises(SchedulerLockedError):
            b.register_birth()
        for _ in range(5):
            a.enqueue_jobs()
            b.enqueue_jobs()  # holds no lock: must do nothing
            clock.advance(10)
        ids = queued(connection)
        assert len(ids) == len(set(ids)) == 100
        a.register_death()

    def test_stale_scheduler_cannot_fire_after_losing_the_lock(self, connection: redis.Redis, clock: FakeClock) -> None:
        a = RedisCronScheduler(connection, name="a", clock=clock, lock_ttl=30)
        a.register(jobs.noop, "metrics", id="j", interval=10)
        a.register_birth()
        connection.delete(k.lock())  # the lock expired while `a` was paused
        b = RedisCronScheduler(connection, name="b", clock=clock)
        b.register_birth()
        assert b.lock_epoch == 2
        assert a.enqueue_jobs() == []
        assert [j.id for j in b.enqueue_jobs()] == ["j"]
        with pytest.raises(StopRequested):
            a.heartbeat()
        b.register_death()
        assert len(queued(connection)) == 1

    def test_edit_between_read_and_fire_is_not_overwritten(
        self, scheduler: RedisCronScheduler, connection: redis.Redis
    ) -> None:
        scheduler.register(jobs.record, "metrics", id="e", interval=60, args=("old",))
        scheduler.register_birth()
        now, _marker, _up, due = scheduler.dispatch.tick()
        # Another process edits after the scheduler read the job, before it fires.
        scheduler.register(jobs.record, "metrics", id="e", interval=60, args=("new",))
        fired, _more = scheduler.dispatch.fire_due(now, due)
        assert fired == []  # stale read: nothing enqueued, nothing written back
        assert RedisCronJob.fetch("e", connection).args == ("new",)
        assert [j.args for j in scheduler.enqueue_jobs()] == [("new",)]

    def test_existing_rq_job_for_the_slot_is_not_enqueued_twice(
        self, scheduler: RedisCronScheduler, connection: redis.Redis
    ) -> None:
        scheduler.register(jobs.noop, "metrics", id="a", interval=60)
        scheduler.register_birth()
        scheduler.enqueue_jobs()
        # Put the index back as if a crashed writer had not advanced it.
        connection.zadd(k.schedule(), {"a": T0})
        connection.hset(k.job("a"), "revision", "99")
        assert scheduler.enqueue_jobs() == []
        assert queued(connection) == [rq_job_id("a", T0)]
        assert connection.zscore(k.schedule(), "a") == T0 + 60

    def test_batches(self, connection: redis.Redis, clock: FakeClock) -> None:
        s = RedisCronScheduler(connection, name="b", clock=clock, batch_size=7)
        for i in range(50):
            s.register(jobs.noop, "metrics", id=f"j{i:02}", interval=60)
        s.register_birth()
        assert len(s.enqueue_jobs()) == 50
        assert len(set(queued(connection))) == 50
        s.register_death()

    def test_a_full_tick_streams_several_fire_scripts_in_one_pass(
        self, connection: redis.Redis, clock: FakeClock
    ) -> None:
        from rediscron.dispatch import STREAMED_BATCHES

        s = RedisCronScheduler(connection, name="b", clock=clock, batch_size=7)
        for i in range(50):  # all due at once, fired in id order; the first ones come back soonest
            s.register(jobs.noop, "metrics", id=f"j{i:02}", interval=150 + i)
        s.register_birth()
        now, _marker, _upcoming, due = s._tick()
        assert len(due) == 7
        rediscron.scripts.load(connection, "fire")
        connection.config_resetstat()
        fired, more = s.dispatch.fire_due(now, due)
        streamed = 7 * STREAMED_BATCHES
        assert sorted(job.id for job in fired) == [f"j{i:02}" for i in range(streamed)] and more
        calls = connection.info("commandstats")["cmdstat_evalsha"]["calls"]
        assert calls == STREAMED_BATCHES + 1  # the fire scripts, and one more read of the index
        # The soonest next slot of every batch, not of the last one only.
        soonest = min(RedisCronJob.fetch(f"j{i:02}", connection).next_enqueue_time for i in range(streamed))
        assert s.dispatch.advanced_to == soonest.timestamp()
        assert len(s.enqueue_jobs()) == 50 - streamed and len(set(queued(connection))) == 50
        s.register_death()

    def test_jobs_of_one_shape_are_decoded_in_full_once(
        self, connection: redis.Redis, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        s = RedisCronScheduler(connection, name="b", clock=clock)
        for i in range(20):
            s.register(jobs.noop, "metrics", id=f"m{i:02}", args=(i,), kwargs={"n": i}, interval=60)
        for i in range(5):
            s.register(jobs.noop, "other", id=f"o{i}", args=(i,), interval=60, meta={"i": i})
        restored: list[str] = []
        restore = RedisCronJob.restore.__func__  # type: ignore[attr-defined]

        def counted(cls: type[RedisCronJob], raw: Any, *args: Any, **kwargs: Any) -> RedisCronJob:
            restored.append(kwargs.get("id", ""))
            return restore(cls, raw, *args, **kwargs)  # type: ignore[no-any-return]

        monkeypatch.setattr(RedisCronJob, "restore", classmethod(counted))
        s.register_birth()
        assert restored == ["m00", "o0"]  # the scheduler hash lists the jobs it holds (`load_jobs`)
        restored.clear()
        assert len(s.enqueue_jobs()) == 25
        assert restored == ["m00", "o0"]  # one job of each shape; the others by what tells them apart
        runs = [Job.fetch(rq_id, connection) for rq_id in queued(connection)]
        assert sorted((list(run.args), run.kwargs) for run in runs) == sorted(([i], {"n": i}) for i in range(20))
        others = [Job.fetch(rq_id, connection) for rq_id in queued(connection, "other")]
        assert sorted(run.meta["i"] for run in others) == list(range(5))
        s.register_death()

    def test_corrupt_records_are_quarantined_and_others_run(
        self, scheduler: RedisCronScheduler, connection: redis.Redis
    ) -> None:
        scheduler.register(jobs.noop, "metrics", id="good", interval=60)
        for job_id, mapping in corrupt_records().items():
            connection.hset(k.job(job_id), mapping=mapping)
            connection.sadd(k.ids(), job_id)
            connection.zadd(k.schedule(), {job_id: T0 - 5})
        connection.zadd(k.schedule(), {"ghost": T0 - 5})  # index entry without a hash
        scheduler.register_birth()
        assert [j.id for j in scheduler.enqueue_jobs()] == ["good"]
        assert scheduler.stats.quarantined == 4
        for job_id in corrupt_records():
            assert connection.zscore(k.schedule(), job_id) == float("inf")
            assert connection.hget(k.job(job_id), "last_error")
        assert connection.zscore(k.schedule(), "ghost") is None
        assert scheduler.calculate_sleep_interval() == pytest.approx(59.75)
        # register() repairs a quarantined job.
        scheduler.register(jobs.noop, "metrics", id="badcron", cron="*/5 * * * *")
        assert connection.zscore(k.schedule(), "badcron") != float("inf")
        assert not connection.hexists(k.job("badcron"), "last_error")

    def test_a_quarantine_lifts_itself_once_the_record_is_repaired(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: FakeClock
    ) -> None:
        scheduler.register(jobs.noop, "metrics", id="a", interval=60)
        connection.hset(k.job("a"), "interval", "soon")  # an operator's typo in redis-cli
        scheduler.register_birth()
        assert scheduler.enqueue_jobs() == []
        assert connection.zscore(k.schedule(), "a") == float("inf")
        assert scheduler.retry_quarantined() == []  # still unreadable: stays, its error kept
        assert b"interval" in (connection.hget(k.job("a"), "last_error") or b"")
        connection.hset(k.job("a"), "interval", "60")  # repaired by hand, no API call
        assert scheduler.retry_quarantined() == ["a"]
        stored = RedisCronJob.fetch("a", connection)
        assert stored.last_error is None and stored.enabled
        assert connection.zscore(k.schedule(), "a") == T0  # the slot it never ran, a quarter second ago
        assert [j.id for j in scheduler.enqueue_jobs()] == ["a"]
        # A quarantined job whose record is deleted by hand leaves no index entry behind.
        connection.hset(k.job("a"), "interval", "soon")
        clock.advance(60)
        scheduler.enqueue_jobs()
        connection.delete(k.job("a"))
        assert scheduler.retry_quarantined() == []
        assert connection.zscore(k.schedule(), "a") is None and not connection.sismember(k.ids(), "a")

    def test_the_loop_retries_quarantined_jobs_at_start_and_periodically(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: FakeClock
    ) -> None:
        from rediscron.scheduler import QUARANTINE_RETRY_INTERVAL

        scheduler.register(jobs.noop, "metrics", id="a", interval=60)
        connection.hset(k.job("a"), "interval", "soon")
        scheduler.register_birth()
        scheduler.run_once()
        assert connection.zscore(k.schedule(), "a") == float("inf")
        connection.hset(k.job("a"), "interval", "60")
        clock.advance(QUARANTINE_RETRY_INTERVAL - 1)
        scheduler.run_once()
        assert connection.zscore(k.schedule(), "a") == float("inf")  # not yet
        clock.advance(1)
        scheduler.run_once()
        assert connection.zscore(k.schedule(), "a") != float("inf")
        connection.hset(k.job("a"), "interval", "soon")
        clock.advance(60)
        scheduler.run_once()
        assert connection.zscore(k.schedule(), "a") == float("inf")  # broken again, when it came due
        connection.hset(k.job("a"), "interval", "60")
        scheduler.register_death()
        scheduler.register_birth()  # a new leader tries at once
        scheduler.run_once()
        assert connection.zscore(k.schedule(), "a") != float("inf")

    def test_enable_retries_a_quarantined_job_at_once(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: FakeClock
    ) -> None:
        scheduler.register(jobs.noop, "metrics", id="a", interval=60)
        connection.hset(k.job("a"), "interval", "soon")
        scheduler.register_birth()
        assert scheduler.enqueue_jobs() == []
        connection.hset(k.job("a"), "interval", "60")
        RedisCronJob.fetch("a", connection).enable()
        stored = RedisCronJob.fetch("a", connection)
        assert stored.last_error is None and stored.enabled
        assert connection.zscore(k.schedule(), "a") != float("inf")
        clock.advance(60)
        assert [j.id for j in scheduler.enqueue_jobs()] == ["a"]
        # Still broken: enabling quarantines it again at its next slot, logged, nothing else touched.
        connection.hset(k.job("a"), "queue_name", "")
        with pytest.raises(CorruptJobError):
            RedisCronJob.fetch("a", connection)
        RedisCronJob(id="a", queue_name="metrics", func=jobs.noop, interval=60, connection=connection).enable()
        clock.advance(60)
        assert scheduler.enqueue_jobs() == []
        assert "queue_name" in (connection.hget(k.job("a"), "last_error") or b"").decode()

    def test_a_key_of_another_type_is_quarantined_and_repaired_by_register(
        self, scheduler: RedisCronScheduler, connection: redis.Redis
    ) -> None:
        scheduler.register(jobs.noop, "metrics", id="good", interval=60)
        connection.set(k.job("str"), "not a hash")
        connection.sadd(k.ids(), "str")
        connection.zadd(k.schedule(), {"str": T0 - 1})
        scheduler.register_birth()
        assert [j.id for j in scheduler.enqueue_jobs()] == ["good"]
        assert connection.zscore(k.schedule(), "str") == float("inf")
        assert "cannot be read as a hash" in scheduler.get_invalid_jobs()["str"]
        assert [j.id for j in scheduler.get_all_jobs()] == ["good"]
        with pytest.raises(CorruptJobError):
            RedisCronJob.fetch("str", connection)
        scheduler.register(jobs.noop, "metrics", id="str", interval=60)
        assert RedisCronJob.fetch("str", connection).interval == 60
        assert [j.id for j in scheduler.enqueue_jobs()] == ["str"]

    def test_decode_responses_connection(self, text_connection: redis.Redis, clock: FakeClock) -> None:
        s = RedisCronScheduler(text_connection, name="t", clock=clock)
        s.register(jobs.noop, "metrics", id="a", interval=60)
        s.register_birth()
        assert [j.id for j in s.enqueue_jobs()] == ["a"]
        assert [j.id for j in s.get_all_jobs()] == ["a"]
        s.register_death()


class TestLifecycle:
    def test_sleep_interval(self, scheduler: RedisCronScheduler, clock: FakeClock) -> None:
        assert scheduler.calculate_sleep_interval() == 60.0  # nothing registered: the cap
        scheduler.register(jobs.noop, "metrics", id="c", cron="*/1 * * * *")
        assert scheduler.calculate_sleep_interval() == pytest.approx(59.75)
        clock.advance(59.75)
        assert scheduler.calculate_sleep_interval() == 0.0
        s = RedisCronScheduler(scheduler.connection, clock=clock, max_sleep_interval=5)
        assert s.calculate_sleep_interval() == 0.0
        clock.advance(1)
        assert s.calculate_sleep_interval() == 0.0  # overdue

    def test_pass_sleeps_until_the_next_slot_of_what_it_just_fired(
        self, connection: redis.Redis, clock: FakeClock
    ) -> None:
        s = RedisCronScheduler(connection, name="p", clock=clock, max_sleep_interval=300, lock_ttl=3000)
        s.register(jobs.noop, "metrics", id="a", interval=20)
        s.register(jobs.noop, "metrics", id="b", interval=40)
        s.register_birth()
        assert s.run_once() == pytest.approx(19.75)  # fired both; "a" comes back first
        clock.advance(19.75)
        assert s.run_once() == pytest.approx(20.0)  # fired "a" again; "b" is next, at T0 + 40
        assert len(queued(connection)) == 3
        s.register_death()

    @pytest.mark.parametrize("standby", [False, True])
    def test_a_stop_asked_for_before_the_loop_starts_stops_it_as_it_starts(
        self, connection: redis.Redis, standby: bool
    ) -> None:
        # What a worker hosting a scheduler does when it stops at once: the loop's thread may start after.
        import threading

        s = RedisCronScheduler(connection, name="early", logging_level="WARNING")
        s.request_stop()
        loop = threading.Thread(target=lambda: s.start(standby=standby), daemon=True)
        loop.start()
        loop.join(timeout=10)
        assert not loop.is_alive()
        assert connection.get(k.lock()) is None  # released, or never taken
        assert not s._runner.stopping  # a later start() runs again

    def test_birth_registers_in_rqs_registry(self, scheduler: RedisCronScheduler, connection: redis.Redis) -> None:
        scheduler.register(jobs.noop, "metrics", id="a", interval=60)
        scheduler.register_birth()
        assert connection.zscore("rq:cron_schedulers", "primary") is not None
        listed = CronScheduler.all(connection)
        assert [s.name for s in listed] == ["primary"]
        assert [j.func_name for j in listed[0].get_jobs()] == ["tests.jobs.noop"]
        data = json.loads(connection.hget(scheduler.key, "cron_jobs"))
        assert data[0]["name"] == "a"

    def test_birth_refused_when_locked_registers_nothing(
        self, scheduler: RedisCronScheduler, connection: redis.Redis
    ) -> None:
        scheduler.register_birth()
        other = RedisCronScheduler(connection, name="other")
        with pytest.raises(RuntimeError, match="primary"):
            other.register_birth()
        assert connection.zscore("rq:cron_schedulers", "other") is None
        assert not connection.exists(other.key)

    def test_death_releases_only_our_lock_and_is_idempotent(
        self, scheduler: RedisCronScheduler, connection: redis.Redis
    ) -> None:
        scheduler.register_birth()
        scheduler.register_death()
        scheduler.register_death()
        assert not connection.exists(k.lock())
        assert connection.zscore("rq:cron_schedulers", "primary") is None
        other = RedisCronScheduler(connection, name="other")
        other.register_birth()
        scheduler.register_death()
        assert connection.get(k.lock()).decode().endswith("|other")
        other.register_death()

    def test_heartbeat_extends_lock(self, scheduler: RedisCronScheduler, connection: redis.Redis) -> None:
        scheduler.register_birth()
        connection.pexpire(k.lock(), 1000)
        scheduler.heartbeat()
        assert connection.pttl(k.lock()) > 25_000

    def test_heartbeat_retakes_a_free_lock(self, scheduler: RedisCronScheduler, connection: redis.Redis) -> None:
        scheduler.register_birth()
        connection.flushall()  # e.g. Redis restarted without persistence
        scheduler.heartbeat()
        assert scheduler.lock_epoch == 2  # above every epoch seen, though Redis lost its counter
        assert connection.get(k.lock()).decode().endswith("|primary")
        assert connection.zscore("rq:cron_schedulers", "primary") is not None

    def test_heartbeat_stops_when_another_holds_the_lock(
        self, scheduler: RedisCronScheduler, connection: redis.Redis
    ) -> None:
        scheduler.register_birth()
        connection.set(k.lock(), "7|token|intruder")
        with pytest.raises(StopRequested):
            scheduler.heartbeat()

    @pytest.mark.parametrize(
        "bad",
        [
            {"lock_ttl": 2},
            {"lock_ttl": "60"},
            {"max_sleep_interval": 0},
            {"max_sleep_interval": float("nan")},
            {"batch_size": 0},
        ],
    )
    def test_bad_settings(self, connection: redis.Redis, bad: dict[str, Any]) -> None:
        with pytest.raises(ValueError):
            RedisCronScheduler(connection, **bad)

    def test_burst(self, connection: redis.Redis, clock: FakeClock) -> None:
        s = RedisCronScheduler(connection, name="burst", clock=clock)
        for i in range(3):
            s.register(jobs.noop, "metrics", id=f"j{i}", interval=60)
        s.start(burst=True)
        assert len(queued(connection)) == 3
        assert not connection.exists(k.lock())

    def test_loop_wakes_on_event_and_stops_on_request(self, connection: redis.Redis) -> None:
        s = RedisCronScheduler(connection, name="loop", max_sleep_interval=30)
        thread = threading.Thread(target=s.start)
        thread.start()
        try:
            other = RedisCronScheduler(connection)
            _wait_for(lambda: s._listener.connected)
            other.register(jobs.noop, "metrics", id="live", interval=3600)
            _wait_for(lambda: len(queued(connection)) == 1, timeout=2.0)
        finally:
            s.request_stop()
            thread.join(5)
        assert not thread.is_alive()
        assert not connection.exists(k.lock())


def test_redis_error_replies_do_not_stop_the_loop(connection: redis.Redis) -> None:
    s = RedisCronScheduler(connection, name="oom", max_sleep_interval=0.2)
    thread = threading.Thread(target=s.start)
    try:
        thread.start()
        _wait_for(lambda: s.lock_epoch is not None)
        RedisCronScheduler(connection).register(jobs.noop, "metrics", id="tick", cron="0 0 1 1 *", args=(1,))
        connection.config_set("maxmemory-policy", "noeviction")
        with connection.pipeline(transaction=True) as pipe:
            # Due now, and from the same instant every write is refused with an OOM error reply.
            pipe.zadd(k.schedule(), {"tick": 0})
            pipe.config_set("maxmemory", "1")
            pipe.execute()
        before = connection.hgetall(k.job("tick"))
        with pytest.raises(redis.ResponseError, match=r"OOM|maxmemory"):  # the text differs on Redis 6 and 7
            RedisCronScheduler(connection).register(jobs.noop, "metrics", id="tick", interval=1, args=(2,))
        with pytest.raises(redis.ResponseError, match=r"OOM|maxmemory"):  # the text differs on Redis 6 and 7
            RedisCronJob.fetch("tick", connection).disable()
        assert connection.hgetall(k.job("tick")) == before  # refused whole: nothing half-written
        _wait_for(lambda: s.failing is not None, timeout=5)
        assert queued(connection) == []
        assert thread.is_alive()
        connection.config_set("maxmemory", "0")
        _wait_for(lambda: len(queued(connection)) >= 1, timeout=10)
        # The recovery is noted when the pass that fired returns, just after the enqueue.
        _wait_for(lambda: s.failing is None, timeout=5)
    finally:
        connection.config_set("maxmemory", "0")
        s.request_stop()
        thread.join(10)
    assert not thread.is_alive()


def _wait_for(predicate: Any, timeout: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_a_real_worker_runs_the_job(connection: redis.Redis, clock: FakeClock) -> None:
    s = RedisCronScheduler(connection, name="w", clock=clock)
    s.register(jobs.record, "metrics", id="w", interval=60, args=("pm25",), kwargs={"n": 1})
    s.register_birth()
    s.enqueue_jobs()
    s.register_death()
    queue = Queue("metrics", connection=connection)
    worker = SimpleWorker([queue], connection=connection)
    assert worker.work(burst=True)
    job = Job.fetch(rq_job_id("w", T0), connection=connection)
    assert job.get_status() == "finished"
    assert job.return_value() == {"args": ["pm25"], "kwargs": {"n": 1}}


class CountingConnection(redis.Connection):
    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


@pytest.mark.parametrize("registered", [1, 500])
def test_an_idle_pass_is_one_round_trip_whatever_the_registry_size(
    redis_url: str, connection: redis.Redis, clock: FakeClock, registered: int
) -> None:
    counted = redis.Redis(connection_pool=redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection))
    s = RedisCronScheduler(counted, name="idle", clock=clock)
    for i in range(registered):
        s.register(jobs.noop, "metrics", id=f"j{i}", cron="0 0 1 1 *")
    s.register_birth()
    s.run_once()  # loads scripts, writes the scheduler hash
    CountingConnection.sent = 0
    for _ in range(10):
        s.run_once()
    assert CountingConnection.sent == 10
    CountingConnection.sent = 0
    s.heartbeat()
    assert CountingConnection.sent == 2  # extend the lock; refresh rq's registry entry
    s.register_death()


class TestRqSchedulerCompatibility:
    """rq-scheduler's hand-written loop ports unchanged, and still fires each slot once."""

    def test_hand_written_loop(self, connection: redis.Redis, clock: FakeClock) -> None:
        one = RedisCronScheduler(connection, name="one", clock=clock)
        two = RedisCronScheduler(connection, name="two", clock=clock)
        for i in range(5):
            one.register(jobs.noop, "metrics", id=f"j{i}", interval=60)
        assert one.acquire_lock() is True
        assert one.acquire_lock() is True  # already ours
        assert two.acquire_lock() is False
        for _ in range(3):
            for scheduler in (one, two):  # only the lock holder may enqueue
                for job in scheduler.get_jobs_to_queue():
                    assert scheduler.get_queue_for_job(job).name == "metrics"
                    scheduler.enqueue_job(job)
            clock.advance(60)
        ids = queued(connection)
        assert len(ids) == len(set(ids)) == 15
        one.remove_lock()
        one.remove_lock()
        assert two.acquire_lock() is True
        assert isinstance(two.pid, int) and two.key.endswith(":two")
        two.remove_lock()

    def test_rq_schedulers_run_loop_with_two_instances(
        self, connection: redis.Redis, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """rq-scheduler's run() loop: heartbeat, take the lock, enqueue, heartbeat, give the lock back."""
        schedulers = [RedisCronScheduler(connection, name=name, clock=clock) for name in ("one", "two")]
        for i in range(3):
            schedulers[0].register(jobs.noop, "metrics", id=f"j{i}", interval=60)
        skipped = []

        def one_pass(scheduler: RedisCronScheduler) -> None:
            scheduler.heartbeat()
            if scheduler.acquire_lock():
                for job, slot_time in scheduler.get_jobs_to_queue(with_times=True):
                    assert slot_time.timestamp() <= clock.now
                    scheduler.enqueue_job(job)
                scheduler.heartbeat()
                # The other instance takes its turn while this one holds the lock.
                other = schedulers[1] if scheduler is schedulers[0] else schedulers[0]
                other.heartbeat()
                skipped.append(not other.acquire_lock())
                scheduler.remove_lock()
            else:
                skipped.append(True)

        with caplog.at_level(logging.WARNING, logger="rediscron"):
            for number in range(6):
                one_pass(schedulers[number % 2])
                clock.advance(30)
        ids = queued(connection)
        assert len(ids) == len(set(ids)) == 9  # each slot of the three jobs, once, whoever held the lock
        assert all(skipped)
        assert not [r for r in caplog.records if "took it again" in r.getMessage() or "lock" in r.getMessage()]
        assert connection.get(k.lock()) is None

    def test_enqueue_job_twice_or_without_a_due_slot(self, connection: redis.Redis, clock: FakeClock) -> None:
        s = RedisCronScheduler(connection, name="s", clock=clock)
        s.register(jobs.noop, "metrics", id="a", interval=60)
        assert s.acquire_lock()
        [job] = s.get_jobs_to_queue()
        stale_copy = RedisCronJob.restore(connection.hgetall(k.job("a")), connection, id="a")
        stale_copy._due = job._due
        rq_job = s.enqueue_job(job)
        assert rq_job is not None and queued(connection) == [rq_job.id]
        assert s.enqueue_job(stale_copy) is None  # the same slot again: refused by the revision check
        assert s.enqueue_job(job) is rq_job  # already enqueued: a no-op returning the RQ job
        assert len(queued(connection)) == 1
        fresh = RedisCronJob.fetch("a", connection)
        with pytest.raises(ValueError, match="get_jobs_to_queue"):
            s.enqueue_job(fresh)
        s.remove_lock()


class TestRegisterMany:
    def test_bulk_upsert_in_order(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: FakeClock
    ) -> None:
        scheduler.register(jobs.noop, "metrics", id="m07", interval=60, enabled=False)
        created = RedisCronJob.fetch("m07", connection).created_at
        specs = [
            {"func": jobs.record, "queue_name": "metrics", "id": f"m{i:02}", "args": (i,), "interval": 60}
            for i in range(20)
        ]
        specs.append({"func": "tests.jobs.noop", "queue_name": "q", "id": "c", "cron": "@hourly", "enabled": False})
        result = scheduler.register_many(specs, batch_size=6)
        assert [j.id for j in result] == [s["id"] for s in specs]
        assert connection.scard(k.ids()) == 21
        m07 = RedisCronJob.fetch("m07", connection)
        assert (m07.args, m07.enabled, m07.created_at) == ((7,), False, created)  # upsert keeps state
        assert RedisCronJob.fetch("c", connection).enabled is False
        assert result[0].next_enqueue_time is not None and result[0].revision > 0

    @pytest.mark.parametrize(
        ("bad", "field"),
        [
            ({"interval": 0}, "interval"),
            ({"colour": "red"}, "arguments"),
            ({"enabled": "yes"}, "enabled"),
            ({"id": "m03"}, "id"),
        ],
    )
    def test_one_bad_item_writes_nothing(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, bad: dict[str, Any], field: str
    ) -> None:
        specs = [{"func": jobs.noop, "queue_name": "q", "id": f"m{i:02}", "interval": 60} for i in range(5)]
        specs.append({"func": jobs.noop, "queue_name": "q", "id": "bad", "interval": 60, **bad})
        with pytest.raises(InvalidJobError) as info:
            scheduler.register_many(specs)
        assert info.value.field == field
        assert connection.scard(k.ids()) == 0

    def test_conflict_modes(self, scheduler: RedisCronScheduler, connection: redis.Redis) -> None:
        scheduler.register(jobs.noop, "q", id="a", interval=60)
        specs = [{"func": jobs.noop, "queue_name": "q", "id": x, "interval": 30} for x in ("a", "b")]
        with pytest.raises(InvalidJobError, match="nothing was written"):
            scheduler.register_many(specs, conflict="raise")
        assert not RedisCronJob.exists("b", connection)
        result = scheduler.register_many(specs, conflict="ignore")
        assert [j.interval for j in result] == [60, 30]
        assert RedisCronJob.fetch("a", connection).interval == 60


def test_register_many_is_one_round_trip_per_batch_of_new_jobs_and_one_per_batch_that_exist(
    redis_url: str, connection: redis.Redis, clock: FakeClock
) -> None:
    counted = redis.Redis(connection_pool=redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection))
    s = RedisCronScheduler(counted, name="bulk", clock=clock)
    s.register(jobs.noop, "q", id="warm-up", interval=60)  # loads the script
    CountingConnection.sent = 0
    s.register_many(
        [{"func": jobs.noop, "queue_name": "q", "id": f"j{i}", "interval": 60} for i in range(100)], batch_size=50
    )
    assert CountingConnection.sent == 2
    assert connection.scard(k.ids()) == 101
    revisions = {i: int(connection.hget(k.job(f"j{i}"), "revision") or 0) for i in range(100)}
    CountingConnection.sent = 0
    # Half of them exist: taken for new, they come back with their timing and are written over it (a
    # batch of 50 more).
    edited = s.register_many(
        [{"func": jobs.noop, "queue_name": "q", "id": f"j{i}", "interval": 30} for i in range(50, 150)], batch_size=50
    )
    assert CountingConnection.sent == 3
    assert [job.interval for job in edited] == [30] * 100
    assert all(int(connection.hget(k.job(f"j{i}"), "revision") or 0) > revisions[i] for i in range(50, 100))
    assert {RedisCronJob.fetch(f"j{i}", connection).interval for i in range(150)} == {30, 60}
    assert RedisCronJob.fetch("j49", connection).interval == 60
    assert connection.scard(k.ids()) == 151
    connection.script_flush()  # as after a Redis restart: the server forgot the script
    s.register_many([{"func": jobs.noop, "queue_name": "q", "id": f"k{i}", "interval": 60} for i in range(10)])
    assert connection.scard(k.ids()) == 161


def test_the_library_configures_no_logging_until_start(redis_url: str) -> None:
    import subprocess
    import sys

    code = f"""
import logging
import redis
import rediscron
from rediscron import RedisCronScheduler
from tests import jobs
s = RedisCronScheduler(redis.Redis.from_url({redis_url!r}))
s.register(jobs.noop, "q", id="quiet", interval=60)
s.register_many([{{"func": jobs.noop, "queue_name": "q", "id": "quiet2", "interval": 60}}])
configured = [name for name in ("", "rediscron", "rediscron.scheduler", "rq", "rq.cron")
              if logging.getLogger(name).handlers]
print("configured:", configured, logging.getLogger("rq.cron").propagate)
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "configured: [] True", out.stdout
    assert out.stderr == ""


@pytest.mark.parametrize(("given", "level"), [({"logging_level": "WARNING"}, "WARNING"), ({}, "INFO")])
def test_a_cron_worker_s_scheduler_logs_at_the_worker_s_level(
    connection: redis.Redis, given: dict[str, Any], level: str
) -> None:
    from rediscron.worker import CronWorker

    worker = CronWorker(["q"], connection=connection)
    worker.work(burst=True, **given)
    assert worker.cron_scheduler.logging_level == level
