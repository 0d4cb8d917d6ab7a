"""Random interleavings of edits, fires, lock loss and takeovers never enqueue a slot twice,
and never enqueue a disabled or deleted job."""

from __future__ import annotations

import contextlib
from collections import Counter

import redis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rediscron import JobNotFound, RedisCronJob, RedisCronScheduler
from rediscron import keys as k
from tests import jobs

T0 = 1_900_000_800
IDS = ["a", "b", "c"]

operations = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.integers(1, 130)),
        st.tuples(st.just("fire"), st.sampled_from(["s1", "s2"])),
        st.tuples(st.just("run"), st.integers(1, 20)),
        st.tuples(st.just("register"), st.sampled_from(IDS), st.sampled_from([5, 30, 60, "*/1 * * * *"])),
        st.tuples(st.just("disable"), st.sampled_from(IDS)),
        st.tuples(st.just("enable"), st.sampled_from(IDS)),
        st.tuples(st.just("delete"), st.sampled_from(IDS)),
        st.tuples(st.just("steal_lock"), st.sampled_from(["s1", "s2"])),
        st.tuples(st.just("stale_fire"), st.sampled_from(IDS)),
    ),
    max_size=40,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_no_duplicates_and_nothing_after_disable_or_delete(connection: redis.Redis, ops: list[tuple]) -> None:
    connection.flushall()
    now = [T0 + 0.5]
    clock = lambda: now[0]  # noqa: E731
    schedulers = {
        name: RedisCronScheduler(connection, name=name, clock=clock, logging_level="ERROR") for name in ("s1", "s2")
    }
    schedulers["s1"].register_birth()
    for job_id, interval in zip(IDS, (5, 30, 60), strict=True):
        schedulers["s1"].register(jobs.noop, "q", id=job_id, interval=interval)
    off: set[str] = set()  # disabled or deleted: must not fire
    for op in ops:
        kind = op[0]
        if kind == "advance":
            now[0] += op[1]
        elif kind == "run":
            # Time passes in steps while both schedulers try to fire (only the lock holder may).
            for _ in range(5):
                now[0] += op[1]
                for s in schedulers.values():
                    for job in s.enqueue_jobs():
                        assert job.id not in off, f"{job.id} fired while disabled or deleted"
        elif kind == "fire":
            for job in schedulers[op[1]].enqueue_jobs():
                assert job.id not in off, f"{job.id} fired while disabled or deleted"
        elif kind == "register":
            schedule = {"cron": op[2]} if isinstance(op[2], str) else {"interval": op[2]}
            job = schedulers["s1"].register(jobs.noop, "q", id=op[1], **schedule)
            if job.enabled:
                off.discard(op[1])
        elif kind in ("disable", "enable"):
            try:
                job = RedisCronJob.fetch(op[1], connection)
            except JobNotFound:
                continue
            job.clock = clock
            getattr(job, kind)()
            (off.add if kind == "disable" else off.discard)(op[1])
        elif kind == "delete":
            RedisCronJob(id=op[1], queue_name="q", func=jobs.noop, interval=1, connection=connection).delete()
            off.add(op[1])
        elif kind == "steal_lock":
            # The holder's lock lapses (a pause past its TTL); the named scheduler takes it.
            connection.delete(k.lock())
            schedulers[op[1]].register_birth()
        elif kind == "stale_fire":
            # A scheduler read the due jobs, then the job changed before it fired.
            s = schedulers["s1"]
            if s.lock_epoch is None:
                continue
            tick_now, _marker, _upcoming, due = s.dispatch.tick()
            with contextlib.suppress(JobNotFound):
                RedisCronJob.fetch(op[1], connection).save()
            for job in s.dispatch.fire_due(tick_now, due)[0]:
                assert job.id not in off
    queued = Counter(x.decode() for x in connection.lrange("rq:queue:q", 0, -1))
    event(f"enqueued {min(len(queued), 10)}+" if len(queued) >= 10 else f"enqueued {len(queued)}")
    assert all(n == 1 for n in queued.values()), queued
    for s in schedulers.values():
        s.register_death()
