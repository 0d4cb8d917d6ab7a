"""Bad input and corrupt records: clear errors naming the job and field, nothing written, no crash."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
import redis

from rediscron import CorruptJobError, InvalidJobError, RedisCronJob, RedisCronScheduler
from rediscron import keys as k
from rediscron.schedule import MAX_INTERVAL
from tests import jobs

T0 = 1_900_000_800


@pytest.fixture
def clock() -> list[float]:
    return [T0 + 0.5]


@pytest.fixture
def scheduler(connection: redis.Redis, clock: list[float]) -> Any:
    s = RedisCronScheduler(connection, name="s", clock=lambda: clock[0], logging_level="CRITICAL")
    s.register(jobs.noop, "good", id="a_good", interval=60)
    s.register(jobs.noop, "good", id="z_good", interval=60)
    s.register_birth()
    yield s
    s.register_death()


def good_fired(connection: redis.Redis) -> int:
    return int(connection.llen("rq:queue:good"))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"interval": MAX_INTERVAL + 1}, "interval"),
        ({"interval": 10**12}, "interval"),
        ({"interval": 60, "ttl": 0}, "ttl"),
        ({"interval": 60, "ttl": -1}, "ttl"),
        ({"interval": 60, "job_timeout": 0}, "job_timeout"),
        ({"interval": 60, "args": [{1: "a", "1": "b"}]}, "args"),
        ({"interval": 60, "kwargs": {"k": {True: 1}}}, "kwargs"),
        ({"interval": 60, "meta": {"rediscron_id": "x"}}, "meta"),
        ({"interval": None, "cron": "R R * * *"}, "cron"),
        ({"interval": None, "cron": "H/5 * * * *"}, "cron"),
    ],
)
def test_refused_before_anything_is_written(scheduler: Any, connection: redis.Redis, kwargs: dict[str, Any],
                                            field: str) -> None:
    with pytest.raises(InvalidJobError) as info:
        scheduler.register(jobs.noop, "q", id="bad", **kwargs)
    assert (info.value.job_id, info.value.field) == ("bad", field)
    assert not connection.exists(k.job("bad"))


def test_deep_nesting_and_surrogates(scheduler: Any) -> None:
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(InvalidJobError, match="nested more than 100 levels"):
        scheduler.register(jobs.noop, "q", id="bad", interval=60, args=(deep,))
    with pytest.raises(InvalidJobError) as info:
        scheduler.register(jobs.noop, "q", id="bad\ud800", interval=60)
    assert info.value.field == "id"
    with pytest.raises(InvalidJobError) as info:
        scheduler.register(jobs.noop, "q\ud800", id="bad", interval=60)
    assert info.value.field == "queue_name"


@pytest.mark.parametrize("func", [jobs.Holder, int, jobs.Holder.instance_method, "tests.jobs.Holder.instance_method",
                                  "tests.exiting_module.never", "tests.jobs"])
def test_functions_no_worker_could_run(scheduler: Any, func: Any) -> None:
    with pytest.raises(InvalidJobError) as info:
        scheduler.register(func, "q", id="bad", interval=60)
    assert info.value.field in ("func", "func_name")


def test_classmethods_are_fine(scheduler: Any) -> None:
    assert scheduler.register(jobs.Holder.class_method, "q", id="cm", interval=60).func_name == \
        "tests.jobs.Holder.class_method"


def test_bad_times(connection: redis.Redis, scheduler: Any) -> None:
    job = RedisCronJob.fetch("a_good", connection)
    job.next_enqueue_time = "tomorrow"  # type: ignore[assignment]
    with pytest.raises(InvalidJobError, match="next_enqueue_time"):
        job.save()
    job = RedisCronJob.fetch("a_good", connection)
    with pytest.raises(InvalidJobError, match="time"):
        job.set_enqueue_time("2020-01-01")  # type: ignore[arg-type]
    with pytest.raises(InvalidJobError, match="9000"):
        job.set_enqueue_time(datetime(9999, 12, 31, tzinfo=timezone.utc))


CORRUPTIONS: dict[str, dict[Any, Any]] = {
    "revision_text": {"revision": "x"},
    "revision_huge": {"revision": "9223372036854775807"},
    "args_not_utf8": {"args": b'["\xff"]'},
    "field_not_utf8": {b"\xff": "1"},
    "func_not_a_path": {"func_name": "__import__('os').system('true')"},
    "args_over_limit": {"args": "[" + "1," * 40_000 + "1]"},
    "enabled_maybe": {"enabled": "maybe"},
    "interval_spaces": {"interval": " 5 "},
    "id_elsewhere": {"id": "a_good"},
    "interval_huge": {"interval": str(10**12)},
}


def test_corrupt_records_are_quarantined_and_good_jobs_keep_firing(scheduler: Any,
                                                                  connection: redis.Redis) -> None:
    for name, change in CORRUPTIONS.items():
        scheduler.register(jobs.noop, "bad", id=name, interval=60)
        connection.hset(k.job(name), mapping=change)
    connection.zadd(k.schedule(), {b"\xfe\xff": 0})  # an index entry that is not text
    assert {"a_good", "z_good"} <= {j.id for j in scheduler.get_jobs()}
    scheduler.save()  # the scheduler hash lists the soonest jobs from the same index
    fired = scheduler.enqueue_jobs()
    assert sorted(j.id for j in fired) == ["a_good", "z_good"]
    invalid = scheduler.get_invalid_jobs()
    assert set(CORRUPTIONS) <= set(invalid), invalid
    assert "says 'a_good'" in invalid["id_elsewhere"]
    assert connection.llen("rq:queue:bad") == 0
    for name in CORRUPTIONS:
        assert connection.zscore(k.schedule(), name) == float("inf"), name
    listed = scheduler.get_all_jobs()
    assert {"a_good", "z_good"} <= {j.id for j in listed}
    assert all(j.last_error for j in listed if j.id not in ("a_good", "z_good"))
    assert scheduler.enqueue_jobs() == []  # nothing left due, and no spinning on the quarantined
    # The job named inside the copied hash is untouched; deleting the copy by its key is safe.
    with pytest.raises(CorruptJobError):
        RedisCronJob.fetch("id_elsewhere", connection)
    assert RedisCronJob.exists("a_good", connection)


def test_a_corrupt_revision_can_still_be_disabled_cleanly(scheduler: Any, connection: redis.Redis) -> None:
    connection.hset(k.job("a_good"), "revision", "x")
    job = RedisCronJob(id="a_good", queue_name="good", func=jobs.noop, interval=60, connection=connection)
    job.disable()
    assert connection.hget(k.job("a_good"), "enabled") == b"0"
    assert connection.hget(k.job("a_good"), "revision").isdigit()


def test_delete_and_recreate_between_read_and_fire_never_runs_the_old_definition(
    scheduler: Any, connection: redis.Redis
) -> None:
    scheduler.register(jobs.record, "q", id="x", args=["old"], interval=60)
    now, _marker, _upcoming, due = scheduler._tick()
    RedisCronJob.fetch("x", connection).delete()
    scheduler.register(jobs.record, "q2", id="x", args=["new"], interval=60)  # same second, same first slot
    fired, _ = scheduler._fire_due(now, due)
    assert "x" not in [j.id for j in fired]
    assert connection.llen("rq:queue:q") == 0
    assert [j.args for j in scheduler.enqueue_jobs() if j.id == "x"] == [("new",)]
    assert connection.llen("rq:queue:q2") == 1
