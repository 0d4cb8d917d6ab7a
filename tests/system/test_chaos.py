"""Chaos, bounded in time: edits racing the scheduler, Redis down, Redis restarted empty.

Each test counts RQ jobs per (job, slot) and asserts no duplicates, no fire after a
delete/disable returned, and misses only inside the outage.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq.job import Job

from rediscron import RedisCronScheduler
from rediscron.job import rq_job_id
from rediscron.testing import RedisServer
from tests import jobs
from tests.system.conftest import ROOT, SchedulerProcess, holds_lock, queue_ids, wait_until
from tests.system.test_processes import Spawn, assert_no_duplicates, ids_of

pytestmark = pytest.mark.system


def test_a_thousand_edits_while_firing(connection: redis.Redis, redis_url: str, spawn: Spawn) -> None:
    admin = RedisCronScheduler(connection, logging_level="WARNING")
    for i in range(10):
        admin.register(jobs.noop, "default", id=f"steady:{i}", interval=1)
    active = spawn("chaos-a", lock_ttl=3)
    wait_until(lambda: holds_lock(connection, "chaos-a"), what="lock")
    standby = spawn("chaos-b", "--standby", lock_ttl=3)
    wait_until(lambda: "standing by" in standby.log(), what="standby waiting")
    churn = subprocess.run(
        [sys.executable, "-m", "tests.system.churn", redis_url, "1000", "7"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert churn.returncode == 0, churn.stderr
    time.sleep(1.5)  # let the last slots fire
    active.signal(signal.SIGTERM)
    assert active.wait() == 0
    wait_until(lambda: holds_lock(connection, "chaos-b"), timeout=3, what="standby takeover")
    time.sleep(1.5)
    assert standby.alive(), standby.log()

    ops = [json.loads(line) for line in churn.stdout.splitlines()]
    assert len(ops) == 1000
    total = assert_no_duplicates(connection)
    by_id: dict[str, list[dict[str, object]]] = defaultdict(list)
    for op in ops:
        by_id[str(op["id"])].append(op)
    violations = []
    fired = 0
    for job_id in queue_ids(connection):
        rq_job = Job.fetch(job_id, connection=connection)
        cron_id = rq_job.meta.get("rediscron_id")
        if not str(cron_id).startswith("churn:"):
            continue
        fired += 1
        enqueued = rq_job.enqueued_at.timestamp() if rq_job.enqueued_at else 0.0
        history = by_id[str(cron_id)]
        done = [op for op in history if float(op["end"]) < enqueued]  # type: ignore[arg-type]
        if not done or done[-1]["on"]:
            continue
        # Off since an operation returned; fine only if another one was under way when it fired.
        if not any(float(done[-1]["end"]) < float(op["start"]) < enqueued for op in history):  # type: ignore[arg-type]
            violations.append((cron_id, rq_job.id, enqueued, done[-1]))
    assert not violations, violations[:5]
    assert fired > 50 and total > fired
    steady = Counter(str(Job.fetch(i, connection=connection).meta.get("rediscron_id")) for i in queue_ids(connection))
    assert all(steady[f"steady:{i}"] >= 5 for i in range(10)), steady


@pytest.fixture
def aof_server() -> Iterator[RedisServer]:
    server = RedisServer(appendonly=True)
    server.start()
    yield server
    server.cleanup()


def test_redis_down_for_ten_seconds(aof_server: RedisServer, tmp_path: Path) -> None:
    connection = aof_server.client()
    RedisCronScheduler(connection, logging_level="WARNING").register(jobs.noop, "default", id="tick", interval=1)
    proc = SchedulerProcess(aof_server.url, "outage", tmp_path, "--lock-ttl", "3", "--max-sleep-interval", "30")
    try:
        wait_until(lambda: len(ids_of(connection, "tick")) >= 2, what="first fires")
        aof_server.stop()
        down_from = time.time()
        time.sleep(10)
        aof_server.start()
        up_at = time.time()
        wait_until(
            lambda: any(int(i.rsplit("-", 1)[1]) > up_at for i in ids_of(connection, "tick")),
            timeout=15,
            what="fires after the outage",
        )
        time.sleep(2)
        assert proc.alive(), proc.log()
        log = proc.log()
        assert log.count("Redis unreachable (") == 1, log  # said once, not once per attempt
        assert "recovered after" in log
        assert_no_duplicates(connection)
        slots = sorted(int(i.rsplit("-", 1)[1]) for i in ids_of(connection, "tick"))
        gaps = [(a, b) for a, b in itertools.pairwise(slots) if b - a > 1]
        # The only missing slots are those of the outage (coalesced into the first run after it).
        assert len(gaps) == 1 and down_from - 2 <= gaps[0][0] and gaps[0][1] <= up_at + 3, (gaps, down_from, up_at)
    finally:
        proc.stop()


def test_redis_restarted_empty_is_reported_and_survived(aof_server: RedisServer, tmp_path: Path) -> None:
    connection = aof_server.client()
    admin = RedisCronScheduler(connection, logging_level="WARNING")
    admin.register(jobs.noop, "default", id="tick", interval=1)
    proc = SchedulerProcess(aof_server.url, "amnesia", tmp_path, "--lock-ttl", "3", "--max-sleep-interval", "30")
    try:
        wait_until(lambda: len(ids_of(connection, "tick")) >= 2, what="first fires")
        aof_server.stop()
        for item in Path(aof_server.dir).iterdir():
            if item.name.startswith("appendonly"):
                for f in item.iterdir() if item.is_dir() else [item]:
                    f.unlink()
        aof_server.start()
        wait_until(lambda: "registry is EMPTY (it had 1 job(s))" in proc.log(), timeout=10, what="the alarm")
        admin.register(jobs.noop, "default", id="again", interval=1)
        wait_until(lambda: len(ids_of(connection, "again")) >= 2, timeout=10, what="fires after re-registering")
        assert proc.alive() and proc.log().count("registry is EMPTY") == 1, proc.log()
        assert rq_job_id("tick", 0) not in queue_ids(connection)
    finally:
        proc.stop()
