"""RedisCronJob against a real Redis: save, fetch, refresh, enable, disable, delete, events."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from rediscron import InvalidJobError, JobNotFound, RedisCronJob
from rediscron import keys as k
from tests import jobs

NOW = 1_900_000_000.25


def make(connection: redis.Redis, **overrides: Any) -> RedisCronJob:
    params: dict[str, Any] = {
        "id": "metric:pm25",
        "queue_name": "metrics",
        "func": jobs.record,
        "args": ("pm25",),
        "interval": 300,
        "connection": connection,
    }
    params.update(overrides)
    job = RedisCronJob(**params)
    job.clock = lambda: NOW
    return job


class Events:
    def __init__(self, connection: redis.Redis) -> None:
        self.pubsub = connection.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(k.events())
        self.received: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=0.05)
            if message:
                self.received.append(json.loads(message["data"]))
            elif self.received:
                break
        return self.received


@pytest.fixture
def events(connection: redis.Redis) -> Iterator[Events]:
    listener = Events(connection)
    yield listener
    listener.pubsub.close()


def test_spec_example_round_trip(connection: redis.Redis, events: Any) -> None:
    job = make(connection)
    job.save(event="created")
    same = RedisCronJob.fetch("metric:pm25", connection)
    assert same.key == "rq:cron_job:metric:pm25"
    # Never imported where it is read (design.md §4): runs are enqueued by this path.
    assert same.func is None and same.func_name == "tests.jobs.record"
    assert same.args == ("pm25",)
    assert same.interval == 300
    assert same.enabled is True
    assert same.revision == 1
    assert same.next_enqueue_time is not None and same.next_enqueue_time.timestamp() == int(NOW)
    assert connection.zscore(k.schedule(), "metric:pm25") == int(NOW)
    assert connection.sismember(k.ids(), "metric:pm25")
    assert connection.get(k.last_update()) == b"1"
    same.delete()
    assert not connection.exists(job.key)
    assert connection.zscore(k.schedule(), "metric:pm25") is None
    assert not connection.sismember(k.ids(), "metric:pm25")
    assert [e["event"] for e in events.drain()] == ["created", "deleted"]
    assert connection.get(k.last_update()) == b"2"


def test_hash_is_readable_with_redis_cli(connection: redis.Redis) -> None:
    make(connection, meta={"team": "air"}, result_ttl=0).save()
    raw = {a.decode(): b.decode() for a, b in connection.hgetall("rq:cron_job:metric:pm25").items()}
    assert raw["args"] == '["pm25"]'
    assert raw["meta"] == '{"team":"air"}'
    assert raw["result_ttl"] == "0"
    assert raw["interval"] == "300"
    assert raw["enabled"] == "1"
    assert raw["schema_version"] == "1"
    assert "cron" not in raw and "ttl" not in raw
    assert raw["next_enqueue_time"].endswith("Z")


def test_edit_keeps_created_at_and_next_unless_schedule_changes(connection: redis.Redis) -> None:
    job = make(connection)
    job.save()
    created, nxt = job.created_at, job.next_enqueue_time
    edited = make(connection, args=("pm10",))
    edited.clock = lambda: NOW + 100
    edited.save()
    again = RedisCronJob.fetch(job.id, connection)
    assert again.args == ("pm10",)
    assert again.created_at == created
    assert again.next_enqueue_time == nxt
    assert again.updated_at and again.updated_at.timestamp() == pytest.approx(NOW + 100)
    assert again.revision == 2

    rescheduled = make(connection, interval=None, cron="0 * * * *")
    rescheduled.clock = lambda: NOW + 100
    rescheduled.save()
    assert RedisCronJob.fetch(job.id, connection).next_enqueue_time != nxt


def test_interval_change_keeps_rhythm_from_last_slot(connection: redis.Redis) -> None:
    make(connection).save()  # slot at NOW (floored)
    slower = make(connection, interval=600)
    slower.clock = lambda: NOW + 10
    slower.save()
    # The last slot was int(NOW) - 300 (one interval before the stored next); the new rhythm counts from it.
    assert connection.zscore(k.schedule(), "metric:pm25") == int(NOW) - 300 + 600


def test_spec_edit_by_attribute(connection: redis.Redis) -> None:
    make(connection).save()
    job = RedisCronJob.fetch("metric:pm25", connection)
    job.interval = 600
    job.args = ("pm10",)
    job.meta = {"v": 2}
    job.save(event="updated")
    stored = RedisCronJob.fetch("metric:pm25", connection)
    assert (stored.interval, stored.args, stored.meta) == (600, ("pm10",), {"v": 2})
    job.func = jobs.noop
    job.save()
    assert RedisCronJob.fetch("metric:pm25", connection).func_name == "tests.jobs.noop"
    job.func_name = "tests.jobs.record"
    job.save()
    assert RedisCronJob.fetch("metric:pm25", connection).func_name == "tests.jobs.record"


def test_attribute_edits_are_validated_and_write_nothing(connection: redis.Redis) -> None:
    make(connection).save()
    before = connection.hgetall("rq:cron_job:metric:pm25")
    for field, value in (
        ("interval", -5),
        ("cron", "* * * * *"),
        ("args", (object(),)),
        ("queue_name", ""),
        ("func_name", "tests.jobs.nope"),
        ("ttl", "x"),
        ("enabled", "yes"),
    ):
        job = RedisCronJob.fetch("metric:pm25", connection)
        setattr(job, field, value)
        with pytest.raises(InvalidJobError) as info:
            job.save()
        assert info.value.job_id == "metric:pm25"
        assert info.value.field.startswith(field.split("_name")[0]) or field in info.value.field
    assert connection.hgetall("rq:cron_job:metric:pm25") == before


def test_save_removes_fields_set_to_none(connection: redis.Redis) -> None:
    make(connection, ttl=50, meta={"a": 1}).save()
    make(connection).save()
    raw = connection.hgetall("rq:cron_job:metric:pm25")
    assert b"ttl" not in raw and b"meta" not in raw


def test_disable_and_enable(connection: redis.Redis, events: Any) -> None:
    job = make(connection)
    job.save()
    fetched = RedisCronJob.fetch(job.id, connection)
    fetched.disable()
    assert connection.zscore(k.schedule(), job.id) is None
    assert RedisCronJob.fetch(job.id, connection).enabled is False
    fetched.clock = lambda: NOW + 1000
    fetched.enable()
    # Re-enabled: no catch-up; the first slot of the rhythm not in the past.
    assert connection.zscore(k.schedule(), job.id) == int(NOW) + 1200
    assert RedisCronJob.fetch(job.id, connection).enabled is True
    assert [e["event"] for e in events.drain()] == ["created", "disabled", "enabled"]


def test_enable_disable_missing_job(connection: redis.Redis) -> None:
    job = make(connection)
    with pytest.raises(JobNotFound, match="metric:pm25"):
        job.disable()
    with pytest.raises(JobNotFound):
        job.enable()
    with pytest.raises(JobNotFound):
        RedisCronJob.fetch("nope", connection)
    with pytest.raises(LookupError):
        RedisCronJob.fetch("nope", connection)


def test_delete_twice_is_fine(connection: redis.Redis) -> None:
    job = make(connection)
    job.save()
    job.delete()
    job.delete()
    assert not RedisCronJob.exists(job.id, connection)


def test_refresh_sees_other_process_edit(connection: redis.Redis) -> None:
    job = make(connection)
    job.save()
    other = RedisCronJob.fetch(job.id, connection)
    other.kwargs = {"x": 1}
    other.save()
    job.refresh()
    assert job.kwargs == {"x": 1}
    assert job.revision == 2
    other.delete()
    with pytest.raises(JobNotFound):
        job.refresh()


def test_pipeline_writes_are_atomic_with_the_callers(connection: redis.Redis) -> None:
    job = make(connection)
    with connection.pipeline() as pipe:
        job.save(pipeline=pipe)
        pipe.set("app:other", "1")
        assert not connection.exists(job.key)
        pipe.execute()
    assert connection.exists(job.key)
    with connection.pipeline() as pipe:
        job.disable(pipeline=pipe)
        pipe.execute()
    assert RedisCronJob.fetch(job.id, connection).enabled is False
    with connection.pipeline() as pipe:
        job.delete(pipeline=pipe)
        pipe.execute()
    assert not connection.exists(job.key)


def test_set_enqueue_time(connection: redis.Redis) -> None:
    from rediscron.clock import from_epoch

    job = make(connection)
    job.save()
    job.set_enqueue_time(from_epoch(NOW + 5))
    stored = RedisCronJob.fetch(job.id, connection)
    assert stored.latest_enqueue_time == from_epoch(NOW + 5)
    assert connection.zscore(k.schedule(), job.id) == int(NOW) + 5 + 300


def test_decode_responses_client(text_connection: redis.Redis) -> None:
    job = make(text_connection)
    job.save()
    fetched = RedisCronJob.fetch(job.id, text_connection)
    assert fetched.args == ("pm25",)
    fetched.disable()
    fetched.enable()
    fetched.delete()


def test_enqueue_now_does_not_touch_schedule(connection: redis.Redis) -> None:
    job = make(connection)
    job.save()
    before = connection.zscore(k.schedule(), job.id)
    rq_job = job.enqueue(connection)
    assert rq_job.meta["rediscron_id"] == job.id
    assert rq_job.meta["rediscron_slot"] is None
    assert rq_job.meta["rediscron_trigger"] is True
    assert rq_job.id.startswith("cron-") and "-manual-" in rq_job.id
    again = job.trigger()
    assert [e.rq_job_id for e in job.get_history()] == [again.id, rq_job.id]
    assert {e.slot for e in job.get_history()} == {None}
    assert connection.lrange("rq:queue:metrics", 0, -1) == [rq_job.id.encode(), again.id.encode()]
    assert connection.zscore(k.schedule(), job.id) == before
    # rq's own cron registry is never written.
    assert not connection.exists("rq:cron_jobs")
