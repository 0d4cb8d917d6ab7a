"""In-process benchmarks with an injected clock: register, memory, idle pass and burst.

Each one runs rediscron, rq's in-memory ``rq.cron.CronScheduler`` and the floor (rq's
pipelined ``Queue.enqueue_many``) on the same Redis, flushed between runs.
"""

from __future__ import annotations

import gc
import logging
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import redis
from rq import Queue
from rq.cron import CronScheduler

from rediscron import RedisCronScheduler, keys
from rediscron.testing import RedisServer

from . import tasks
from .common import EPOCH, CountingConnection, Results, ServerCommands, counting_client, median, ms, rate, timed

#: ``register()`` one by one is O(1) per job; past this many its rate is measured on the first ones only.
ONE_BY_ONE_CAP = 10_000
IDLE_PASSES = 20


def _scheduler(connection: redis.Redis, now: list[float]) -> RedisCronScheduler:
    return RedisCronScheduler(connection, name="bench", clock=lambda: now[0], logging_level="WARNING")


def _items(n: int, *, offset: int = 0, **schedule: Any) -> list[dict[str, Any]]:
    return [
        {"func": tasks.noop, "queue_name": "default", "id": f"bench:{i}", "args": (i,), **schedule}
        for i in range(offset, offset + n)
    ]


def _rq_cron(connection: redis.Redis, n: int, **schedule: Any) -> CronScheduler:
    cron = CronScheduler(connection, logging_level="WARNING")
    for i in range(n):
        cron.register(tasks.noop, "default", args=(i,), **schedule)
    return cron


#: The floor enqueues this many jobs per enqueue_many call (one pipeline): a million in one would
#: hold the whole reply at once.
FLOOR_CHUNK = 100_000


def _floor(connection: redis.Redis, n: int) -> None:
    queue = Queue("default", connection=connection)
    for start in range(0, n, FLOOR_CHUNK):
        queue.enqueue_many(
            [Queue.prepare_data(tasks.noop, args=(i,)) for i in range(start, min(n, start + FLOOR_CHUNK))]
        )


def _repeat(connection: redis.Redis, repeats: int, setup: Callable[[], Any], action: Callable[[Any], object]) -> float:
    """Median seconds of ``action(setup())`` over ``repeats`` runs, each on a flushed Redis."""
    times = []
    for _ in range(repeats):
        connection.flushall()
        state = setup()
        times.append(timed(lambda: action(state)))  # noqa: B023 - called at once
    return median(times)


def register(url: str, n: int, repeats: int, results: Results, cap: int = ONE_BY_ONE_CAP) -> None:
    """Register throughput (one by one and ``register_many``) and Redis memory per job."""
    connection = redis.Redis.from_url(url)
    now = [EPOCH]
    cron: dict[str, Any] = {"cron": "*/5 * * * *"}
    one = min(n, cap)

    def one_by_one(scheduler: RedisCronScheduler) -> None:
        for item in _items(one, **cron):
            scheduler.register(**item)

    single = _repeat(connection, repeats, lambda: _scheduler(connection, now), one_by_one)
    many = _repeat(
        connection,
        repeats,
        lambda: (_scheduler(connection, now), _items(n, **cron)),
        lambda state: state[0].register_many(state[1]),
    )
    in_memory = _repeat(connection, repeats, lambda: None, lambda _: _rq_cron(connection, n, **cron))
    floor = _repeat(connection, repeats, lambda: None, lambda _: _floor(connection, n))
    label = "register() one by one" + (f" (first {one:,})" if one < n else "")
    results.add(label, n, rate(one, single), rate(n, in_memory), rate(n, floor), ">= 5,000/s", one / single >= 5000)
    results.add(
        "register_many()",
        n,
        f"{rate(n, many)} ({floor / many:.2f}x the floor)",
        rate(n, in_memory),
        rate(n, floor),
        ">= 1.0x enqueue_many",
        floor / many >= 1.0,
    )

    # Memory: what the registered jobs hold in Redis (the floor column: RQ jobs, for scale).
    connection.flushall()
    before = int(connection.info("memory")["used_memory"])
    _scheduler(connection, now).register_many(_items(n, **cron))
    after = int(connection.info("memory")["used_memory"])
    # The audit log holds an entry per create, capped (audit.AUDIT_LENGTH): shown apart, as its total.
    audit_log = int(connection.memory_usage(keys.audit(), samples=0) or 0)
    pipe = connection.pipeline(transaction=False)
    for i in range(n):
        pipe.memory_usage(keys.job(f"bench:{i}"))
    own = sum(int(x or 0) for x in pipe.execute())
    shared = sum(int(connection.memory_usage(key, samples=0) or 0) for key in (keys.schedule(), keys.ids()))
    per_job = (own + shared) / n
    connection.flushall()
    _floor(connection, n)
    rq_jobs = [key for key in connection.scan_iter("rq:job:*", count=1000)][:1000]
    rq_per_job = median([float(connection.memory_usage(key) or 0) for key in rq_jobs])
    results.add("Redis memory per job (MEMORY USAGE)", n, f"{per_job:,.0f} B", "in process", f"{rq_per_job:,.0f} B")
    used = (after - before) / n
    # What users pay: the growth of used_memory.
    results.add(
        "Redis memory per job (used_memory; + the capped audit log)",
        n,
        f"{used - audit_log / n:,.0f} B (+ {audit_log / 1e6:.1f} MB)",
        "",
        "",
        "<= 400 B at 100,000" if n >= 100_000 else "",
        used - audit_log / n <= 400 if n >= 100_000 else None,
    )


