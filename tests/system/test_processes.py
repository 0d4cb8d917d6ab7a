"""Scheduler processes started, edited live, stopped, killed and paused for real."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from rediscron import RedisCronJob, RedisCronScheduler
from rediscron import keys as k
from rediscron.job import rq_job_id
from rediscron.testing import RedisServer
from tests import jobs
from tests.system.conftest import ROOT, SchedulerProcess, holds_lock, queue_ids, wait_until

pytestmark = pytest.mark.system

Spawn = Callable[..., SchedulerProcess]


def ids_of(connection: redis.Redis, cron_id: str, queue: str = "default") -> list[str]:
    prefix = rq_job_id(cron_id, 0).rsplit("-", 1)[0] + "-"
    return [x for x in queue_ids(connection, queue) if x.startswith(prefix)]


def assert_no_duplicates(connection: redis.Redis, queue: str = "default") -> int:
    counts = Counter(queue_ids(connection, queue))
    duplicates = {job_id: n for job_id, n in counts.items() if n > 1}
    assert not duplicates, f"slots enqueued more than once: {duplicates}"
    return len(counts)


def test_live_edits_reach_a_running_scheduler_within_a_second(connection: redis.Redis, spawn: Spawn) -> None:
    admin = RedisCronScheduler(connection)
    proc = spawn("live", max_sleep=60)
    wait_until(lambda: holds_lock(connection, "live"), what="lock")
    time.sleep(0.3)  # let it subscribe and settle into a long sleep

    # Create: an interval job is due at once; only the event can wake the scheduler in time.
    start = time.monotonic()
    admin.register(jobs.noop, "default", id="created", interval=3600)
    took = wait_until(lambda: ids_of(connection, "created"), timeout=5, what="create pickup")
    assert took < 1.0, proc.log()

    # Edit: a far-future cron job becomes an interval job, due now.
    admin.register(jobs.noop, "default", id="edited", cron="0 0 1 1 *")
    time.sleep(0.2)
    assert ids_of(connection, "edited") == []
    start = time.monotonic()
    admin.register(jobs.noop, "default", id="edited", interval=3600)
    wait_until(lambda: ids_of(connection, "edited"), timeout=5, what="edit pickup")
    assert time.monotonic() - start < 1.0, proc.log()

    # Disable and delete: nothing fires after the call returns.
    admin.register(jobs.noop, "default", id="fast", interval=1)
    admin.register(jobs.noop, "default", id="gone", interval=1)
    wait_until(
        lambda: len(ids_of(connection, "fast")) >= 2 and len(ids_of(connection, "gone")) >= 2,
        timeout=5,
        what="fast jobs firing",
    )
    RedisCronJob.fetch("fast", connection).disable()
    fast_count = len(ids_of(connection, "fast"))
    RedisCronJob.fetch("gone", connection).delete()
    gone_count = len(ids_of(connection, "gone"))
    time.sleep(2.5)
    assert len(ids_of(connection, "fast")) == fast_count
    assert len(ids_of(connection, "gone")) == gone_count

    # Enable: it runs again (the next slot of its rhythm, within a second).
    RedisCronJob.fetch("fast", connection).enable()
    wait_until(lambda: len(ids_of(connection, "fast")) > fast_count, timeout=3, what="re-enabled job")
    assert proc.alive(), proc.log()
    assert_no_duplicates(connection)


def test_an_interval_job_fires_on_every_slot_of_an_idle_scheduler(connection: redis.Redis, spawn: Spawn) -> None:
    # A long lock TTL: heartbeats are rare, so only the schedule itself can wake the loop.
    admin = RedisCronScheduler(connection)
    admin.register(jobs.noop, "default", id="every", interval=1)
    proc = spawn("steady", lock_ttl=120, max_sleep=60)
    wait_until(lambda: ids_of(connection, "every"), what="first fire")
    time.sleep(4.2)
    fired = len(ids_of(connection, "every"))
    assert 4 <= fired <= 6, proc.log()
    slots = sorted(int(job_id.rsplit("-", 1)[1]) for job_id in ids_of(connection, "every"))
    assert slots == list(range(slots[0], slots[0] + len(slots)))  # no slot skipped


def test_sigterm_releases_the_lock_and_exits_zero(connection: redis.Redis, spawn: Spawn) -> None:
    proc = spawn("term")
    wait_until(lambda: holds_lock(connection, "term"), what="lock")
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0, proc.log()
    assert connection.get(k.lock()) is None
    assert connection.zscore("rq:cron_schedulers", "term") is None
    # A successor starts at once, without waiting for a TTL.
    nxt = spawn("next")
    wait_until(lambda: holds_lock(connection, "next"), timeout=5, what="successor lock")
    nxt.signal(signal.SIGINT)
    assert nxt.wait(10) == 0, nxt.log()


SIGNAL_INSIDE_A_LOG_HANDLER = """
import logging, os, signal, sys, threading
import redis
from rediscron import RedisCronScheduler

