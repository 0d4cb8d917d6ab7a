"""Scheduling policies with real scheduler and worker processes: misfire after a stopped scheduler,
overlap with a slow worker, trigger while the scheduler runs."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from rq.job import Job

from rediscron import RedisCronJob, RedisCronScheduler
from rediscron import keys as k
from tests import jobs
from tests.system.conftest import ROOT, holds_lock, wait_until
from tests.system.test_processes import Spawn, assert_no_duplicates, ids_of

pytestmark = pytest.mark.system


def slots(connection: redis.Redis, cron_id: str) -> list[int]:
    return sorted(int(x.rsplit("-", 1)[1]) for x in ids_of(connection, cron_id) if x.rsplit("-", 1)[1].isdigit())


def test_catch_up_after_the_scheduler_was_stopped(connection: redis.Redis, spawn: Spawn) -> None:
    admin = RedisCronScheduler(connection, logging_level="WARNING")
    admin.register(jobs.noop, "default", id="coalesce", cron="* * * * * *")
    admin.register(jobs.noop, "default", id="all", interval=1, catchup="all")
    admin.register(jobs.noop, "default", id="skip", interval=1, catchup="skip")
    first = spawn("first")
    wait_until(lambda: all(len(slots(connection, i)) >= 2 for i in ("coalesce", "all", "skip")), what="firing")
    first.signal(signal.SIGTERM)
    assert first.wait() == 0
    stopped = {i: slots(connection, i)[-1] for i in ("coalesce", "all", "skip")}
    # Slots due before the first scheduler started may already count as missed.
    missed_before = {i: RedisCronJob.fetch(i, connection).missed_count for i in stopped}
    time.sleep(3.5)  # the outage: three or four slots of each job pass
    spawn("second")
    wait_until(lambda: all(slots(connection, i)[-1] > stopped[i] + 4 for i in stopped), what="catch-up")
    assert_no_duplicates(connection)

    # coalesce: one run stands for the missed slots, and they are counted.
    after = [s for s in slots(connection, "coalesce") if s > stopped["coalesce"]]
    missed = after[0] - stopped["coalesce"] - 1
    assert after[1] - after[0] == 1 and missed >= 2
    assert RedisCronJob.fetch("coalesce", connection).missed_count - missed_before["coalesce"] == missed
    # all: every slot ran, none missing.
    ran = slots(connection, "all")
    assert ran == list(range(ran[0], ran[-1] + 1))
    assert RedisCronJob.fetch("all", connection).missed_count == missed_before["all"]
    # skip: a gap where the scheduler was away, counted.
    gap = next(s for s in slots(connection, "skip") if s > stopped["skip"]) - stopped["skip"]
    job = RedisCronJob.fetch("skip", connection)
    assert gap >= 3 and job.missed_count - missed_before["skip"] == gap - 1, job.drop_log


def test_overlap_skip_with_a_slow_worker(connection: redis.Redis, redis_url: str, spawn: Spawn) -> None:
    admin = RedisCronScheduler(connection, logging_level="WARNING")
    admin.register(jobs.sleep_for, "default", id="slow", interval=1, args=(1.6,), overlap="skip")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from redis import Redis; from rq import Worker; "
            "Worker(['default'], connection=Redis.from_url(sys.argv[1])).work()",
            redis_url,
        ],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        spawn("overlap")
        wait_until(lambda: RedisCronJob.fetch("slow", connection).overlap_count >= 3, timeout=20, what="skips")
    finally:
        worker.terminate()
        worker.wait(10)
    runs = [Job.fetch(i, connection=connection) for i in ids_of(connection, "slow")]
    runs += [Job.fetch(i.decode(), connection=connection) for i in connection.zrange("rq:finished:default", 0, -1)]
    done = sorted((j for j in runs if j.started_at and j.ended_at), key=lambda j: j.started_at)
    assert len(done) >= 2
    for before, later in itertools.pairwise(done):
        assert later.started_at >= before.ended_at, "two runs of the job overlapped"
        # The next run was enqueued only after the previous one had finished.
        assert later.enqueued_at >= before.ended_at
    assert "overlap" in RedisCronJob.fetch("slow", connection).drop_log[-1]["reason"]


def test_trigger_while_the_scheduler_runs(connection: redis.Redis, redis_url: str, spawn: Spawn) -> None:
    admin = RedisCronScheduler(connection, logging_level="WARNING")
    admin.register(jobs.noop, "default", id="nightly", cron="0 3 * * *")
    next_before = connection.zscore(k.schedule(), "nightly")
    proc = spawn("trig")
    wait_until(lambda: holds_lock(connection, "trig"), what="lock")
    out = subprocess.run(
        [sys.executable, "-m", "rediscron", "-u", redis_url, "trigger", "nightly"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    manual = ids_of(connection, "nightly")
    assert len(manual) == 1 and "-manual-" in manual[0] and manual[0] in out
    time.sleep(0.3)
    assert connection.zscore(k.schedule(), "nightly") == next_before  # the schedule did not move
    assert [e.rq_job_id for e in RedisCronJob.fetch("nightly", connection).get_history()] == manual
    assert proc.alive()
    assert Path(proc.log_path).exists()
