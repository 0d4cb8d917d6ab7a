"""The operator's listings over a large registry: ``rqrcron info``'s first screen and ``rqrcron export``.

Each runs as the real CLI process (``python -m rediscron``) against N registered jobs: the time
until the first screen (50 lines) of ``info`` is printed and the process's peak memory by then
(``VmHWM``), and the whole ``export`` to a pipe with its time and peak memory.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time

import redis

from .common import EPOCH, Results, ms
from .static import _items, _scheduler

#: Lines of a first screen.
SCREEN = 50


def _cli(url: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "rediscron", "-u", url, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )


def _peak_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def first_screen(url: str) -> tuple[float, float]:
    """Seconds until ``rqrcron info`` printed its first screen, and its peak memory (MB) by then."""
    start = time.perf_counter()
    process = _cli(url, "info")
    assert process.stdout is not None
    for _ in range(SCREEN):
        if not process.stdout.readline():
            break
    took = time.perf_counter() - start
    peak = _peak_mb(process.pid)
    process.kill()
    process.wait()
    return took, peak


def whole_export(url: str) -> tuple[float, float, int]:
    """Seconds ``rqrcron export`` took to the end, its peak memory (MB), and the bytes it wrote.

    The peak is read from ``/proc`` while it runs (``VmHWM``, which starts at its own exec; a
    child's ``ru_maxrss`` would count the benchmark's own memory, copied when it forked).
    """
    start = time.perf_counter()
    process = _cli(url, "export")
    assert process.stdout is not None
    written = 0
    peak = 0.0
    while chunk := process.stdout.read(1 << 16):
        written += len(chunk)
        with contextlib.suppress(OSError, StopIteration):
            peak = max(peak, _peak_mb(process.pid))
    if process.wait() != 0:
        raise RuntimeError(f"rqrcron export exited with {process.returncode}")
    return time.perf_counter() - start, peak, written


def listings(url: str, n: int, results: Results) -> None:
    """``info``'s first screen and ``export`` over N jobs."""
    connection = redis.Redis.from_url(url)
    connection.flushall()
    scheduler = _scheduler(connection, [EPOCH])
    for start in range(0, n, 100_000):
        scheduler.register_many(_items(min(100_000, n - start), cron="*/5 * * * *", offset=start))
    took, peak = first_screen(url)
    results.add(
        "rqrcron info: first screen, time / peak memory",
        n,
        f"{ms(took)} / {peak:,.0f} MB",
        "",
        "",
        "< 2 s and < 100 MB",
        took < 2.0 and peak < 100,
    )
    took, peak, written = whole_export(url)
    results.add(
        "rqrcron export: time / peak memory",
        n,
        f"{took:,.1f} s / {peak:,.0f} MB ({written / 1e6:,.0f} MB written)",
        "",
        "",
        "< 100 MB (streamed)",
        peak < 100,
    )
