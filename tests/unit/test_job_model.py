"""RedisCronJob validation and serialisation: pure, no Redis."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from rq.cron import CronJob

from rediscron import CorruptJobError, InvalidJobError, RedisCronJob
from rediscron.fields import OPTIONS
from rediscron.imports import callable_path
from rediscron.job import rq_job_id
from tests import jobs


def make(**overrides: Any) -> RedisCronJob:
    params: dict[str, Any] = {"id": "j1", "queue_name": "default", "func": jobs.noop, "interval": 60}
    params.update(overrides)
    return RedisCronJob(**params)


def refused(field: str, **overrides: Any) -> InvalidJobError:
    with pytest.raises(InvalidJobError) as info:
        make(**overrides)
    assert info.value.field == field
    assert "j1" in str(info.value) or field == "id"
    return info.value


def test_is_an_rq_cron_job() -> None:
    job = make()
    assert isinstance(job, CronJob)
    assert job.func_name == "tests.jobs.noop"
    assert job.key == "rq:cron_job:j1"


class TestValidation:
    def test_both_or_neither_schedule(self) -> None:
        refused("interval/cron", cron="* * * * *")
        refused("interval/cron", interval=None)

    @pytest.mark.parametrize("interval", [0, -1, 2.5, "60", True])
    def test_bad_interval(self, interval: object) -> None:
        refused("interval", interval=interval)

    def test_bad_cron(self) -> None:
        err = refused("cron", interval=None, cron="not a cron")
        assert "not a cron" in str(err)

    def test_lambda(self) -> None:
        err = refused("func", func=lambda: None)
        assert "lambda" in str(err)

    def test_nested_function(self) -> None:
        def inner() -> None:
            pass

        assert "module level" in str(refused("func", func=inner))

    def test_main_function(self) -> None:
        def fake() -> None:
            pass

        fake.__module__ = "__main__"
        fake.__qualname__ = "fake"
        assert "__main__" in str(refused("func", func=fake))

    def test_not_callable(self) -> None:
        refused("func", func=42)

    def test_func_name_must_import(self) -> None:
        refused("func_name", func=None, func_name="tests.jobs.does_not_exist")
        refused("func_name", func=None, func_name="no_such_module_xyz.f")
        refused("func_name", func=None, func_name="not a path")

    def test_func_name_accepted(self) -> None:
        job = make(func=None, func_name="tests.jobs.record")
        assert job.func_name == "tests.jobs.record"
        assert make(func="tests.jobs.record").func_name == "tests.jobs.record"

    def test_static_method(self) -> None:
        assert callable_path(jobs.Tasks.static_task, "x") == "tests.jobs.Tasks.static_task"

    def test_function_replaced_after_it_was_checked(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # callable_path remembers functions it checked; a module attribute rebound since must still refuse.
        original = jobs.record
        assert callable_path(original, "x") == "tests.jobs.record"
        monkeypatch.setattr(jobs, "record", lambda *a: None)
        assert "does not resolve" in str(refused("func", func=original))
        monkeypatch.setattr(jobs, "record", original)
        assert callable_path(original, "x") == "tests.jobs.record"

    def test_option_defaults_are_valid_and_normal(self) -> None:
        # normalise() skips the check of an option left at its default object.
        for name, option in OPTIONS.items():
            assert option.check(option.default, "x", name) == option.default, name

    def test_args_must_be_json(self) -> None:
        refused("args", args=(object(),))
        refused("args", args="abc")
        refused("kwargs", kwargs={"x": {1, 2}})
        refused("kwargs", kwargs={1: "x"})
        refused("meta", meta={"when": datetime.now()})
        refused("args", args=(float("nan"),))

    @pytest.mark.parametrize("job_id", ["", "a\tb", "x\n", "\x1b[2J", "a\x85b", "ends:jobs", "x" * 201, None, 5])
    def test_bad_id(self, job_id: object) -> None:
        refused("id", id=job_id)

    @pytest.mark.parametrize("job_id", ["Report: Q3 sales", " padded ", "émoji 📈", "中文", "x" * 200])
    def test_ids_are_any_text_without_control_characters(self, job_id: str) -> None:
        assert make(id=job_id).id == job_id

    def test_arguments_are_limited_in_size(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from rediscron import limits

        make(args=("x" * 60_000,), kwargs={"k": "y" * 4000})  # just under 64 KiB
        error = refused("args/kwargs/meta", args=("x" * 60_000,), meta={"k": "y" * 6000})
        assert "66,0" in error.message and "65,536" in error.message
        refused("args/kwargs/meta", kwargs={"k": "é" * 33_000})  # counted in UTF-8 bytes
        monkeypatch.setattr(limits, "MAX_ARGUMENTS_BYTES", 100)
        refused("args/kwargs/meta", args=("x" * 100,))
        data = {k: str(v) for k, v in make(args=("x" * 90,)).to_dict().items()}
        data["kwargs"] = '{"k": "' + "y" * 20 + '"}'
        with pytest.raises(CorruptJobError, match="over the limit"):
            RedisCronJob.restore(data)

    @pytest.mark.parametrize("queue", ["", "a b", None])
    def test_bad_queue(self, queue: object) -> None:
        refused("queue_name", queue_name=queue)

    @pytest.mark.parametrize("field", ["job_timeout", "result_ttl", "ttl", "failure_ttl"])
    def test_bad_ttls(self, field: str) -> None:
        refused(field, **{field: -2})
        refused(field, **{field: "10"})


class TestSerialisation:
    def test_round_trip_keeps_every_value(self) -> None:
        when = datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
        job = make(
            args=("a", 1, [2, 3]),
            kwargs={"meta": 1, "ttl": "x", "job_id": "y"},
            meta={"owner": "ops"},
            job_timeout=30,
            result_ttl=0,
            ttl=60,
            failure_ttl=None,
            latest_enqueue_time=when,
            next_enqueue_time=when,
            created_at=when,
            updated_at=when,
            enabled=False,
        )
        data = {k: str(v) for k, v in job.to_dict().items()}
        back = RedisCronJob.restore(data)
        assert back.args == ("a", 1, [2, 3])
        assert back.kwargs == {"meta": 1, "ttl": "x", "job_id": "y"}
        assert back.meta == {"owner": "ops"}
        assert (back.job_timeout, back.result_ttl, back.ttl, back.failure_ttl) == (30, 0, 60, None)
        assert back.enabled is False
        assert back.latest_enqueue_time == when == back.next_enqueue_time == back.created_at
        assert back.to_dict() == job.to_dict()

    def test_result_ttl_none_stays_none(self) -> None:
        job = make(result_ttl=None)
        assert "result_ttl" not in job.to_dict()
        assert RedisCronJob.restore({k: str(v) for k, v in job.to_dict().items()}).result_ttl is None

    def test_bytes_hash_is_accepted(self) -> None:
        data = {k.encode(): str(v).encode() for k, v in make().to_dict().items()}
        assert RedisCronJob.restore(data).id == "j1"

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("cron", "nope"),
            ("args", "{bad json"),
            ("interval", "soon"),
            ("kwargs", "[1]"),
            ("func_name", "tests.jobs:gone"),
            ("next_enqueue_time", "yesterday"),
            ("schema_version", "99"),
        ],
    )
    def test_corrupt_record_names_job(self, field: str, value: str) -> None:
        data = {k: str(v) for k, v in make().to_dict().items()}
        data[field] = value
        if field == "cron":
            data.pop("interval")
        with pytest.raises(CorruptJobError, match="j1"):
            RedisCronJob.restore(data)

    def test_missing_field(self) -> None:
        data = {k: str(v) for k, v in make().to_dict().items()}
        del data["queue_name"]
        with pytest.raises(CorruptJobError, match="queue_name"):
            RedisCronJob.restore(data)

    def test_restore_never_imports_the_function(self) -> None:
        data = {k: str(v) for k, v in make().to_dict().items()}
        data["func_name"] = "somewhere.else.entirely"
        job = RedisCronJob.restore(data)
        assert job.func is None
        assert job.func_name == "somewhere.else.entirely"
        assert job.last_error is None and job.state() == "enabled"

    def test_rq_monitoring_form(self) -> None:
        data = make(args=("x",)).to_rq_dict()
        back = CronJob.from_dict(data)
        assert back.func_name == "tests.jobs.noop"
        assert back.interval == 60


def test_rq_job_id_is_deterministic_and_valid() -> None:
    a = rq_job_id("metric:pm25", 1800000000)
    assert a == rq_job_id("metric:pm25", 1800000000)
    assert a != rq_job_id("metric:pm25", 1800000060)
    assert a != rq_job_id("metric:pm26", 1800000000)
    assert all(c.isalnum() or c in "-_" for c in a)
