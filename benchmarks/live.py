"""Benchmarks of a running scheduler process: steady firing, and edits reaching it.

The scheduler is the real CLI process (``rqrcron scheduler``); edits come from this
process, as they would from an app. Times compare this host's clock with slot times
from the Redis server's clock on the same host.
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import redis
from rq import Queue
from rq.job import Job
from rq.utils import utcparse

from rediscron import RedisCronJob, RedisCronScheduler, keys

from . import tasks
from .common import Results, cpu_seconds, median, ms, percentile, timed

ROOT = Path(__file__).resolve().parents[1]
WARM_UP = 2.0
STEADY_JOBS = 1000
#: The heavy steady row: this many jobs every second, from one scheduler process (one core).
HEAVY_JOBS = 10_000


class Process:
    """A child process (the scheduler, or rq's CronScheduler) with its CPU time readable."""

    def __init__(self, args: list[str], name: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.name = name
        # A file, not a pipe: an unread pipe that fills up would block the child's logging.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.seek(0)
        output = self.log.read().decode(errors="replace")
        self.log.close()
        if self.process.returncode not in (0, -signal.SIGTERM):
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {output[-2000:]}")
        self.warnings = [line for line in output.splitlines() if " WARNING " in line or " ERROR " in line]


def scheduler(url: str) -> Process:
    process = Process(
        [
            sys.executable,
            "-m",
            "rediscron",
            "-u",
            url,
            "scheduler",
            "--name",
            "bench",
            "--lock-ttl",
            "30",
            "-l",
            "warning",
        ],
        "the scheduler",
    )
    connection = redis.Redis.from_url(url)
    deadline = time.monotonic() + 30
    while not _text(connection.get(keys.lock()) or b"").endswith("|bench"):
        if time.monotonic() > deadline or process.process.poll() is not None:
            process.stop()
            raise RuntimeError("the scheduler did not take the lock")
        time.sleep(0.01)
    return process


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _texts(raws: Any) -> list[str]:
    return [_text(raw) for raw in raws]


def _slot(rq_job_id: str) -> int:
    return int(rq_job_id.rsplit("-", 1)[1])


def _enqueued(connection: redis.Redis, ids: list[str]) -> list[float]:
    pipe = connection.pipeline(transaction=False)
    for rq_id in ids:
        pipe.hget(f"rq:job:{rq_id}", "enqueued_at")
    return [utcparse(_text(raw)).timestamp() for raw in pipe.execute()]


def steady(url: str, seconds: float, results: Results, probes: int) -> None:
    """1,000 jobs firing every second (six-field cron, then ``interval=1``), edits measured meanwhile;
    then 10,000 jobs every second."""
    connection = redis.Redis.from_url(url)
    runs = (
        (STEADY_JOBS, "cron * * * * * *", {"cron": "* * * * * *"}),
        (STEADY_JOBS, "interval=1", {"interval": 1}),
        (HEAVY_JOBS, "interval=1", {"interval": 1}),
    )
    for jobs, kind, schedule in runs:
        connection.flushall()
        admin = RedisCronScheduler(connection, logging_level="WARNING")
        admin.register_many(
            [{"func": tasks.noop, "queue_name": "steady", "id": f"steady:{i}", **schedule} for i in range(jobs)]
        )
        process = scheduler(url)
        watch = QueueWatch(url, "rq:queue:steady")
        probing = kind.startswith("cron") and probes > 0
        try:
            time.sleep(WARM_UP)
            start, cpu_start = time.time(), process.cpu()
            watch.start()
            if probing:
                busy = propagation(connection, probes, deadline=start + seconds)
            time.sleep(max(0.0, start + seconds - time.time()))
            end, cpu_end = time.time(), process.cpu()
            time.sleep(1.0)  # the slots of the window's last second
        finally:
            watch.stop()
            process.stop()
        ids = _texts(connection.lrange("rq:queue:steady", 0, -1))
        slots = [_slot(rq_id) for rq_id in ids]
        enqueued = _enqueued(connection, ids)
        first, last = math.ceil(start), math.floor(end) - 1
        lags = [e - s for s, e in zip(slots, enqueued, strict=True) if first <= s <= last]
        expected = jobs * (last - first + 1)
        missed = expected - len(lags)
        cpu = (cpu_end - cpu_start) / (end - start)
        p99 = percentile(lags, 99)
        label = f"steady, {jobs:,} jobs {kind}, {end - start:.0f} s"
        heavy = jobs > STEADY_JOBS
        results.add(
            f"{label}: lag p50 / p99 / max",
            jobs,
            f"{ms(percentile(lags, 50))} / {ms(p99)} / {ms(max(lags, default=math.nan))}",
            "",
            "",
            "" if heavy else "p99 <= 5 ms",
            None if heavy else p99 <= 0.005,
        )
        visible = watch.all_queued_lags(slots, first, last)
        results.add(
            f"{label}: each second's last run in the queue, p50 / max",
            jobs,
            f"{ms(median(visible))} / {ms(max(visible, default=math.nan))}",
            "",
            "",
            "" if heavy else "max <= 25 ms",
            None if heavy else max(visible, default=math.inf) <= 0.025,
        )
        results.add(f"{label}: slots missed", jobs, f"{missed:,} of {expected:,}", "", "", "0", missed == 0)
        results.add(
            f"{label}: scheduler CPU",
            jobs,
            f"{cpu:.0%}",
            "",
            "",
            "" if heavy else "<= 10 %",
            None if heavy else cpu <= 0.10,
        )
        if probing:
            _report_propagation(results, "busy", busy, 0.250)
    rq_steady(url, seconds, results)


def slot_burst(url: str, n: int, results: Results) -> None:
    """N jobs of one cron slot, fired by a running scheduler: time from the slot until all are queued.

    The realistic burst (a nightly or hourly slot shared by many jobs): the scheduler sees it
    coming and builds runs ahead, up to its look-ahead limit. Set beside the floor,
    ``enqueue_many`` of N jobs, measured here on the same Redis.
    """
    connection = redis.Redis.from_url(url)
    connection.flushall()
    floor = timed(
        lambda: Queue("floor", connection=connection).enqueue_many(
            [Queue.prepare_data(tasks.noop, args=(i,)) for i in range(n)]
        )
    )
    connection.flushall()
    server_now = connection.time()[0]
    # Time to register, start the scheduler and let it settle before the slot comes.
    slot = server_now + 6 + n // 2000
    at = time.gmtime(slot)
    admin = RedisCronScheduler(connection, logging_level="WARNING")
    admin.register_many(
        [
            {
                "func": tasks.noop,
                "queue_name": "burst",
                "id": f"burst:{i}",
                "args": (i,),
                "cron": f"{at.tm_min} {at.tm_hour} * * * {at.tm_sec}",
            }
            for i in range(n)
        ]
    )
    process = scheduler(url)
    watch = QueueWatch(url, "rq:queue:burst")
    try:
        if time.time() > slot - 1.5:
            raise RuntimeError(f"burst of {n:,}: the scheduler was not ready 1.5 s before the slot")
        watch.start()
        deadline = slot + 60 + n / 1000
        while int(connection.llen("rq:queue:burst")) < n and time.time() < deadline:
            time.sleep(0.05)
    finally:
        watch.stop()
        process.stop()
    done = next((t for t, length in watch.samples if length >= n), math.nan)
    first = next((t for t, length in watch.samples if length > 0), math.nan)
    took = done - slot
    share = floor / took
    wanted = 3.0 if n <= 1000 else 2.0
    results.add(
        "burst at its slot, running scheduler: first / all queued",
        n,
        f"{ms(first - slot)} / {ms(took)} ({n / took:,.0f}/s)",
        "",
        f"{ms(floor)} ({n / floor:,.0f}/s)",
        f">= {wanted:.1f}x enqueue_many",
        share >= wanted,
    )
    results.add("burst at its slot: throughput against the floor's", n, f"{share:.2f}x", "", "1.00x")


class QueueWatch:
    """Polls a queue's length every millisecond, to see when runs reach the queue (not when stamped)."""

    def __init__(self, url: str, queue: str) -> None:
        self.connection = redis.Redis.from_url(url)
        self.queue = queue
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), int(self.connection.llen(self.queue))))
            self._stop.wait(0.001)

    def all_queued_lags(self, slots: list[int], first: int, last: int) -> list[float]:
        """Per slot second in [first, last]: when the queue first held all runs up to it, minus the slot."""
        lags = []
        for second in range(first, last + 1):
            needed = sum(1 for slot in slots if slot <= second)
            seen = next((t for t, length in self.samples if length >= needed), None)
            if seen is not None:
                lags.append(seen - second)
        return lags