def idle(url: str, sizes: list[int], results: Results) -> None:
    """Round trips and time of one scheduler pass with N jobs registered and none due."""
    counted = counting_client(url)
    connection = redis.Redis.from_url(url)
    times: dict[int, float] = {}
    for n in sizes:
        connection.flushall()
        now = [EPOCH + 12 * 3600]  # noon: a midnight job is not due
        scheduler = _scheduler(counted, now)
        scheduler.register_many(_items(n, cron="0 0 * * *"))
        scheduler.register_birth()
        scheduler.run_once()
        trips, passes = [], []
        for _ in range(IDLE_PASSES):
            CountingConnection.sent = 0
            passes.append(timed(scheduler.run_once))
            trips.append(CountingConnection.sent)
        scheduler.register_death()
        rq_cron = _rq_cron(connection, n, cron="0 0 * * *")
        rq_pass = median([timed(rq_cron.enqueue_jobs) for _ in range(IDLE_PASSES)])
        times[n] = median(passes)
        results.add("idle pass: round trips", n, str(max(trips)), "0 (in memory)", "", "<= 2", max(trips) <= 2)
        results.add("idle pass: time", n, ms(times[n]), ms(rq_pass), "")
    smallest, largest = min(sizes), max(sizes)
    growth = times[largest] / times[smallest]
    results.add(
        f"idle pass time, {largest:,} vs {smallest:,} jobs", "", f"x{growth:.2f}", "", "", "flat (< x2)", growth < 2
    )


def burst(url: str, n: int, repeats: int, results: Results) -> None:
    """N jobs due at once: time until all are in their RQ queues; round trips and commands per job."""
    counted = counting_client(url)
    connection = redis.Redis.from_url(url)
    commands = ServerCommands(connection)
    trips: list[int] = []
    ran: list[int] = []

    def setup() -> RedisCronScheduler:
        now = [EPOCH]
        scheduler = _scheduler(counted, now)
        scheduler.register_many(_items(n, interval=3600))  # a new interval job is due at once
        scheduler.register_birth()
        now[0] += 0.5
        CountingConnection.sent = 0
        commands.start()
        return scheduler

    def fire(scheduler: RedisCronScheduler) -> None:
        scheduler.enqueue_jobs()
        trips.append(CountingConnection.sent)
        ran.append(commands.stop())
        queued = connection.llen("rq:queue:default")
        if queued != n:
            raise AssertionError(f"burst enqueued {queued} of {n} jobs")
        scheduler.register_death()

    ours = _repeat(connection, repeats, setup, fire)
    rq_trips: list[int] = []

    def rq_setup() -> CronScheduler:
        cron = _rq_cron(counted, n, interval=3600)  # never run: due at once
        CountingConnection.sent = 0
        return cron

    def rq_fire(cron: CronScheduler) -> None:
        cron.enqueue_jobs()
        rq_trips.append(CountingConnection.sent)

    theirs = _repeat(connection, repeats, rq_setup, rq_fire)
    floor = _repeat(connection, repeats, lambda: None, lambda _: _floor(connection, n))
    share = floor / ours
    results.add(
        "burst: all due at once",
        n,
        f"{ms(ours)} ({rate(n, ours)})",
        f"{ms(theirs)} ({rate(n, theirs)})",
        f"{ms(floor)} ({rate(n, floor)})",
        ">= 2.0x enqueue_many",
        share >= 2.0,
    )
    results.add("burst: throughput against the floor's", n, f"{share:.2f}x", f"{floor / theirs:.2f}x", "1.00x")
    results.add(
        "burst: round trips / commands per job",
        n,
        f"{median(trips) / n:.3f} / {median(ran) / n:.1f}",
        f"{median(rq_trips) / n:.3f} / -",
        "",
    )


