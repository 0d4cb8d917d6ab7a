"""fields.FIELDS is the one declaration of a job's fields: every place that takes or keeps a field is
derived from it or held to it here, so a field added in one place and missed in another fails a test."""

from __future__ import annotations

import inspect
from datetime import datetime, timezone
from typing import Any

import pytest

from rediscron import RedisCronJob, RedisCronScheduler
from rediscron.cli import ADD_OPTIONS
from rediscron.fields import FIELDS
from rediscron.options import Webhook
from rediscron.registry import REGISTER_ARGUMENTS, Registry
from rediscron.sync import FILE_KEYS, _job_from_entry, entry_of

#: A value other than the default for every field (a new field needs one here).
SAMPLES: dict[str, Any] = {
    "id": "fields:all",
    "func_name": "tests.jobs.record",
    "queue_name": "reports",
    "interval": 3600,
    "cron": None,  # interval and cron exclude each other: the cron sample is below
    "args": ("pm25", 2, [3]),
    "kwargs": {"k": "v"},
    "meta": {"owner": "ops"},
    "job_timeout": 30,
    "result_ttl": 0,
    "ttl": 60,
    "failure_ttl": 120,
    "enabled": False,
    "timezone": "Europe/Berlin",
    "misfire_grace_time": 90,
    "catchup": "all",
    "overlap": "skip",
    "jitter": 5,
    "start_time": datetime(2030, 1, 1, tzinfo=timezone.utc),
    "end_time": datetime(2031, 1, 1, tzinfo=timezone.utc),
    "max_runs": 7,
    "max_consecutive_failures": 3,
    "description": "nightly report",
    "labels": {"env": "prod", "team": "billing"},
    "retry": {"max": 3, "interval": [10, 60]},
    "at_front": True,
    "on_success": "tests.jobs.noop",
    "on_failure": {"func": "tests.jobs.noop", "timeout": 30},
    "on_stopped": "tests.jobs.record",
    "queue_class": "tests.custom_rq.AuditQueue",
    "job_class": "tests.custom_rq.AuditJob",
    "serializer": "rq.serializers.JSONSerializer",
    "webhooks": [{"url": "https://example.com/hook", "job_status": "failed"}] if Webhook is not None else None,
}
#: Arguments of the job's constructor and of register() that are not fields of the definition.
CONSTRUCTOR_EXTRAS = {"func", "name", "connection", "latest_enqueue_time", "next_enqueue_time", "created_at",
                      "updated_at"}  # fmt: skip
REGISTER_EXTRAS = {"func", "name", "positional", "conflict"}


def sample_job(**overrides: Any) -> RedisCronJob:
    values = {name: value for name, value in SAMPLES.items() if value is not None} | overrides
    return RedisCronJob(func=values.pop("func_name"), **values)


def test_every_field_has_a_sample() -> None:
    assert set(SAMPLES) == set(FIELDS)


def test_the_constructor_takes_every_field_with_its_default() -> None:
    parameters = inspect.signature(RedisCronJob.__init__).parameters
    taken = set(parameters) - {"self"} - CONSTRUCTOR_EXTRAS
    assert taken == set(FIELDS)
    for name, field in FIELDS.items():
        assert parameters[name].default == field.default, name


def test_register_takes_every_field_with_its_default() -> None:
    parameters = inspect.signature(RedisCronScheduler.register).parameters
    assert set(parameters) - {"self"} - REGISTER_EXTRAS == set(FIELDS) - {"func_name"}  # given as func
    for name, field in FIELDS.items():
        # Given as func; required (by position); register()'s enabled=None keeps the stored state.
        if name not in ("func_name", "queue_name", "enabled"):
            assert parameters[name].default == field.default, name
    assert parameters["enabled"].default is None
    assert {"func", "name", *FIELDS} == REGISTER_ARGUMENTS


def test_registry_register_takes_every_field() -> None:
    registry = Registry.__new__(Registry)
    assert "definition" in inspect.signature(registry.register).parameters  # every field, by name


@pytest.mark.parametrize("schedule", [{}, {"interval": None, "cron": "0 3 * * *", "jitter": 0}])
def test_every_field_survives_the_stored_record(schedule: dict[str, Any]) -> None:
    job = sample_job(**schedule)
    stored = {key: str(value) for key, value in job.to_dict().items()}
    for name, field in FIELDS.items():
        if field.stored(getattr(job, name)):
            assert name in stored, name
    back = RedisCronJob.restore(stored)
    for name in FIELDS:
        assert getattr(back, name) == getattr(job, name), name


def test_a_field_left_at_its_default_is_read_back_as_the_default() -> None:
    job = RedisCronJob(id="plain", queue_name="q", func="tests.jobs.noop", interval=60)
    back = RedisCronJob.restore({key: str(value) for key, value in job.to_dict().items()})
    for name in FIELDS:
        assert getattr(back, name) == getattr(job, name), name


def test_every_field_survives_a_schedules_file() -> None:
    assert tuple(field.key for field in FIELDS.values()) == FILE_KEYS
    job = sample_job()
    entry = entry_of(job)
    assert set(entry) == {FIELDS[name].key for name, value in SAMPLES.items() if value is not None}
    back = _job_from_entry(entry, None, 1)  # type: ignore[arg-type]
    for name in FIELDS:
        assert getattr(back, name) == getattr(job, name), name


def test_rqrcron_add_has_an_option_for_every_field() -> None:
    assert set(ADD_OPTIONS) == set(FIELDS) - {"id", "func_name"}  # the command's two arguments
