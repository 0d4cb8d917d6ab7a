"""Shared pieces of the benchmark suite: round-trip counting, timing, results and the machine."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import redis

#: Far from any real date, so nothing registered by a benchmark is due by accident.
EPOCH = 2_000_000_000.0


class CountingConnection(redis.Connection):
    """A connection that counts its sends: one packed send (a command or a pipeline) is one round trip."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


def counting_client(url: str) -> redis.Redis:
    """A client whose round trips :class:`CountingConnection` counts."""
    return redis.Redis(connection_pool=redis.ConnectionPool.from_url(url, connection_class=CountingConnection))


class ServerCommands:
    """Commands the server ran between :meth:`start` and :meth:`stop`, scripts' own calls included."""

    def __init__(self, connection: redis.Redis) -> None:
        self.connection = connection

    def start(self) -> None:
        self.connection.config_resetstat()

    def stop(self) -> int:
        stats = self.connection.info("commandstats")
        # CONFIG RESETSTAT itself is counted; the INFO running now is not.
        return sum(int(v["calls"]) for v in stats.values()) - 1


def timed(action: Callable[[], object]) -> float:
    """Seconds ``action`` took."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass
class Row:
    """One line of the results table."""

    measure: str
    n: str
    rediscron: str
    rq_cron: str = ""
    floor: str = ""
    target: str = ""
    passed: bool | None = None


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)

    def add(
        self,
        measure: str,
        n: int | str,
        rediscron: str,
        rq_cron: str = "",
        floor: str = "",
        target: str = "",
        passed: bool | None = None,
    ) -> None:
        self.rows.append(Row(measure, f"{n:,}" if isinstance(n, int) else n, rediscron, rq_cron, floor, target, passed))


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s" if seconds > 0 else "-"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux ``/proc``); NaN elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine(connection: redis.Redis) -> str:
    """One line naming the machine, the interpreter and the versions measured."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            models = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
        if models:
            cpu = models[0]
    except OSError:
        pass
    server = connection.info("server")["redis_version"]
    try:
        hiredis = f"hiredis {metadata.version('hiredis')}"
    except metadata.PackageNotFoundError:
        hiredis = "no hiredis"
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, Redis {server}, rq {metadata.version('rq')}, "
        f"redis-py {metadata.version('redis')} ({hiredis}), rediscron {_revision()}"
    )


def _revision() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=os.path.dirname(__file__),
        )
    except OSError:
        return metadata.version("rediscron")
    return commit.stdout.strip() or metadata.version("rediscron")