class PlainLockHandler(logging.Handler):  # as QueueHandler: emit() holds a plain lock
    def __init__(self):
        super().__init__()
        self.plain = threading.Lock()
        self.sent = False

    def emit(self, record):
        with self.plain:
            if not self.sent and "took the lock" in record.getMessage():
                self.sent = True
                os.kill(os.getpid(), signal.SIGTERM)  # lands while this lock is held

logger = logging.getLogger("rediscron")
logger.addHandler(PlainLockHandler())
logger.setLevel(logging.INFO)
RedisCronScheduler(redis.Redis.from_url(sys.argv[1]), name="sig").start()
print("stopped cleanly")
"""


def test_sigterm_inside_a_log_handler_still_stops_the_scheduler(connection: redis.Redis, redis_url: str) -> None:
    # The signal handler must take no lock: before, it logged, and waited forever on this handler's lock.
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_INSIDE_A_LOG_HANDLER, redis_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "stopped cleanly" in done.stdout
    assert not connection.exists(k.lock())


def kill_a_firing_leader(connection: redis.Redis, spawn: Spawn, lock_ttl: int) -> float:
    """A leader "first" that fired twice, SIGKILLed; return when."""
    RedisCronScheduler(connection).register(jobs.noop, "default", id="tick", interval=1)
    first = spawn("first", lock_ttl=lock_ttl)
    wait_until(lambda: holds_lock(connection, "first"), what="lock")
    wait_until(lambda: len(ids_of(connection, "tick")) >= 2, what="first fires")
    first.signal(signal.SIGKILL)
    first.wait()
    return time.monotonic()


def test_second_scheduler_is_refused_then_fails_over_after_the_ttl(connection: redis.Redis, spawn: Spawn) -> None:
    killed_at = kill_a_firing_leader(connection, spawn, lock_ttl=3)
    as_if_on_another_host(connection, "first")

    refused = spawn("second", lock_ttl=3)
    assert refused.wait(10) == 1
    assert "first" in refused.log() and "Traceback" not in refused.log()
    assert "shutdown complete" not in refused.log()  # it never started

    # The dead holder's lock lapses after its TTL (3 s), not before.
    assert connection.get(k.lock()) is not None
    wait_until(lambda: connection.get(k.lock()) is None, timeout=5, what="lock expiry")
    assert 1.0 < time.monotonic() - killed_at < 3 + 0.5
    second = spawn("third", lock_ttl=3)
    wait_until(lambda: holds_lock(connection, "third"), timeout=10, what="failover")
    before = len(ids_of(connection, "tick"))
    wait_until(lambda: len(ids_of(connection, "tick")) > before, what="successor fires")
    assert_no_duplicates(connection)
    assert second.alive()


def as_if_on_another_host(connection: redis.Redis, name: str) -> None:
    """Make a killed scheduler look as if it ran elsewhere: no one here can tell its process is gone."""
    connection.hset(f"rq:cron_scheduler:{name}", "hostname", "another-host")


def test_a_crashed_holder_of_this_host_is_taken_over_at_once(connection: redis.Redis, spawn: Spawn) -> None:
    killed = kill_a_firing_leader(connection, spawn, lock_ttl=60)
    second = spawn("second", lock_ttl=60)
    wait_until(lambda: holds_lock(connection, "second"), timeout=10, what="takeover")
    assert time.monotonic() - killed < 5  # not the 60 s of the dead holder's lock
    assert "its process is gone" in second.log() and "first" in second.log()
    before = len(ids_of(connection, "tick"))
    wait_until(lambda: len(ids_of(connection, "tick")) > before, what="the successor fires")
    assert_no_duplicates(connection)
    # A holder that is alive is never taken over.
    third = spawn("third", lock_ttl=60)
    assert third.wait(10) == 1 and "second" in third.log()
    assert holds_lock(connection, "second")


def test_a_second_signal_during_shutdown_still_releases_the_lock(connection: redis.Redis, spawn: Spawn) -> None:
    admin = RedisCronScheduler(connection)
    admin.register(jobs.noop, "default", id="tick", interval=1)
    for attempt in range(5):
        proc = spawn(f"twice{attempt}", lock_ttl=60)
        wait_until(lambda name=proc.name: holds_lock(connection, name), what="lock")
        time.sleep(0.05 * attempt)
        proc.signal(signal.SIGINT)
        time.sleep(0.002 * attempt)  # the second lands at a different point of the shutdown each time
        proc.signal(signal.SIGINT)
        proc.wait(15)
        assert connection.get(k.lock()) is None, (attempt, proc.log())  # released, not left for 60 s
        assert "Traceback" not in proc.log()


def test_standby_takes_over_at_once_on_sigterm_and_within_the_ttl_on_a_crash(
    connection: redis.Redis, spawn: Spawn
) -> None:
    admin = RedisCronScheduler(connection)
    admin.register(jobs.noop, "default", id="tick", interval=1)
    active = spawn("active", lock_ttl=3)
    wait_until(lambda: holds_lock(connection, "active"), what="lock")
    standby = spawn("standby", "--standby", lock_ttl=3)
    spare = spawn("spare", "--standby", lock_ttl=3)
    wait_until(lambda: "standing by" in standby.log() and "standing by" in spare.log(), what="standbys waiting")
    active.signal(signal.SIGTERM)
    stopped = time.monotonic()
    took = wait_until(
        lambda: holds_lock(connection, "standby") or holds_lock(connection, "spare"),
        timeout=5,
        what="graceful takeover",
    )
    assert took < 1.0, (took, standby.log())
    assert active.wait(10) == 0
    assert time.monotonic() - stopped < 2
    leader, other = (standby, spare) if holds_lock(connection, "standby") else (spare, standby)
    first_epoch = int(connection.get(k.lock()).decode().split("|")[0])
    leader.signal(signal.SIGKILL)
    leader.wait()
    killed = time.monotonic()
    as_if_on_another_host(connection, leader.name)
    wait_until(lambda: holds_lock(connection, other.name), timeout=6, what="takeover after a crash")
    assert time.monotonic() - killed < 3 + 1.2
    assert int(connection.get(k.lock()).decode().split("|")[0]) == first_epoch + 1
    before = len(ids_of(connection, "tick"))
    wait_until(lambda: len(ids_of(connection, "tick")) > before, what="the new leader fires")
    assert_no_duplicates(connection)


def test_paused_holder_fires_nothing_after_it_wakes(connection: redis.Redis, spawn: Spawn) -> None:
    admin = RedisCronScheduler(connection)
    for i in range(5):
        admin.register(jobs.noop, "default", id=f"tick{i}", interval=1)
    paused = spawn("paused", lock_ttl=3)
    wait_until(lambda: holds_lock(connection, "paused"), what="lock")
    wait_until(lambda: len(ids_of(connection, "tick0")) >= 2, what="first fires")
    paused.signal(signal.SIGSTOP)
    wait_until(lambda: connection.get(k.lock()) is None, timeout=6, what="lock expiry")
    successor = spawn("successor", lock_ttl=3)
    wait_until(lambda: holds_lock(connection, "successor"), what="successor lock")
    time.sleep(1.5)
    paused.signal(signal.SIGCONT)
    # It finds the lock taken, stops cleanly, and enqueues nothing meanwhile.
    assert paused.wait(10) == 1, paused.log()  # superseded, not asked to stop: a service manager restarts it
    assert "took the lock; this one stopped" in paused.log()
    assert "lock is held by successor" in paused.log()
    time.sleep(1.0)
    assert_no_duplicates(connection)
    assert successor.alive()
    epoch = int(connection.get(k.lock()).decode().split("|")[0])
    assert epoch == 2


def test_a_paused_standby_leader_stands_by_again_when_it_wakes(connection: redis.Redis, spawn: Spawn) -> None:
    admin = RedisCronScheduler(connection)
    admin.register(jobs.noop, "default", id="tick", interval=1)
    first = spawn("first", "--standby", lock_ttl=3)
    wait_until(lambda: holds_lock(connection, "first"), what="lock")
    second = spawn("second", "--standby", lock_ttl=3)
    wait_until(lambda: "standing by" in second.log(), what="second waiting")
    first.signal(signal.SIGSTOP)
    wait_until(lambda: holds_lock(connection, "second"), timeout=6, what="takeover from the paused leader")
    first.signal(signal.SIGCONT)
    wait_until(lambda: "standing by again" in first.log(), timeout=5, what="the old leader standing by")
    assert first.alive() and holds_lock(connection, "second")
    second.signal(signal.SIGTERM)
    assert second.wait(10) == 0
    wait_until(lambda: holds_lock(connection, "first"), timeout=3, what="the old leader back in charge")
    assert_no_duplicates(connection)


def test_sigkill_at_random_points_never_duplicates_a_slot(connection: redis.Redis, spawn: Spawn) -> None:
    admin = RedisCronScheduler(connection)
    for i in range(30):
        admin.register(jobs.noop, "default", id=f"job{i}", interval=1)
    rng = random.Random(20261122)
    for round_ in range(6):
        proc = spawn(f"victim{round_}", lock_ttl=3)
        wait_until(lambda name=f"victim{round_}": holds_lock(connection, name), what="lock")  # type: ignore[misc]
        time.sleep(rng.uniform(0.05, 1.5))
        proc.signal(signal.SIGKILL)
        proc.wait()
        connection.delete(k.lock())  # as if the TTL had run out, without waiting for it
    total = assert_no_duplicates(connection)
    assert total >= 30
    # Every queued id has its RQ job hash: no half-written enqueue.
    assert all(connection.exists(f"rq:job:{job_id}") for job_id in queue_ids(connection))


def test_corrupt_records_leave_the_others_running(connection: redis.Redis, spawn: Spawn) -> None:
    from tests.integration.test_scheduler import corrupt_records

    admin = RedisCronScheduler(connection)
    admin.register(jobs.noop, "default", id="good", interval=1)
    for job_id, mapping in corrupt_records().items():
        connection.hset(
            k.job(job_id), mapping={**mapping, "queue_name": "default"} if "queue_name" in mapping else mapping
        )
        connection.sadd(k.ids(), job_id)
        connection.zadd(k.schedule(), {job_id: 0})
    proc = spawn("robust")
    wait_until(lambda: len(ids_of(connection, "good")) >= 3, what="good job keeps firing")
    assert proc.alive(), proc.log()
    assert set(admin.get_invalid_jobs()) == set(corrupt_records())
    assert [j.id for j in admin.get_all_jobs()] == ["good"]
    assert proc.log().count("Quarantined") == 4


@pytest.fixture
def aof_server() -> Iterator[RedisServer]:
    server = RedisServer(appendonly=True)
    server.start()
    yield server
    server.cleanup()


def test_scheduler_survives_redis_restart(aof_server: RedisServer, tmp_path: Path) -> None:
    connection = aof_server.client()
    admin = RedisCronScheduler(connection)
    admin.register(jobs.noop, "default", id="tick", interval=1)
    proc = SchedulerProcess(aof_server.url, "survivor", tmp_path, "--lock-ttl", "3", "--max-sleep-interval", "30")
    try:
        wait_until(lambda: len(ids_of(connection, "tick")) >= 2, what="first fires")
        aof_server.restart(downtime=2.0)
        before = len(ids_of(connection, "tick"))
        wait_until(lambda: len(ids_of(connection, "tick")) >= before + 2, timeout=15, what="fires after restart")
        assert proc.alive(), proc.log()
        assert "Redis unreachable" in proc.log() and "recovered after" in proc.log()
        assert assert_no_duplicates(connection) >= before + 2

        # Restarted without its data: the registry is empty; a new registration runs at once.
        aof_server.stop()
        for name in ("appendonly.aof", "appendonlydir"):
            target = Path(aof_server.dir) / name
            if target.is_dir():
                for f in target.iterdir():
                    f.unlink()
            elif target.exists():
                target.unlink()
        aof_server.start()
        admin.register(jobs.noop, "default", id="again", interval=1)
        wait_until(lambda: len(ids_of(connection, "again")) >= 2, timeout=15, what="fires after data loss")
        assert proc.alive(), proc.log()
    finally:
        proc.stop()


def test_a_real_rq_worker_process_runs_the_cron_job(connection: redis.Redis, redis_url: str, spawn: Spawn) -> None:
    admin = RedisCronScheduler(connection)
    admin.register(jobs.append_to, "work", id="e2e", interval=3600, args=("e2e:out", "ran"))
    spawn("e2e")
    wait_until(lambda: ids_of(connection, "e2e", queue="work"), what="enqueue")
    rq_bin = Path(sys.executable).parent / "rq"
    subprocess.run(
        [str(rq_bin), "worker", "--burst", "--url", redis_url, "work"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "REDISCRON_TEST_URL": redis_url, "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert connection.lrange("e2e:out", 0, -1) == [b"ran"]