def _clock(now: list[float]) -> Callable[[], float]:
    return lambda: now[0]


def replicated(n: int, results: Results) -> None:
    """The cost of ``wait_replicas=1`` (a WAIT after each fire): N due jobs fired on a master with one
    replica, with and without it (a master and a replica of their own, not the suite's Redis)."""
    master = RedisServer()
    master.start()
    replica = RedisServer(extra_args=["--replicaof", "127.0.0.1", str(master.port)])
    replica.start()
    try:
        connection = master.client()
        deadline = time.monotonic() + 10
        while replica.client().info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                raise RuntimeError("the benchmark's replica did not connect")
            time.sleep(0.05)
        took = {}
        for wait in (0, 1):
            connection.flushall()
            now = [EPOCH]
            scheduler = RedisCronScheduler(
                connection, name="bench", clock=_clock(now), wait_replicas=wait, logging_level="WARNING"
            )
            scheduler.register_many(_items(n, interval=3600))
            scheduler.register_birth()
            now[0] += 0.5
            took[wait] = timed(scheduler.enqueue_jobs)
            if scheduler.stats.fired != n:
                raise AssertionError(f"replicated burst: {scheduler.stats.fired} of {n} reported fired")
            scheduler.register_death()
    finally:
        replica.cleanup()
        master.cleanup()
    results.add(
        "burst with a replica: wait_replicas=0 / 1 (WAIT after each fire)",
        n,
        f"{ms(took[0])} / {ms(took[1])} ({took[1] / took[0] - 1:+.0%})",
        "",
        "",
    )


def slot_coming(connection: redis.Redis, n: int, now: list[float]) -> tuple[RedisCronScheduler, int]:
    """A leading scheduler on the injected clock ``now``, its look-ahead on (as in the running loop), and
    N jobs sharing a slot half a second away (within the shortest look-ahead, whatever N): its runs
    are built by the next passes. The scheduler and the slot."""
    scheduler = RedisCronScheduler(
        connection, name="bench", clock=lambda: now[0], lock_ttl=600, logging_level="WARNING"
    )
    scheduler.register_birth()
    scheduler.lookahead.enabled = True  # what start() sets for the running loop
    slot = int(EPOCH) + 3600
    at = time.gmtime(slot)
    scheduler.register_many(_items(n, cron=f"{at.tm_min} {at.tm_hour} * * * {at.tm_sec}"))
    scheduler.run_once()  # nothing within reach yet: it counts what is coming
    now[0] = slot - 0.5
    return scheduler, slot


def ahead_memory(url: str, n: int, results: Results) -> None:
    """Python memory a scheduler holds for N runs built ahead of the slot they share (tracemalloc).

    The jobs' definitions, read while their runs are built, are cached whether runs are built ahead
    or not (at most `dispatch.KNOWN_LIMIT`): they are shown apart, per run, from what the runs hold.
    """
    connection = redis.Redis.from_url(url)
    connection.flushall()
    now = [EPOCH]
    scheduler, _slot = slot_coming(connection, n, now)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        built, stalled = 0, 0
        while built < n and stalled < 5:  # each pass builds as many as it has time for
            scheduler.run_once()
            scheduler.heartbeat()  # as the loop does between passes (a long build stops when one is due)
            stalled = stalled + 1 if len(scheduler.lookahead.runs) == built else 0
            built = len(scheduler.lookahead.runs)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
        # The definitions read on the way are cached whether runs are built ahead or not: shown apart.
        scheduler.dispatch.forget_definitions()
        gc.collect()
        definitions = held - (tracemalloc.get_traced_memory()[0] - before)
    finally:
        tracemalloc.stop()
        scheduler.register_death()
    built = len(scheduler.lookahead.runs)
    if built != n:
        raise AssertionError(f"the look-ahead built {built} of {n} runs")
    runs = held - definitions
    results.add(
        "memory held per run built ahead (+ definitions cached)",
        n,
        f"{runs / n:,.0f} B (+ {definitions / n:,.0f} B)",
        "",
        "",
        "<= 1 KB",
        runs / n <= 1024,
    )


def quiet() -> None:
    """Keep rq's and rediscron's per-job log lines out of the measurements."""
    for name in ("rq", "rq.cron", "rediscron"):
        logging.getLogger(name).setLevel(logging.WARNING)
