"""A job read by its shape (`RedisCronJob._like`) is the job `restore()` reads, and fails as it fails."""

from __future__ import annotations

from typing import Any

import pytest

from rediscron import CorruptJobError, RedisCronJob, limits
from rediscron.record import shape_key
from tests.unit.test_fields import sample_job

#: What tells jobs of one shape apart: none, all, and each alone.
PER_JOB = [
    {"args": (), "kwargs": {}, "meta": None},
    {"args": ("other", {"nested": [1, 2.5, None, True]}), "kwargs": {"x": "é"}, "meta": {"who": "ops2"}},
    {"args": ("pm10",)},
    {"kwargs": {"a": {"b": []}}},
    {"meta": {"tenant": 42}},
]
SCHEDULES = [{}, {"interval": None, "cron": "0 3 * * *", "jitter": 0}, {"enabled": True, "labels": None}]


def record_of(job: RedisCronJob, **state: str) -> dict[str, str]:
    return {key: str(value) for key, value in job.to_dict().items()} | state


def comparable(value: Any) -> Any:
    """Attributes as values: objects without an equality of their own (rq's webhooks) by their attributes."""
    if isinstance(value, dict):
        return {key: comparable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(comparable(item) for item in value)
    if hasattr(value, "__dict__") and type(value).__eq__ is object.__eq__:
        return (type(value), comparable(vars(value)))
    return value


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("per_job", PER_JOB)
def test_a_job_read_by_its_shape_is_the_job_restored(schedule: dict[str, Any], per_job: dict[str, Any]) -> None:
    seen = record_of(sample_job(**schedule), revision="3", run_count="2")
    other = record_of(
        sample_job(id="fields:other", **schedule, **per_job),
        revision="9",
        run_count="5",
        drop_log='[{"at": "x"}]',
        latest_enqueue_time="2030-01-02T03:04:05.000000Z",
    )
    assert shape_key(seen) == shape_key(other)
    fast = RedisCronJob.restore(seen)._like(other, "fields:other")
    full = RedisCronJob.restore(other, id="fields:other")
    assert comparable(vars(fast)) == comparable(vars(full))
    assert fast.meta is fast.job_options.get("meta")  # one object, as restore() makes it


def test_what_a_caller_changes_in_place_stays_its_own() -> None:
    seen = RedisCronJob.restore(record_of(sample_job()))
    fast = seen._like(record_of(sample_job(id="fields:other")), "fields:other")
    fast.kwargs["k"] = "changed"
    fast.labels["env"] = "changed"
    assert seen.kwargs == {"k": "v"} and seen.labels == {"env": "prod", "team": "billing"}


@pytest.mark.parametrize(
    "bad",
    [
        {"args": "["},
        {"args": '{"a": 1}'},
        {"kwargs": "[1]"},
        {"meta": '{"rediscron_slot": 1}'},
        {"args": "[" * 200 + "]" * 200},
        {"args": '["' + "x" * limits.MAX_ARGUMENTS_BYTES + '"]'},
        {"id": "someone:else"},
        {"latest_enqueue_time": "not a time"},
        {"next_enqueue_time": "1969-12-31T00:00:00.000000Z"},
    ],
)
def test_a_bad_record_fails_as_restore_fails(bad: dict[str, str]) -> None:
    fails_alike(record_of(sample_job(id="fields:other")) | bad, "fields:other")


def test_an_invalid_id_fails_as_restore_fails() -> None:
    fails_alike({key: value for key, value in record_of(sample_job()).items() if key != "id"}, "bad\nid")


def fails_alike(other: dict[str, str], job_id: str) -> None:
    """Read by the shape of a good record, ``other`` fails with the very error `restore()` raises."""
    seen = RedisCronJob.restore(record_of(sample_job()))
    with pytest.raises(CorruptJobError) as full:
        RedisCronJob.restore(other, id=job_id)
    with pytest.raises(CorruptJobError) as fast:
        seen._like(other, job_id)
    assert str(fast.value) == str(full.value)


def test_a_job_changed_in_place_after_its_read_changes_no_later_read() -> None:
    from rediscron.cronjob import ByShape

    reads = ByShape(RedisCronJob)
    first = reads.restore(record_of(sample_job()), "fields:all")
    assert first.labels is not None
    first.labels["env"] = "changed"
    later = reads.restore(record_of(sample_job(id="fields:other")), "fields:other")
    assert later.labels == {"env": "prod", "team": "billing"}
