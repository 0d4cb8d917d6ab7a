"""Cron inside the workers: does leading the scheduler slow a worker's own jobs?

A plain rq ``Worker`` and a leading ``CronWorker`` each drain the same N no-op jobs (burst mode, a
work horse forked per job, as rq runs them); meanwhile the CronWorker's scheduler fires 1,000 jobs
every second into another queue.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from rq import Queue, Worker

from rediscron import keys
from rediscron.registry import Registry
from rediscron.worker import CronWorker

from . import tasks
from .common import Results

CRON_JOBS = 1000


def _drain(worker_class: type[Worker], connection: redis.Redis, n: int) -> float:
    queue = Queue("work", connection=connection)
    queue.enqueue_many([Queue.prepare_data(tasks.noop, args=(i,)) for i in range(n)])
    worker = worker_class([queue], connection=connection)
    start = time.perf_counter()
    worker.work(burst=True, logging_level="WARNING")
    took = time.perf_counter() - start
    if queue.count:
        raise AssertionError(f"{queue.count} jobs left")
    return took


def leading_worker(url: str, n: int, results: Results) -> None:
    """Jobs per second of a plain worker and of a CronWorker that leads a busy scheduler."""
    connection = redis.Redis.from_url(url)
    connection.flushall()
    logging.getLogger("rediscron").setLevel(logging.WARNING)
    plain = _drain(Worker, connection, n)
    for cron_jobs in (10, CRON_JOBS):
        connection.flushall()
        items: list[dict[str, Any]] = [
            {"func": "benchmarks.tasks.noop", "queue_name": "cron", "id": f"w:{i}", "cron": "* * * * * *"}
            for i in range(cron_jobs)
        ]
        Registry(connection).register_many(items)
        hosting = _drain(CronWorker, connection, n)
        fired = int(connection.hget(keys.stats(), "fired") or 0)
        results.add(
            f"worker: jobs/s, a CronWorker leading {cron_jobs:,} jobs every second vs a plain rq Worker",
            n,
            f"{n / hosting:,.0f}/s ({fired:,} cron runs fired meanwhile)",
            "",
            f"{n / plain:,.0f}/s (plain Worker)",
            ">= 90 % of the plain worker",
            n / hosting >= 0.9 * n / plain,
        )
    connection.flushall()
