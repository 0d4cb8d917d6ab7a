"""Real scheduler processes against a real Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from rediscron import keys as k

ROOT = Path(__file__).resolve().parents[2]


class SchedulerProcess:
    def __init__(self, url: str, name: str, log_dir: Path, *args: str) -> None:
        self.name = name
        self.log_path = log_dir / f"scheduler-{name}.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "REDISCRON_TEST_URL": url}
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rediscron", "-u", url, "scheduler", "--name", name, *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = 10) -> int:
        return self.process.wait(timeout)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(5)
        self._log.close()


@pytest.fixture
def spawn(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., SchedulerProcess]]:
    started: list[SchedulerProcess] = []

    def start(name: str, *args: str, lock_ttl: int = 3, max_sleep: float = 30) -> SchedulerProcess:
        proc = SchedulerProcess(
            redis_url, name, tmp_path, "--lock-ttl", str(lock_ttl), "--max-sleep-interval", str(max_sleep), *args
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> float:
    """Poll ``predicate`` until true; return the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.005)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def holds_lock(connection: redis.Redis, name: str) -> bool:
    value = connection.get(k.lock())
    return value is not None and value.decode().endswith(f"|{name}")


def queue_ids(connection: redis.Redis, queue: str = "default") -> list[str]:
    return [x.decode() for x in connection.lrange(f"rq:queue:{queue}", 0, -1)]
