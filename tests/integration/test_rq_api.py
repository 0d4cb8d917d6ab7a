"""rq's cron API on rediscron's classes: rq's keywords and positional order, configs, hooks, stale copies."""

from __future__ import annotations

import importlib.util
import inspect
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import redis
import rq.cron
from rq.cron import CronJob

from rediscron import InvalidJobError, JobNotFound, RedisCronJob, RedisCronScheduler
from rediscron import keys as k
from tests import jobs
from tests.integration.test_policies import T0, Clock

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RQ_NAMES = "name" in inspect.signature(rq.cron.register).parameters


@pytest.fixture
def scheduler(connection: redis.Redis) -> RedisCronScheduler:
    return RedisCronScheduler(connection, name="api", clock=Clock(), logging_level="WARNING")


class TestRegister:
    def test_rqs_positional_order_with_an_id(self, scheduler: RedisCronScheduler, connection: redis.Redis) -> None:
        job = scheduler.register(jobs.record, "q", ("a",), {"k": 1}, 300, id="rq-order")
        assert (job.id, job.args, job.kwargs, job.interval) == ("rq-order", ("a",), {"k": 1}, 300)
        job = scheduler.register(jobs.record, "q", None, None, None, "0 9 * * *", 30, id="cron-order")
        assert (job.cron, job.job_timeout) == ("0 9 * * *", 30)
        # The specification's own order still works: the third argument is the id.
        job = scheduler.register(jobs.record, "q", "spec-order", ("b",), None, 60)
        assert (job.id, job.args, job.interval) == ("spec-order", ("b",), 60)
        with pytest.raises(TypeError, match="multiple values for argument 'args'"):
            scheduler.register(jobs.record, "q", ("a",), args=("b",), interval=60, id="x")
        with pytest.raises(TypeError, match="at most"):
            scheduler.register(jobs.record, "q", *([None] * 12), id="x")

    def test_rqs_name_is_the_id(self, scheduler: RedisCronScheduler, connection: redis.Redis) -> None:
        job = scheduler.register(jobs.noop, "q", interval=60, name="nightly")
        assert job.id == job.name == "nightly" and RedisCronJob.exists("nightly", connection)
        with pytest.raises(InvalidJobError) as refused:
            scheduler.register(jobs.noop, "q", id="a", name="b", interval=60)
        assert refused.value.field == "name"
        with pytest.raises(InvalidJobError, match="id: is required"):
            scheduler.register(jobs.noop, "q", interval=60)

    @pytest.mark.skipif(importlib.util.find_spec("rq.webhook") is None, reason="this rq has no webhooks (2.10+)")
    def test_webhooks_are_stored_as_data_and_reach_each_run(
        self, scheduler: RedisCronScheduler, connection: redis.Redis
    ) -> None:
        from rq.job import Job
        from rq.webhook import Webhook

        hooks = [Webhook("https://example.com/done", "finished", method="POST", timeout=5)]
        scheduler.register(jobs.noop, "q", id="hooked", interval=60, webhooks=hooks)
        stored = RedisCronJob.fetch("hooked", connection)
        assert stored.job_options["webhooks"] == hooks
        assert b"example.com" in (connection.hget(k.job("hooked"), "webhooks") or b"")
        scheduler.register_birth()
        assert [j.id for j in scheduler.enqueue_jobs()] == ["hooked"]
        rq_id = connection.lrange("rq:queue:q", 0, -1)[0].decode()
        assert Job.fetch(rq_id, connection=connection).webhooks == hooks
        with pytest.raises(TypeError):
            scheduler.register(jobs.noop, "q", id="bad", interval=60, webhooks=["https://example.com"])
        scheduler.register_death()


class TestConfig:
    def test_load_config_from_file_registers_every_job(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, tmp_path: Path
    ) -> None:
        named = RQ_NAMES  # rq's cron.register() takes name= from rq 2.10 on
        config = tmp_path / "cron_config.py"
        config.write_text(
            "from rq import cron\n"
            "from tests.jobs import noop, record\n"
            "cron.register(noop, queue_name='default', interval=60)\n"
            "cron.register(noop, queue_name='default', interval=120, kwargs={'x': 1})\n"
            f"cron.register(record, queue_name='reports', cron='0 9 * * *'{', name=chr(100)' if named else ''})\n"
        )
        scheduler.load_config_from_file(str(config))
        assert sorted(j.id for j in scheduler.get_all_jobs()) == sorted(
            ["d" if named else "tests.jobs.record", "tests.jobs.noop", "tests.jobs.noop#2"]
        )
        # Loading it again (a restart) edits the same jobs instead of adding more.
        scheduler.load_config_from_file(str(config))
        assert len(scheduler.get_all_jobs()) == 3
        assert RedisCronJob.fetch("tests.jobs.noop#2", connection).kwargs == {"x": 1}