def rq_steady(url: str, seconds: float, results: Results) -> None:
    """rq's own CronScheduler with 1,000 ``interval=1`` jobs: the fires it achieves per second, and its CPU."""
    connection = redis.Redis.from_url(url)
    connection.flushall()
    process = Process([sys.executable, "-m", "benchmarks.rq_cron", url, str(STEADY_JOBS)], "rq's CronScheduler")
    try:
        time.sleep(WARM_UP + 1.0)  # it imports and registers in the child
        start, cpu_start = time.time(), process.cpu()
        time.sleep(seconds)
        end, cpu_end = time.time(), process.cpu()
    finally:
        process.stop()
    ids = _texts(connection.lrange("rq:queue:steady", 0, -1))
    fires = sum(start <= e < end for e in _enqueued(connection, ids))
    label = f"steady, {STEADY_JOBS:,} jobs interval=1, {end - start:.0f} s"
    results.add(
        f"{label}: fires per second (of {STEADY_JOBS:,} due)",
        STEADY_JOBS,
        "see slots missed",
        f"{fires / (end - start):,.0f}/s",
    )
    results.add(f"{label}: scheduler CPU", STEADY_JOBS, "see above", f"{(cpu_end - cpu_start) / (end - start):.0%}")


def propagation(connection: redis.Redis, probes: int, deadline: float | None = None) -> dict[str, list[float]]:
    """Edits from this process: time until the running scheduler has acted on each.

    create: a new interval job, due at once, until its run is in the queue;
    reschedule: the same job moved to every second, until the new slot's run is queued
    (counted from the call's return or the slot, whichever is later);
    delete: must stop it at once; any run enqueued after the call returned is a violation.
    """
    admin = RedisCronScheduler(connection, logging_level="WARNING")
    samples: dict[str, list[float]] = defaultdict(list)
    deleted: dict[str, float] = {}
    queue = "rq:queue:probe"
    for i in range(probes):
        if deadline is not None and time.time() > deadline - 1.5:
            break
        job_id = f"probe:{i}"
        admin.register(tasks.noop, "probe", id=job_id, interval=3600)
        returned = time.time()
        popped = connection.blpop([queue], timeout=5)
        if popped is None:
            raise RuntimeError(f"{job_id}: the scheduler did not enqueue a new due job within 5 s")
        samples["create"].append(time.time() - returned)
        admin.register(tasks.noop, "probe", id=job_id, cron="* * * * * *")
        returned = time.time()
        popped = connection.blpop([queue], timeout=5)
        if popped is None:
            raise RuntimeError(f"{job_id}: the scheduler did not act on a reschedule within 5 s")
        samples["reschedule"].append(time.time() - max(returned, _slot(_text(popped[1]))))
        time.sleep(random.uniform(0.0, 0.3))  # fall anywhere in the second
        RedisCronJob.fetch(job_id, connection).delete()
        deleted[job_id] = time.time()
        time.sleep(random.uniform(0.01, 0.05))
    time.sleep(1.2)
    late: list[Any] = []
    ids = _texts(connection.lrange(queue, 0, -1))
    for rq_id, enqueued in zip(ids, _enqueued(connection, ids), strict=True):
        if enqueued > deleted.get(_cron_id(connection, rq_id), math.inf):
            late.append(rq_id)
    samples["runs after delete returned"] = [float(len(late))]
    connection.delete(queue)
    return samples


def _cron_id(connection: redis.Redis, rq_id: str) -> str:
    return str(Job.fetch(rq_id, connection=connection).meta.get("rediscron_id"))


def _report_propagation(results: Results, state: str, samples: dict[str, list[float]], limit: float) -> None:
    for what in ("create", "reschedule"):
        values = samples[what]
        p99 = percentile(values, 99)
        results.add(
            f"edit propagation ({state}): {what}, p50 / p99",
            len(values),
            f"{ms(median(values))} / {ms(p99)}",
            "restart",
            "",
            f"p99 <= {limit * 1000:.0f} ms",
            p99 <= limit,
        )
    late = int(samples["runs after delete returned"][0])
    results.add(
        f"edit propagation ({state}): runs after delete() returned",
        len(samples["create"]),
        str(late),
        "",
        "",
        "0",
        late == 0,
    )


def idle_propagation(url: str, probes: int, results: Results) -> None:
    """Edits reaching a scheduler that has nothing else to do."""
    connection = redis.Redis.from_url(url)
    connection.flushall()
    process = scheduler(url)
    try:
        time.sleep(0.5)
        samples = propagation(connection, probes)
    finally:
        process.stop()
    _report_propagation(results, "idle", samples, 0.050)
