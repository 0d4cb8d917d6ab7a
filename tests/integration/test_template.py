"""Runs filled in from a template are exactly what rq writes: command for command, byte for byte.

A template is captured once per definition with rq itself (`rediscron.template`); each run is
the template with its RQ job id, its times and its slot filled in. These tests build the same run
both ways, on the rq installed (the CI matrix runs the oldest and the newest supported rq).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
import rq
from rq import Callback, Retry
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.utils import utcformat

from rediscron import RedisCronJob, RedisCronScheduler
from rediscron.job import rq_job_id
from rediscron.runs import RunSource
from rediscron.template import (
    PER_JOB_FIELDS,
    SHAPE_FIELDS,
    FilledRun,
    RunTemplate,
    Sample,
    Templates,
    build_run,
    lay_out,
    shape_of,
)
from tests import jobs
from tests.custom_rq import AuditJob, AuditQueue, NonceJob, OwnerJob
from tests.integration.test_policies import Clock

T0 = 1_900_000_800
SLOT = 1_900_000_860

DEFINITIONS: dict[str, dict[str, Any]] = {
    "plain": {},
    "arguments": {"args": (1, "two", [3.5, None]), "kwargs": {"k": {"nested": True}}, "meta": {"team": "x"}},
    "rq options": {
        "job_timeout": 30,
        "result_ttl": 0,
        "ttl": 600,
        "failure_ttl": 86400,
        "description": "nightly report",
        "retry": Retry(max=3, interval=[10, 30]),
        "at_front": True,
    },
    "callbacks": {
        "on_success": Callback(jobs.on_success, timeout=5),
        "on_failure": "tests.jobs.on_success",
        "on_stopped": jobs.on_success,
    },
    "classes": {"queue_class": AuditQueue, "job_class": AuditJob},
    "json serializer": {"serializer": JSONSerializer, "args": ("a",)},
}


def _definition(name: str, connection: redis.Redis) -> RedisCronJob:
    options = DEFINITIONS[name]
    return RedisCronJob(
        id=f"template:{name}", queue_name="q", func=jobs.noop, interval=60, connection=connection, **options
    )


def _by_path(name: str, connection: redis.Redis, job_id: str | None = None, **changes: Any) -> RedisCronJob:
    """The definition ``name`` as the scheduler restores it: its function by dotted path, not imported."""
    options = {**DEFINITIONS[name], **changes}
    return RedisCronJob(
        id=job_id or f"template:{name}",
        queue_name="q",
        func="tests.jobs.noop",
        interval=60,
        connection=connection,
        **options,
    )


#: What another job of the same shape changes: its id, its arguments and its meta.
OTHER = {"args": ("other", 2, {"x": [1]}), "kwargs": {"flag": False}, "meta": {"team": "y", "n": 1}}


def _bytes(connection: redis.Redis, commands: list[list[Any]]) -> list[list[bytes]]:
    encoder = connection.get_encoder()
    return [[encoder.encode(arg) for arg in command] for command in commands]


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_a_run_from_the_template_is_byte_for_byte_rqs(connection: redis.Redis, name: str) -> None:
    job = _definition(name, connection)
    queue = job.make_queue(connection)
    template = RunTemplate.capture(connection, queue, job)
    assert template is not None
    rq_job, by_rq = build_run(connection, queue, job, SLOT)
    assert rq_job.created_at is not None and rq_job.enqueued_at is not None
    filled = template.run(SLOT, (utcformat(rq_job.created_at), utcformat(rq_job.enqueued_at)), template.parts(job))
    assert (filled.rq_id, filled.rq_key) == (by_rq.rq_id, by_rq.rq_key) == (rq_job_id(job.id, SLOT), rq_job.key)
    assert filled.commands == by_rq.commands
    assert _bytes(connection, filled.commands) == _bytes(connection, by_rq.commands)


def test_the_slot_and_id_are_the_runs_own(connection: redis.Redis) -> None:
    job = _definition("arguments", connection)
    queue = job.make_queue(connection)
    template = RunTemplate.capture(connection, queue, job)
    assert template is not None
    stamp = "2030-03-17T17:21:00.000000Z"
    run = template.run(SLOT, (stamp, stamp), template.parts(job))
    pipe = connection.pipeline(transaction=False)
    for command in run.commands:
        pipe.execute_command(*command)
    pipe.execute()
    stored = Job.fetch(run.rq_id, connection=connection)
    assert stored.meta == {"team": "x", "rediscron_id": job.id, "rediscron_slot": SLOT}
    assert (stored.args, stored.kwargs) == ([1, "two", [3.5, None]], {"k": {"nested": True}})
    assert stored.func_name == "tests.jobs.noop" and stored.origin == "q"
    assert utcformat(stored.created_at) == stamp
    assert connection.lrange("rq:queue:q", 0, -1) == [run.rq_id.encode()]


def test_a_job_whose_runs_vary_otherwise_gets_no_template(connection: redis.Redis) -> None:
    job = RedisCronJob(id="nonce", queue_name="q", func=jobs.noop, interval=60, job_class=NonceJob)
    assert RunTemplate.capture(connection, job.make_queue(connection), job) is None


def test_templates_learn_from_rqs_own_builds_and_forget_an_old_definition(connection: redis.Redis) -> None:
    job = _by_path("plain", connection)
    queue = job.make_queue(connection)
    templates = Templates()
    stamp = "2030-03-17T17:21:00.000000Z"
    built = [templates.build(connection, queue, job, "v1", SLOT + 60 * i, stamp) for i in range(3)]
    # The first two runs are rq's own (the second proves the template); the third is filled in.
    assert [rq_job is not None for rq_job, _run in built] == [True, True, False]
    assert len(templates) == 1
    assert [run.rq_id for _rq_job, run in built] == [rq_job_id(job.id, SLOT + 60 * i) for i in range(3)]
    edited = _by_path("plain", connection, job_timeout=99)
    rq_job, _run = templates.build(connection, edited.make_queue(connection), edited, "v2", SLOT + 180, stamp)
    assert rq_job is not None  # a new shape: built by rq again
    small = Templates(limit=2)
    for i in range(3):
        small.build(connection, queue, _by_path("plain", connection), f"k{i}", SLOT, stamp)
    assert len(small._learnt) == 1  # one shape: replaced, never more than the limit


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + 0.4)


@pytest.fixture
def scheduler(connection: redis.Redis, clock: Clock) -> Iterator[RedisCronScheduler]:
    s = RedisCronScheduler(
        connection, name="templates", clock=clock, lock_ttl=30, logging_level="WARNING", allow_import=("rq", "tests")
    )
    s.register_birth()
    yield s
    s.register_death()


def _fire(scheduler: RedisCronScheduler, clock: Clock, slot: int) -> None:
    clock.now = slot + 0.01
    scheduler.run_once()


def test_the_scheduler_fires_from_templates_and_an_edit_takes_effect_at_once(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    scheduler.register(jobs.noop, "q", id="t", args=("v1",), cron="* * * * * *")
    for second in range(1, 5):
        _fire(scheduler, clock, T0 + second)
    assert len(scheduler.dispatch.templates) == 1
    for second in range(1, 5):
        run = Job.fetch(rq_job_id("t", T0 + second), connection=connection)
        assert (run.args, run.meta["rediscron_slot"], run.get_status()) == (["v1"], T0 + second, "queued")
    scheduler.register(jobs.noop, "q", id="t", args=("v2",), cron="* * * * * *")
    _fire(scheduler, clock, T0 + 5)
    assert Job.fetch(rq_job_id("t", T0 + 5), connection=connection).args == ["v2"]
    assert connection.llen("rq:queue:q") == 5


def test_a_job_without_a_template_still_fires_every_slot(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    scheduler.register(jobs.noop, "q", id="n", cron="* * * * * *", job_class=NonceJob)
    for second in range(1, 5):
        _fire(scheduler, clock, T0 + second)
    assert len(scheduler.dispatch.templates) == 0
    assert [as_id.decode() for as_id in connection.lrange("rq:queue:q", 0, -1)] == [
        rq_job_id("n", T0 + second) for second in range(1, 5)
    ]
    assert connection.hget(f"rq:job:{rq_job_id('n', T0 + 4)}", "nonce")


def test_rq_version_is_one_we_support() -> None:
    assert tuple(int(x) for x in rq.__version__.split(".")[:2]) >= (2, 9)


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_a_filled_run_is_laid_out_as_the_fire_script_takes_rqs(connection: redis.Redis, name: str) -> None:
    job = _definition(name, connection)
    template = RunTemplate.capture(connection, job.make_queue(connection), job)
    assert template is not None
    stamps = ("2030-03-17T17:21:00.000000Z", "2030-03-17T17:21:00.000001Z")
    parts = template.parts(job)
    whole, filled = template.run(SLOT, stamps, parts), template.fill(SLOT, stamps, parts)
    assert (filled.rq_id, filled.rq_key) == (whole.rq_id, whole.rq_key)
    stamp_at, ncmd, flat = filled.laid_out()
    assert (stamp_at, ncmd, flat) == lay_out(whole.commands, whole.rq_key)
    assert stamp_at > 0  # the script sets enqueued_at inside rq's own HSET


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_a_template_filled_in_for_another_job_of_its_shape_is_byte_for_byte_rqs(
    connection: redis.Redis, name: str
) -> None:
    job = _by_path(name, connection)
    queue = job.make_queue(connection)
    template = RunTemplate.capture(connection, queue, job)
    assert template is not None and template.shareable
    other = _by_path(name, connection, "another:job", **OTHER)
    assert shape_of(other) == shape_of(job)
    rq_job, by_rq = build_run(connection, other.make_queue(connection), other, SLOT)
    assert rq_job.created_at is not None and rq_job.enqueued_at is not None
    stamps = (utcformat(rq_job.created_at), utcformat(rq_job.enqueued_at))
    filled = template.run(SLOT, stamps, template.parts(other))
    assert (filled.rq_id, filled.rq_key) == (rq_job_id("another:job", SLOT), rq_job.key)
    assert _bytes(connection, filled.commands) == _bytes(connection, by_rq.commands)
    assert template.matches(Sample(other, rq_job, by_rq))
    laid = template.fill(SLOT, stamps, template.parts(other))
    assert laid.laid_out() == lay_out(by_rq.commands, by_rq.rq_key)


def test_a_jobs_first_run_is_filled_in_once_two_jobs_of_its_shape_proved_the_template(
    connection: redis.Redis,
) -> None:
    templates = Templates()
    stamp = "2030-03-17T17:21:00.000000Z"
    built = []
    for i in range(4):
        job = _by_path("arguments", connection, f"tenant:{i}", args=(i,), meta={"tenant": i})
        built.append(templates.build(connection, job.make_queue(connection), job, f"v{i}", SLOT, stamp))
    # The first two jobs' runs are rq's own (the second proves the shape's template); the others' are filled in.
    assert [rq_job is not None for rq_job, _run in built] == [True, True, False, False]
    assert len(templates) == 1
    _rq_job, run = built[3]
    assert run.rq_id == rq_job_id("tenant:3", SLOT)
    assert isinstance(run, FilledRun) and run.rq_key == f"rq:job:{run.rq_id}"


def test_a_shape_whose_runs_differ_between_jobs_gets_a_template_per_job(connection: redis.Redis) -> None:
    templates = Templates()
    stamp = "2030-03-17T17:21:00.000000Z"

    def build(job_id: str, slot: int) -> Job | None:
        job = _by_path("plain", connection, job_id, job_class=OwnerJob)
        return templates.build(connection, job.make_queue(connection), job, job_id, slot, stamp)[0]

    # a's and b's first runs differ in more than their parts (OwnerJob writes the owner): no shared template.
    assert build("a", SLOT) is not None and build("b", SLOT) is not None
    # Each job then learns a template of its own from its next two runs, and fills in the runs after.
    for job_id in ("a", "b"):
        assert [build(job_id, SLOT + 60 * i) is not None for i in (1, 2, 3, 4)] == [True, True, False, False]
    assert build("c", SLOT) is not None  # another job: built by rq
    assert connection.exists(f"rq:job:{rq_job_id('c', SLOT)}") == 0  # built, not enqueued


def test_the_scheduler_fills_in_the_first_runs_of_jobs_sharing_a_shape(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    for i in range(5):
        scheduler.register("tests.jobs.noop", "q", id=f"m:{i}", args=(i,), meta={"i": i}, cron="* * * * * *")
    _fire(scheduler, clock, T0 + 1)
    assert len(scheduler.dispatch.templates) == 1
    for i in range(5):
        run = Job.fetch(rq_job_id(f"m:{i}", T0 + 1), connection=connection)
        assert (run.args, run.meta, run.func_name) == (
            [i],
            {"i": i, "rediscron_id": f"m:{i}", "rediscron_slot": T0 + 1},
            "tests.jobs.noop",
        )
        assert run.description == f"tests.jobs.noop({i})"


def test_a_shape_is_every_field_a_run_reads_but_the_jobs_own() -> None:
    read = set(RunSource.__annotations__)
    assert read >= PER_JOB_FIELDS  # a renamed field can't slip into the shape unnoticed
    assert set(SHAPE_FIELDS) == read - PER_JOB_FIELDS
    assert {"queue_name", "func_name", "job_class", "serializer", "at_front"} <= set(SHAPE_FIELDS)
