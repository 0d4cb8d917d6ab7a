"""The Registry against a real Redis: every operation from a connection alone, no scheduler built."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from rediscron import CorruptJobError, InvalidJobError, JobNotFound, RedisCronJob, RedisCronScheduler
from rediscron import keys as k
from rediscron.cli import main
from rediscron.registry import Registry
from tests import jobs

NOW = 1_900_000_020.0


@pytest.fixture
def registry(connection: redis.Redis) -> Registry:
    return Registry(connection, clock=lambda: NOW)


@pytest.fixture
def no_scheduler(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Building a scheduler fails: what runs under this fixture works without one."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a RedisCronScheduler was built")

    monkeypatch.setattr(RedisCronScheduler, "__init__", refuse)
    yield


def test_register_fetch_and_list(registry: Registry, no_scheduler: None) -> None:
    job = registry.register(jobs.record, "metrics", id="m:1", args=("pm25",), interval=60)
    assert job.revision > 0 and job.next_enqueue_time is not None
    registry.register("tests.jobs.noop", "other", id="m:0", cron="*/5 * * * *", enabled=False)
    assert [j.id for j in registry.jobs()] == ["m:0", "m:1"]
    assert [j.id for j in registry.scheduled()] == ["m:1"]  # the disabled one is not indexed
    fetched = registry.fetch("m:1")
    assert (fetched.func_name, fetched.args, fetched.interval) == ("tests.jobs.record", ("pm25",), 60)
    assert registry.exists("m:1") and not registry.exists("nope")


def test_register_conflicts(registry: Registry) -> None:
    registry.register(jobs.record, "metrics", id="c", interval=60)
    kept = registry.register(jobs.record, "metrics", id="c", interval=120, conflict="ignore")
    assert kept.interval == 60
    with pytest.raises(InvalidJobError, match="exists"):
        registry.register(jobs.record, "metrics", id="c", interval=120, conflict="raise")
    with pytest.raises(InvalidJobError) as refused:
        registry.register(jobs.record, "metrics", id="c", interval=120, conflict="merge")  # type: ignore[arg-type]
    assert refused.value.field == "conflict"


def test_update_changes_only_what_it_is_given(registry: Registry, connection: redis.Redis) -> None:
    registry.register(jobs.record, "metrics", id="u", args=("a",), interval=60, enabled=False)
    job = registry.update("u", args=["b"], description="nightly")
    assert job.args == ("b",) and job.description == "nightly"
    stored = registry.fetch("u")
    assert (stored.args, stored.interval, stored.enabled, stored.description) == (("b",), 60, False, "nightly")
    registry.update("u", func="tests.jobs.noop")
    assert registry.fetch("u").func_name == "tests.jobs.noop"
    with pytest.raises(InvalidJobError) as bad:
        registry.update("u", interval=-5)
    assert (bad.value.job_id, bad.value.field) == ("u", "interval")
    assert registry.fetch("u").interval == 60  # nothing written
    with pytest.raises(InvalidJobError, match="not changeable"):
        registry.update("u", id="other")


def test_update_never_brings_back_a_deleted_job(registry: Registry, connection: redis.Redis) -> None:
    registry.register(jobs.record, "metrics", id="gone", interval=60)
    registry.delete("gone")
    with pytest.raises(JobNotFound):
        registry.update("gone", interval=120)
    assert not connection.exists(k.job("gone"))


def test_enable_disable_delete(registry: Registry, connection: redis.Redis) -> None:
    registry.register(jobs.record, "metrics", id="t", interval=60)
    assert registry.disable("t").enabled is False
    assert connection.zscore(k.schedule(), "t") is None
    assert registry.enable("t").enabled is True
    assert connection.zscore(k.schedule(), "t") is not None
    assert registry.delete("t") is True
    assert registry.delete("t") is False
    with pytest.raises(JobNotFound):
        registry.enable("t")


def test_trigger_records_the_run_in_the_history(registry: Registry, connection: redis.Redis) -> None:
    registry.register(jobs.record, "metrics", id="tr", interval=60)
    rq_job = registry.trigger("tr")
    assert connection.exists(rq_job.key)
    history = registry.history(["tr"])["tr"]
    assert [entry.rq_job_id for entry in history] == [rq_job.id]


def test_register_many_writes_all_or_nothing(registry: Registry) -> None:
    specs = [{"func": jobs.record, "queue_name": "q", "id": f"b:{i}", "interval": 60} for i in range(3)]
    assert [job.id for job in registry.register_many(specs)] == ["b:0", "b:1", "b:2"]
    with pytest.raises(InvalidJobError) as bad:
        registry.register_many([*specs, {"func": jobs.record, "queue_name": "q", "id": "b:9", "interval": 0}])
    assert bad.value.job_id == "b:9"
    assert not registry.exists("b:9")


def test_register_many_builds_each_job_of_a_class_that_builds_its_own_way(connection: redis.Redis) -> None:
    built: list[str] = []

    class Checked(RedisCronJob):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            built.append(self.id)

    registry = Registry(connection, job_class=Checked, clock=lambda: NOW)
    specs = [{"func": jobs.record, "queue_name": "q", "id": f"c:{i}", "interval": 60, "args": (i,)} for i in range(3)]
    assert [list(job.args) for job in registry.register_many(specs)] == [[0], [1], [2]]
    assert built == ["c:0", "c:1", "c:2"]


def test_invalid_records_are_listed_not_raised(registry: Registry, connection: redis.Redis) -> None:
    registry.register(jobs.record, "metrics", id="ok", interval=60)
    connection.hset(k.job("broken"), mapping={"id": "broken", "queue_name": "q", "func_name": "not a path"})
    connection.sadd(k.ids(), "broken")
    assert [job.id for job in registry.jobs()] == ["ok"]
    assert "broken" in registry.invalid()
    with pytest.raises(CorruptJobError):
        registry.fetch("broken")


def test_enable_quarantined(registry: Registry, connection: redis.Redis) -> None:
    registry.register(jobs.record, "metrics", id="q", interval=60)
    connection.hset(k.job("q"), "last_error", "it broke")
    connection.zadd(k.schedule(), {"q": "+inf"})
    lifted, failed = registry.enable_quarantined()
    assert (lifted, failed) == (["q"], {})
    assert connection.zscore(k.schedule(), "q") != float("inf")
    assert not connection.hexists(k.job("q"), "last_error")


def test_the_cli_edits_without_building_a_scheduler(redis_url: str, no_scheduler: None) -> None:
    runner = CliRunner()
    for args in (
        ["add", "cli:1", "tests.jobs.noop", "-q", "default", "--interval", "60"],
        ["disable", "cli:1"],
        ["enable", "cli:1"],
        ["trigger", "cli:1"],
        ["rm", "cli:1"],
    ):
        result = runner.invoke(main, ["-u", redis_url, *args])
        assert result.exit_code == 0, (args, result.output)
