"""A job read by its shape (`RedisCronJob._like`) is the job `restore()` reads, and fails as it fails."""

from __future__ import annotations

from typing import Any

import pytest

from rediscron import CorruptJobError, InvalidJobError, RedisCronJob, limits
from rediscron.cronjob import BuiltByShape
from rediscron.record import shape_key
from tests.unit.test_fields import SAMPLES, sample_job

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


# -- jobs built by their shape (`cronjob.BuiltByShape`, what register_many() builds with) --------------


def arguments_of(**overrides: Any) -> dict[str, Any]:
    """What sample_job() gives the constructor, by name."""
    values = {name: value for name, value in SAMPLES.items() if value is not None} | overrides
    return {"func": values.pop("func_name"), **values}


def built(**arguments: Any) -> RedisCronJob:
    return RedisCronJob(**arguments)


def without_fields(job: RedisCronJob) -> dict[str, Any]:
    return comparable({name: value for name, value in vars(job).items() if name != "_built_fields"})


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("per_job", PER_JOB)
def test_a_job_built_by_its_shape_is_the_job_built(schedule: dict[str, Any], per_job: dict[str, Any]) -> None:
    build = BuiltByShape(built)
    first = build(arguments_of(**schedule))
    given = arguments_of(id="fields:other", **schedule, **per_job)
    fast = build(given)
    full = RedisCronJob(**given)
    assert fast._built_fields is not None  # it was built by its shape
    assert without_fields(fast) == without_fields(full)
    assert fast._definition_fields(validate=False) == full._definition_fields()
    assert fast.meta is fast.job_options.get("meta")
    assert first._definition_fields() == RedisCronJob(**arguments_of(**schedule))._definition_fields()


def test_a_job_given_no_per_job_arguments_takes_their_defaults() -> None:
    build = BuiltByShape(built)
    build(arguments_of())
    given = {name: value for name, value in arguments_of(id="fields:bare").items() if name not in ("args", "meta")}
    fast, full = build(given), RedisCronJob(**given)
    assert without_fields(fast) == without_fields(full)
    assert fast._definition_fields(validate=False) == full._definition_fields()


@pytest.mark.parametrize(
    "bad",
    [
        {"args": "not a list"},
        {"args": (object(),)},
        {"kwargs": {1: "x"}},
        {"meta": {"rediscron_slot": 1}},
        {"args": ("x" * limits.MAX_ARGUMENTS_BYTES,)},
        {"id": "bad\nid"},
        {"id": None, "name": 7},
        {"id": "a", "name": "b"},
    ],
)
def test_a_bad_job_of_a_known_shape_fails_as_a_full_build_fails(bad: dict[str, Any]) -> None:
    build = BuiltByShape(built)
    build(arguments_of())
    given = arguments_of(**bad)
    with pytest.raises(InvalidJobError) as full:
        RedisCronJob(**given)
    with pytest.raises(InvalidJobError) as fast:
        build(given)
    assert str(fast.value) == str(full.value)


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ({"interval": 60}, {"interval": True}),  # equal in Python, refused by the check
        ({"jitter": 5}, {"jitter": 5.0}),
        ({"misfire_grace_time": 90}, {"misfire_grace_time": 90.5}),
        ({"labels": {"team": "a"}}, {"labels": {"team": 1}}),
        ({"retry": {"max": 3}}, {"retry": {"max": True}}),
    ],
)
def test_values_equal_in_python_but_not_type_for_type_are_another_shape(
    first: dict[str, Any], then: dict[str, Any]
) -> None:
    build = BuiltByShape(built)
    build(arguments_of(**first))
    given = arguments_of(id="fields:other", **then)
    try:
        full: RedisCronJob | InvalidJobError = RedisCronJob(**given)
    except InvalidJobError as exc:
        full = exc
    if isinstance(full, InvalidJobError):
        with pytest.raises(InvalidJobError, match=full.field):
            build(given)
    else:
        assert without_fields(build(given)) == without_fields(full)


def test_an_argument_changed_in_place_between_two_jobs_is_another_shape() -> None:
    from rq import Retry

    build = BuiltByShape(built)
    labels, retry = {"team": "a"}, Retry(max=2)
    build(arguments_of(labels=labels, retry=retry))
    labels["team"] = "b"
    later = build(arguments_of(id="fields:other", labels=labels, retry=retry))
    assert later.labels == {"team": "b"} and later.retry == {"max": 2, "interval": [0]}
    retry.max = 5
    later = build(arguments_of(id="fields:other", labels=labels, retry=retry))
    assert later.labels == {"team": "b"} and later.retry == {"max": 5, "interval": [0]}
    labels["team"] = "bad\nvalue"
    with pytest.raises(InvalidJobError, match="labels"):
        build(arguments_of(id="fields:third", labels=labels))


def test_a_built_job_changed_by_its_caller_changes_no_later_one() -> None:
    build = BuiltByShape(built)
    first = build(arguments_of())
    assert first.labels is not None
    first.labels["env"] = "changed"
    first.kwargs["k"] = "changed"
    later = build(arguments_of(id="fields:other"))
    assert later.labels == {"env": "prod", "team": "billing"} and later.kwargs == {"k": "v"}
    assert (
        later._definition_fields(validate=False) == RedisCronJob(**arguments_of(id="fields:other"))._definition_fields()
    )


def test_a_job_changed_after_it_was_built_by_its_shape_is_validated_again() -> None:
    build = BuiltByShape(built)
    build(arguments_of())
    job = build(arguments_of(id="fields:other"))
    job.description = "changed"
    assert job.to_dict()["description"] == "changed"
    assert job._built_fields is None  # validated again: its fields are its own
