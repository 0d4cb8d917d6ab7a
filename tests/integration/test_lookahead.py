"""Runs built ahead of their slots (the running loop's look-ahead), with an injected clock.

A run built ahead is fired at its slot only if lock, record and plan still hold; otherwise
the job is planned again at the real time. Nothing is enqueued early, twice, or stale.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis
from rq.job import Job

from rediscron import RedisCronJob, RedisCronScheduler
from rediscron import keys as k
from rediscron.imports import ImportAllowlist
from rediscron.job import rq_job_id
from rediscron.lookahead import MAX_LOOKAHEAD
from rediscron.scheduler import LOOKAHEAD
from rediscron.template import FilledRun
from tests import jobs
from tests.integration.test_policies import Clock, queued

T0 = 1_900_000_800


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + 0.4)


@pytest.fixture
def scheduler(connection: redis.Redis, clock: Clock) -> Iterator[RedisCronScheduler]:
    s = RedisCronScheduler(connection, name="ahead", clock=clock, lock_ttl=30, logging_level="WARNING")
    s.register_birth()
    s.lookahead.enabled = True  # what start() sets for the running loop
    yield s
    s.register_death()


def every_second(admin: RedisCronScheduler, n: int, **options: object) -> None:
    for i in range(n):
        admin.register(jobs.noop, "q", id=f"s{i}", cron="* * * * * *", **options)  # type: ignore[arg-type]


def test_runs_are_built_before_the_slot_and_enqueued_at_it(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    every_second(scheduler, 3)
    scheduler.run_once()
    assert queued(connection) == []
    assert sorted(scheduler.lookahead.runs) == ["s0", "s1", "s2"]
    clock.now = T0 + 1.002
    scheduler.run_once()
    assert sorted(queued(connection)) == sorted(rq_job_id(f"s{i}", T0 + 1) for i in range(3))
    rq_job = Job.fetch(rq_job_id("s0", T0 + 1), connection=connection)
    # Stamped when it was enqueued, not when it was built.
    assert rq_job.enqueued_at is not None and abs(rq_job.enqueued_at.timestamp() - (T0 + 1.002)) < 1e-3
    stored = RedisCronJob.fetch("s0", connection)
    assert stored.latest_enqueue_time is not None
    assert abs(stored.latest_enqueue_time.timestamp() - (T0 + 1.002)) < 1e-3
    # The next slot is built in the same pass.
    assert scheduler.lookahead.runs["s0"].plan.run == T0 + 2


def test_a_run_filled_in_from_a_template_ahead_of_its_slot_is_stamped_when_it_is_enqueued(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    every_second(scheduler, 4)  # the first two runs prove the shape's template; the others are filled in
    scheduler.run_once()
    assert isinstance(scheduler.lookahead.runs["s3"].run, FilledRun)
    clock.now = T0 + 1.25
    scheduler.run_once()
    for job_id in ("s0", "s3"):
        rq_job = Job.fetch(rq_job_id(job_id, T0 + 1), connection=connection)
        assert rq_job.enqueued_at is not None and abs(rq_job.enqueued_at.timestamp() - (T0 + 1.25)) < 1e-3
    # Filled in, it was created as built, for its slot (rq, building s0's itself, takes the host's clock).
    assert rq_job.created_at is not None and rq_job.created_at.timestamp() == T0 + 1


def test_a_run_the_script_fills_in_writes_what_its_template_laid_out_gives(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    # The fire script fills in a template itself; laid out in Python (held byte for byte to rq's own
    # writes by test_template), the same run writes the same RQ job.
    for i in range(4):  # each its own call (and description, rq's wording of it) and meta
        scheduler.register(jobs.noop, "q", id=f"s{i}", cron="* * * * * *", args=["x", i], meta={"team": f"é{i}"})
    scheduler.run_once()
    built = scheduler.lookahead.runs["s3"]
    assert isinstance(built.run, FilledRun)
    # Times of its own, told apart (built ahead, both are the slot's): each must land in its place.
    built.run = run = replace(built.run, stamps=("2030-01-01T00:00:00.000001Z", "2030-01-01T00:00:00.000002Z"))
    _stamp_at, ncmd, flat = run.laid_out()
    expected: dict[bytes, bytes] = {}
    at = 0
    for _ in range(ncmd):
        command = flat[at + 1 : at + 1 + flat[at]]
        at += 1 + flat[at]
        if command[:2] == ["HSET", run.rq_key]:
            for name, value in zip(command[2::2], command[3::2], strict=True):
                expected[_bytes(name)] = _bytes(value)
    clock.now = T0 + 1.25
    scheduler.run_once()
    stored = connection.hgetall(run.rq_key)
    assert stored.pop(b"enqueued_at") != expected.pop(b"enqueued_at")  # stamped at the fire, not when built
    assert stored == expected
    assert run.rq_id.encode() in connection.lrange("rq:queue:q", 0, -1)


def _bytes(value: object) -> bytes:
    """An argument as Redis stores it (a str enum, rq's JobStatus, as its text)."""
    if isinstance(value, bytes):
        return value
    return value.encode() if isinstance(value, str) else str(value).encode()


def test_a_run_built_ahead_still_skips_its_slot_while_the_previous_run_is_queued(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    every_second(scheduler, 1, overlap="skip")
    scheduler.run_once()
    clock.now = T0 + 1.002
    scheduler.run_once()
    assert queued(connection) == [rq_job_id("s0", T0 + 1)]
    # Its first two runs are built by rq (they prove its template); the third is filled in from it.
    for second in (2, 3):
        built = scheduler.lookahead.runs["s0"]
        assert built.plan.run == T0 + second and built.job is None  # built ahead, and kept light
        clock.now = T0 + second + 0.002
        scheduler.run_once()  # the run of T0 + 1 has not even started: this slot is skipped, not enqueued
    assert isinstance(built.run, FilledRun)
    assert len(scheduler.lookahead._fields) <= len(scheduler.lookahead.runs)  # what runs gone shared is let go
    assert queued(connection) == [rq_job_id("s0", T0 + 1)]
    stored = RedisCronJob.fetch("s0", connection)
    assert stored.overlap_count == 2 and stored.drop_log[-1]["reason"].startswith("overlap")


def test_a_pass_that_fires_due_runs_also_builds_the_coming_ones(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    # One job due now (a new interval job), one due at the next second: the pass fires the first and
    # builds the second, so a loop with something due at every pass still fires the rest from runs built.
    scheduler.register(jobs.noop, "q", id="due", interval=60)
    every_second(scheduler, 1)
    scheduler.run_once()
    assert queued(connection) == [rq_job_id("due", int(T0 + 0.4))]
    assert sorted(scheduler.lookahead.runs) == ["s0"]


def test_an_idle_loop_wakes_in_time_to_build_the_next_slot(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    # One shared slot 10 s away (a nightly burst): the loop wakes a look-ahead before it, not at it.
    scheduler.max_sleep_interval = 60
    slot = T0 + 10
    for i in range(3):
        scheduler.register(jobs.noop, "q", id=f"n{i}", cron="0 18 * * * 10")  # T0 is 18:00:00 UTC
    assert RedisCronJob.fetch("n0", connection).next_enqueue_time.timestamp() == slot  # type: ignore[union-attr]
    wait = scheduler.run_once()
    assert wait == pytest.approx(slot - LOOKAHEAD - clock.now, abs=1e-3)
    assert scheduler.lookahead.runs == {}
    clock.now += wait
    wait = scheduler.run_once()
    assert sorted(scheduler.lookahead.runs) == ["n0", "n1", "n2"]
    assert queued(connection) == []
    assert wait == pytest.approx(slot - clock.now, abs=1e-3)
    clock.now = slot + 0.001
    scheduler.run_once()
    assert sorted(queued(connection)) == sorted(rq_job_id(f"n{i}", slot) for i in range(3))


def test_a_crowded_slot_is_built_as_far_ahead_as_building_it_takes(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    # 300 jobs share a slot 8 s away; building a run is taken to cost 10 ms: 3 s of building, so the
    # loop must read (and wake) twice that ahead, not one second.
    scheduler.max_sleep_interval = 60
    slot = T0 + 8
    scheduler.register_many(
        [{"func": jobs.noop, "queue_name": "q", "id": f"c{i}", "cron": "0 18 * * * 8"} for i in range(300)]
    )
    scheduler.lookahead.cost = 0.01
    wait = scheduler.run_once()
    assert scheduler.lookahead.seconds == pytest.approx(6.0)
    assert wait == pytest.approx(slot - 6.0 - clock.now, abs=1e-3)
    clock.now += wait
    scheduler.run_once()
    assert len(scheduler.lookahead.runs) == 300 and queued(connection) == []
    clock.now = slot + 0.001
    scheduler.run_once()
    assert sorted(queued(connection)) == sorted(rq_job_id(f"c{i}", slot) for i in range(300))
    # However crowded, never further than MAX_LOOKAHEAD.
    scheduler.lookahead.plan(10**9)
    assert scheduler.lookahead.seconds == MAX_LOOKAHEAD


def test_a_long_build_gives_the_loop_back_for_a_heartbeat(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    # Building many runs ahead must not hold the loop past its heartbeat (the lock would lapse).
    scheduler.batch_size = 2
    every_second(scheduler, 7)
    scheduler.leadership.next_heartbeat = 0.0  # a heartbeat is due now
    scheduler.lookahead.build(scheduler.dispatch.tick(LOOKAHEAD).entries)
    assert len(scheduler.lookahead.runs) == 2  # one batch, then the loop is given back
    scheduler.heartbeat()
    scheduler.run_once()
    assert len(scheduler.lookahead.runs) == 7  # the next pass builds on


@pytest.mark.parametrize("ahead", [True, False])
def test_a_job_rq_cannot_write_is_quarantined_alone(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock, ahead: bool
) -> None:
    # Its RQ job holds a value Redis cannot take; the jobs sharing its slot must still fire.
    scheduler.lookahead.enabled = ahead
    scheduler.allow_import = ImportAllowlist(["tests.custom_rq"])
    every_second(scheduler, 3)
    scheduler.register(jobs.noop, "q", id="bad", cron="* * * * * *", job_class="tests.custom_rq.TenantJob")
    scheduler.run_once()
    clock.now = T0 + 1.01
    scheduler.run_once()
    assert sorted(queued(connection)) == sorted(rq_job_id(f"s{i}", T0 + 1) for i in range(3))
    assert "DataError" in (RedisCronJob.fetch("bad", connection).last_error or "")


def test_runs_fired_cold_have_their_next_run_built_ahead(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    # New interval jobs are due at once, so they fire cold; the loop must wake in time to build the next.
    scheduler.max_sleep_interval = 60
    for i in range(3):
        scheduler.register(jobs.noop, "q", id=f"i{i}", interval=5)
    first = int(clock.now)
    wait = scheduler.run_once()
    assert len(queued(connection)) == 3 and scheduler.lookahead.runs == {}
    assert wait == pytest.approx(first + 5 - LOOKAHEAD - clock.now, abs=1e-3)
    clock.now += wait
    scheduler.run_once()
    assert sorted(scheduler.lookahead.runs) == ["i0", "i1", "i2"]


def test_an_edit_after_the_build_is_what_runs(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    every_second(scheduler, 2)
    scheduler.run_once()
    scheduler.register(jobs.noop, "q", id="s0", cron="* * * * * *", args=("edited",))
    RedisCronJob.fetch("s1", connection).delete()
    clock.now = T0 + 1.01
    scheduler.run_once()
    assert queued(connection) == [rq_job_id("s0", T0 + 1)]
    assert Job.fetch(rq_job_id("s0", T0 + 1), connection=connection).args == ["edited"]


def test_runs_built_ahead_fire_after_redis_forgot_the_scripts(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    scheduler.batch_size = 2
    every_second(scheduler, 5)
    scheduler.run_once()
    connection.script_flush()  # what a restart does
    clock.now = T0 + 1.01
    scheduler.run_once()
    assert sorted(queued(connection)) == sorted(rq_job_id(f"s{i}", T0 + 1) for i in range(5))


def test_a_record_without_a_revision_still_fires(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    every_second(scheduler, 1)
    connection.hdel(k.job("s0"), "revision")  # as a hand-written record would be
    scheduler.run_once()
    clock.now = T0 + 1.01
    scheduler.run_once()
    assert queued(connection) == [rq_job_id("s0", T0 + 1)]


def test_a_disabled_job_built_ahead_does_not_run(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    every_second(scheduler, 1)
    scheduler.run_once()
    RedisCronJob.fetch("s0", connection).disable()
    clock.now = T0 + 1.01
    scheduler.run_once()
    assert queued(connection) == []


def test_nothing_built_ahead_runs_after_the_lock_is_lost(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    every_second(scheduler, 2)
    scheduler.run_once()
    connection.set(k.lock(), "999|someone-else")
    clock.now = T0 + 1.01
    scheduler.run_once()
    assert queued(connection) == []


def test_a_run_built_ahead_is_planned_again_when_the_scheduler_comes_late(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    every_second(scheduler, 1, misfire_grace_time=2)
    scheduler.run_once()
    clock.now = T0 + 5.5  # slots 1..5 are due; 1..2 are past the grace time
    scheduler.run_once()
    # Planned at the real time: one coalesced run of the newest slot, not the slot built for.
    assert queued(connection) == [rq_job_id("s0", T0 + 5)]
    assert RedisCronJob.fetch("s0", connection).missed_count == 4


def test_each_slot_runs_once_whatever_the_order_of_passes(
    connection: redis.Redis, scheduler: RedisCronScheduler, clock: Clock
) -> None:
    every_second(scheduler, 5)
    other = RedisCronScheduler(connection, name="plain", clock=clock, logging_level="WARNING")
    for step in range(1, 30):
        clock.now = T0 + 0.4 + step * 0.37
        scheduler.run_once()
        if step % 4 == 0:
            other.leadership.lock.value = (
                scheduler.leadership.lock.value
            )  # a second, non-look-ahead pass under the same lock
            other.enqueue_jobs()
    ids = queued(connection)
    assert len(ids) == len(set(ids))
    for i in range(5):
        slots = sorted(int(x.rsplit("-", 1)[1]) for x in ids if x.startswith(rq_job_id(f"s{i}", 0)[:-1]))
        assert slots == list(range(T0 + 1, slots[-1] + 1))


class CountingConnection(redis.Connection):
    sent = 0

    def send_packed_command(self, command: object, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


def test_the_pass_at_the_slot_costs_two_round_trips(connection: redis.Redis, redis_url: str, clock: Clock) -> None:
    counted = redis.Redis(connection_pool=redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection))
    scheduler = RedisCronScheduler(counted, name="rt", clock=clock, lock_ttl=30, logging_level="WARNING")
    scheduler.register_birth()
    scheduler.lookahead.enabled = True
    every_second(scheduler, 150)
    connection.script_flush()  # as after a restart: the build loads the fire script, not the slot
    scheduler.run_once()
    clock.now = T0 + 1.01
    CountingConnection.sent = 0
    scheduler.run_once()
    # The fire script for the runs built ahead, then the tick (which builds the next slot's).
    assert CountingConnection.sent == 2
    assert len(queued(connection)) == 150
    assert len(scheduler.lookahead.runs) == 150 and scheduler.lookahead.runs["s0"].plan.run == T0 + 2
    scheduler.register_death()
