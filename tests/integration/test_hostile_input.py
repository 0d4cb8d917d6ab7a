"""Bad input and corrupt records: clear errors naming the job and field, nothing written, no crash."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
import redis

from rediscron import CorruptJobError, InvalidJobError, RedisCronJob, RedisCronScheduler
from rediscron import keys as k
from rediscron.job import rq_job_id
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
def test_refused_before_anything_is_written(
    scheduler: Any, connection: redis.Redis, kwargs: dict[str, Any], field: str
) -> None:
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


@pytest.mark.parametrize(
    "func",
    [
        jobs.Holder,
        int,
        jobs.Holder.instance_method,
        "tests.jobs.Holder.instance_method",
        "tests.exiting_module.never",
        "tests.jobs",
    ],
)
def test_functions_no_worker_could_run(scheduler: Any, func: Any) -> None:
    with pytest.raises(InvalidJobError) as info:
        scheduler.register(func, "q", id="bad", interval=60)
    assert info.value.field in ("func", "func_name")


def test_classmethods_are_fine(scheduler: Any) -> None:
    assert (
        scheduler.register(jobs.Holder.class_method, "q", id="cm", interval=60).func_name
        == "tests.jobs.Holder.class_method"
    )


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


def test_corrupt_records_are_quarantined_and_good_jobs_keep_firing(scheduler: Any, connection: redis.Redis) -> None:
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
    now, _marker, _upcoming, due = scheduler.dispatch.tick()
    RedisCronJob.fetch("x", connection).delete()
    scheduler.register(jobs.record, "q2", id="x", args=["new"], interval=60)  # same second, same first slot
    fired, _ = scheduler.dispatch.fire_due(now, due)
    assert "x" not in [j.id for j in fired]
    assert connection.llen("rq:queue:q") == 0
    assert [j.args for j in scheduler.enqueue_jobs() if j.id == "x"] == [("new",)]
    assert connection.llen("rq:queue:q2") == 1


# Keys of another type (or garbage) where rediscron or rq keep their books: one job's, or the
# scheduler's own bookkeeping. None of them may stop the other jobs, or the scheduler.
BOOKKEEPING: dict[str, Any] = {
    "history": lambda c: c.set(k.history("a_good"), "not a zset"),
    "newest run": lambda c: c.zadd(k.history("a_good"), {"cron-x-1": T0 - 60}) and c.set(k.rq_job("cron-x-1"), "x"),
    "failing set": lambda c: c.set(k.failing(), "x"),
    "totals": lambda c: c.set(k.stats(), "x"),
    "fires": lambda c: c.hset(k.fires(), "x", "y"),
    "revision counter": lambda c: c.set(k.revision(), "not a number"),
    "scheduler hash": lambda c: c.set("rq:cron_scheduler:s", "x"),
    "rq's registry": lambda c: c.set("rq:cron_schedulers", "x"),
}


@pytest.mark.parametrize("where", list(BOOKKEEPING))
def test_bookkeeping_keys_of_another_type_stop_nothing(
    scheduler: Any, connection: redis.Redis, clock: list[float], where: str
) -> None:
    BOOKKEEPING[where](connection)
    for _ in range(3):
        scheduler.heartbeat()
        fired = {j.id for j in scheduler.enqueue_jobs()}
        assert fired == {"a_good", "z_good"}, (where, fired)
        clock[0] += 60
    assert good_fired(connection) == 6
    # Writers go on too (a broken revision counter is restarted above any value it had).
    scheduler.register(jobs.noop, "good", id="later", interval=60)
    assert RedisCronJob.fetch("later", connection).revision > 0


def test_a_queue_key_of_another_type_quarantines_its_jobs_only(scheduler: Any, connection: redis.Redis) -> None:
    scheduler.register(jobs.noop, "broken", id="on_broken", interval=60)
    connection.set("rq:queue:broken", "not a list")
    assert {j.id for j in scheduler.enqueue_jobs()} == {"a_good", "z_good"}
    error = connection.hget(k.job("on_broken"), "last_error").decode()  # type: ignore[union-attr]
    assert "refused the enqueue" in error and "WRONGTYPE" in error
    assert not connection.exists(k.rq_job(rq_job_id("on_broken", T0)))  # nothing half-enqueued left behind
    assert connection.zscore(k.schedule(), "on_broken") == float("inf")
    assert connection.llen("rq:queue:good") == 2


def test_an_absurd_fencing_epoch_in_the_lock_breaks_nothing(connection: redis.Redis, clock: list[float]) -> None:
    connection.set(k.lock(), "99999999999999999999999|token|ghost", px=50)
    s = RedisCronScheduler(connection, name="after", clock=lambda: clock[0], logging_level="CRITICAL")
    from rediscron.errors import SchedulerLockedError

    with pytest.raises(SchedulerLockedError):
        s.register_birth()
    import time

    time.sleep(0.1)
    s.register_birth()  # the epoch counter stays a whole number
    assert s.lock_epoch is not None and s.lock_epoch < 2**53
    s.register_death()
    connection.set(k.lock_epoch(), "1e+23")
    s.register_birth()
    assert s.lock_epoch is not None and s.lock_epoch < 2**53
    s.register_death()


@pytest.mark.parametrize(
    "garbage",
    [
        {"history member": ("zadd", k.history("a_good"), {"cron-abc-²": T0})},
        {"history score": ("zadd", k.history("a_good"), {"cron-abc-1": float("inf")})},
        {"huge history score": ("zadd", k.history("a_good"), {"cron-abc-2": 1e300})},
        {"lock bytes": ("set", k.lock(), b"\xff\xfe|tok|x")},
        {"lock epoch digits": ("set", k.lock(), "²|tok|x")},
        {"totals digits": ("hset", k.stats(), "overlap_skipped", "١٢")},
        {"failing score": ("zadd", k.failing(), {"x": float("inf")})},
        {"fires": ("lpush", k.fires(), "inf inf")},
        {"heartbeat": ("zadd", "rq:cron_schedulers", {"x": float("-inf")})},
    ],
)
def test_viewers_never_crash_on_garbage(connection: redis.Redis, redis_url: str, garbage: dict[str, Any]) -> None:
    import json

    from click.testing import CliRunner

    from rediscron.cli import main

    RedisCronScheduler(connection, logging_level="CRITICAL").register(jobs.noop, "good", id="a_good", interval=60)
    [(command, key, *rest)] = garbage.values()
    getattr(connection, command)(key, *rest)
    for args in (
        ["info"],
        ["info", "--json"],
        ["show", "a_good"],
        ["show", "a_good", "--json"],
        ["history", "a_good"],
        ["status"],
        ["status", "--json"],
        ["export"],
    ):
        result = CliRunner().invoke(main, ["-u", redis_url, *args])
        assert result.exit_code in (0, 1), (garbage, args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), (garbage, args, result.output)
        if "--json" in args:
            assert "Infinity" not in result.output and "NaN" not in result.output, (args, result.output)
            json.loads(result.output)
    RedisCronJob.fetch("a_good", connection).get_stats()


@pytest.mark.parametrize("pid", ["²", "99999999999999999999", "-5"])
def test_a_lock_holder_with_an_odd_pid_is_waited_out_not_a_crash(connection: redis.Redis, pid: str) -> None:
    import os
    import socket

    from rediscron.errors import SchedulerLockedError

    connection.set(k.lock(), "7|tok|ghost", px=5000)
    connection.hset(
        "rq:cron_scheduler:ghost",
        mapping={
            "hostname": socket.gethostname(),
            "pid": pid,
            "pid_namespace": str(os.stat("/proc/self/ns/pid").st_ino),
        },
    )
    with pytest.raises(SchedulerLockedError):
        RedisCronScheduler(connection, name="next", logging_level="CRITICAL").register_birth()


def test_json_listings_cut_a_huge_error(connection: redis.Redis, redis_url: str) -> None:
    import json

    from click.testing import CliRunner

    from rediscron.cli import main

    RedisCronScheduler(connection, logging_level="CRITICAL").register(jobs.noop, "good", id="a", interval=60)
    connection.hset(k.job("a"), "last_error", "x" * 1_000_000)
    for args in (["info", "--json"], ["show", "a", "--json"]):
        result = CliRunner().invoke(main, ["-u", redis_url, *args])
        assert len(result.output) < 10_000, args
        json.loads(result.output)
