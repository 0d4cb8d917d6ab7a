"""Cron inside RQ workers: three real `rq worker --worker-class` processes, the leader killed, stopped
and paused in turn; each slot enqueued once, and a standby takes over within the lock's rules."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from rediscron import Registry
from rediscron import keys as k

from .conftest import ROOT, wait_until

LOCK_TTL = 3  # tests.cron_worker.QuickCronWorker


class WorkerProcess:
    def __init__(self, url: str, name: str, log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"worker-{name}.log"
        self._log = self.log_path.open("wb")
        rq = str(Path(sys.executable).parent / "rq")
        self.process = subprocess.Popen(
            [rq, "worker", "--url", url, "--name", name, "--worker-class", "tests.cron_worker.QuickCronWorker", "work"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
        )

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(10)
        self._log.close()


def leader(connection: redis.Redis) -> str | None:
    value = connection.get(k.lock())
    if value is None:
        return None
    holder = value.decode().rsplit("|", 1)[-1]
    return holder.removesuffix(":cron")


@pytest.fixture
def workers(redis_url: str, connection: redis.Redis, tmp_path: Path) -> Iterator[dict[str, WorkerProcess]]:
    started = {name: WorkerProcess(redis_url, name, tmp_path) for name in ("w1", "w2", "w3")}
    yield started
    for worker in started.values():
        worker.stop()


def queued(connection: redis.Redis) -> list[str]:
    return [raw.decode() for raw in connection.lrange("rq:queue:cron", 0, -1)]


def test_one_worker_leads_and_another_takes_over_when_it_is_killed_stopped_or_paused(
    connection: redis.Redis, workers: dict[str, WorkerProcess]
) -> None:
    # The workers listen on queue "work"; the cron job's runs wait in queue "cron", to be counted.
    Registry(connection).register("tests.jobs.noop", "cron", id="every-second", interval=1)
    wait_until(lambda: leader(connection) in workers, timeout=15, what="a worker to lead")
    takeovers: dict[str, float] = {}

    def hand_over(sig: int, label: str, within: float) -> None:
        first = leader(connection)
        assert first is not None
        workers[first].process.send_signal(sig)
        took = wait_until(
            lambda: leader(connection) not in (None, first), timeout=within, what=f"a takeover after {label}"
        )
        takeovers[label] = took

    time.sleep(2)
    paused = leader(connection)
    hand_over(signal.SIGSTOP, "SIGSTOP", within=LOCK_TTL + 5)
    time.sleep(2)
    assert paused is not None
    workers[paused].process.send_signal(signal.SIGCONT)  # wakes up having lost the lock: it must not fire
    time.sleep(2)
    hand_over(signal.SIGTERM, "SIGTERM", within=5)
    time.sleep(2)
    hand_over(signal.SIGKILL, "SIGKILL", within=LOCK_TTL + 5)
    time.sleep(2)

    runs = queued(connection)
    assert len(runs) == len(set(runs)), "a slot was enqueued twice"
    slots = sorted(int(run.rsplit("-", 1)[1]) for run in runs)
    assert len(slots) >= 8, slots
    assert takeovers["SIGTERM"] < 1.0, takeovers  # a graceful stop releases the lock at once
    assert all(took < LOCK_TTL + 2 for took in takeovers.values()), takeovers
    stopped = [worker for worker in workers.values() if worker.process.poll() == 0]
    assert len(stopped) == 1 and "Traceback" not in stopped[0].log()  # the one stopped with SIGTERM, cleanly
    print("takeover seconds:", {label: round(took, 2) for label, took in takeovers.items()})


def test_a_work_horse_never_runs_the_scheduler(connection: redis.Redis, workers: dict[str, WorkerProcess]) -> None:
    from rq import Queue, cron_scheduler_registry

    wait_until(lambda: leader(connection) in workers, timeout=15, what="a worker to lead")
    jobs = [Queue("work", connection=connection).enqueue("tests.jobs.record", "ran") for _ in range(5)]
    wait_until(lambda: all(job.get_status(refresh=True) == "finished" for job in jobs), timeout=20, what="the jobs")
    names = {name.decode() for name in connection.zrange(cron_scheduler_registry.get_registry_key(), 0, -1)}
    assert names and names <= {"w1:cron", "w2:cron", "w3:cron"}, names  # no horse ever registered one
    assert leader(connection) in workers


def test_rqrcron_worker_is_rq_worker_with_the_cron_worker_and_its_lock_ttl(
    redis_url: str, connection: redis.Redis, tmp_path: Path
) -> None:
    log = (tmp_path / "rqrcron-worker.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "rediscron", "-u", redis_url, "worker", "--lock-ttl", "4", "--name", "cli-w", "work"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    try:
        wait_until(lambda: leader(connection) == "cli-w", timeout=15, what="rqrcron worker to lead")
        assert 0 < int(connection.pttl(k.lock())) <= 4000
        assert connection.sismember("rq:workers", "rq:worker:cli-w")
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
        assert connection.get(k.lock()) is None  # released on the way out
    finally:
        if process.poll() is None:
            process.kill()
        log.close()


def test_django_rqs_rqworker_runs_the_cron_worker(redis_url: str, connection: redis.Redis, tmp_path: Path) -> None:
    if importlib.util.find_spec("django_rq") is None:
        pytest.skip("the `frameworks` extra (django-rq) is not installed")
    Registry(connection).register("tests.jobs.noop", "cron", id="every-second", interval=1)
    log = (tmp_path / "django-rqworker.log").open("wb")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.django_site.settings",
        "REDISCRON_TEST_URL": redis_url,
        "RQRCRON_WORKER_LOCK_TTL": "4",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "django", "rqworker", "--worker-class", "rediscron.CronWorker", "--name", "dj"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
    )
    try:
        wait_until(lambda: leader(connection) == "dj", timeout=20, what="django-rq's worker to lead")
        wait_until(lambda: len(queued(connection)) >= 2, timeout=10, what="runs from the hosted scheduler")
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
        assert connection.get(k.lock()) is None
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