class TestHooks:
    def test_start_runs_through_overridden_hooks(self, connection: redis.Redis) -> None:
        calls: list[str] = []

        class Counting(RedisCronScheduler):
            def enqueue_jobs(self) -> list[RedisCronJob]:
                calls.append("enqueue")
                return super().enqueue_jobs()

            def calculate_sleep_interval(self) -> float:
                calls.append("sleep")
                if calls.count("sleep") == 3:
                    self.request_stop()
                return 0.01

        s = Counting(connection, name="hooks", logging_level="WARNING")
        s.register(jobs.noop, "q", id="a", interval=60)
        s.start()
        assert calls[:6] == ["enqueue", "sleep"] * 3
        assert connection.llen("rq:queue:q") == 1  # the overriding hook still enqueued, through the lock

    def test_an_exception_from_a_hook_ends_start_after_register_death(self, connection: redis.Redis) -> None:
        s = RedisCronScheduler(connection, name="boom", logging_level="CRITICAL")
        with (
            mock.patch.object(s, "enqueue_jobs", side_effect=RuntimeError("hook failed")),
            pytest.raises(RuntimeError, match="hook failed"),
        ):
            s.start()
        assert connection.get(k.lock()) is None  # released on the way out


class TestObjects:
    def test_a_cron_job_built_directly_knows_its_next_run(self) -> None:
        job = RedisCronJob(id="c", queue_name="q", func=jobs.noop, cron="0 9 * * *")
        assert job.next_enqueue_time is not None and job.next_enqueue_time > datetime.now(timezone.utc)
        assert job.next_enqueue_time.hour == 9

    def test_set_enqueue_time_never_creates_a_job(self, connection: redis.Redis) -> None:
        when = datetime(2030, 1, 1, tzinfo=timezone.utc)
        unsaved = RedisCronJob(id="u", queue_name="q", func=jobs.noop, interval=60, connection=connection)
        unsaved.set_enqueue_time(when)
        assert unsaved.next_enqueue_time == when + timedelta(seconds=60)
        assert not RedisCronJob.exists("u", connection)
        unsaved.save()
        fetched = RedisCronJob.fetch("u", connection)
        fetched.set_enqueue_time(when)
        assert RedisCronJob.fetch("u", connection).latest_enqueue_time == when  # stored when it exists
        RedisCronJob.fetch("u", connection).delete()
        fetched.set_enqueue_time(when + timedelta(hours=1))
        assert not RedisCronJob.exists("u", connection)  # not brought back

    def test_saving_a_stale_copy_never_resurrects_a_deleted_job(self, connection: redis.Redis) -> None:
        built = RedisCronJob(id="s", queue_name="q", func=jobs.noop, interval=60, connection=connection)
        built.save()
        stale = RedisCronJob.fetch("s", connection)
        RedisCronJob.fetch("s", connection).delete()
        stale.interval = 120
        with pytest.raises(JobNotFound):
            stale.save()
        assert not RedisCronJob.exists("s", connection)
        with pytest.raises(JobNotFound):
            stale.enable()  # nor does enabling or disabling it
        with pytest.raises(JobNotFound):
            stale.disable()
        assert not RedisCronJob.exists("s", connection)
        built.save()  # an object built by the caller is a deliberate upsert
        assert RedisCronJob.exists("s", connection)

    def test_round_trips_and_equality(self, scheduler: RedisCronScheduler, connection: redis.Redis) -> None:
        job = scheduler.register(jobs.record, "q", id="rt", args=("x", 1), interval=60, timezone="Europe/Berlin")
        again = RedisCronJob.from_dict(job.to_dict())
        assert (again.id, again.args, again.interval, again.timezone) == ("rt", ("x", 1), 60, "Europe/Berlin")
        # rq's monitoring form, both ways.
        rq_form = CronJob.from_dict(job.to_rq_dict())
        assert (rq_form.func_name, rq_form.args) == ("tests.jobs.record", ("x", 1))
        assert getattr(rq_form, "name", "rt") == "rt"  # rq 2.10+ has names
        back = RedisCronJob.from_dict(job.to_rq_dict())
        assert (back.id, back.func, back.func_name) == ("rt", None, "tests.jobs.record")
        assert job in scheduler.get_jobs() and job == back and len({job, back, again}) == 1
        assert job != RedisCronJob(id="other", queue_name="q", func=jobs.record, interval=60)


def test_the_scheduler_hash_rqs_pages_read_follows_fires(connection: redis.Redis) -> None:
    import json

    clock = Clock()
    s = RedisCronScheduler(connection, name="pages", clock=clock, logging_level="WARNING")
    s.register(jobs.noop, "q", id="a", interval=60)
    s.register_birth()
    s.run_once()
    listed: list[dict[str, Any]] = json.loads(connection.hget(s.key, "cron_jobs") or b"[]")
    assert listed[0]["name"] == "a" and listed[0]["next_enqueue_time"].startswith("2030")
    first = listed[0]["next_enqueue_time"]
    clock.now = T0 + 60.5
    s.presence.saved_at -= 10  # as if the last write was more than 5 s ago
    s.run_once()
    listed = json.loads(connection.hget(s.key, "cron_jobs") or b"[]")
    assert listed[0]["next_enqueue_time"] > first and listed[0]["latest_enqueue_time"]
    s.register_death()


@pytest.mark.skipif(importlib.util.find_spec("rq.webhook") is not None, reason="this rq sends webhooks")
def test_webhooks_on_an_rq_without_them_are_refused_by_name(scheduler: RedisCronScheduler) -> None:
    with pytest.raises(InvalidJobError, match=r"webhooks: needs rq 2\.10"):
        scheduler.register(
            jobs.noop, "q", id="hooked", interval=60, webhooks=[{"url": "https://e.com", "job_status": "finished"}]
        )
