"""rq's own CronScheduler with N ``interval=1`` jobs on queue ``steady``, for the steady-state comparison.

Usage: python -m benchmarks.rq_cron REDIS_URL N
"""

from __future__ import annotations

import sys

import redis
from rq.cron import CronScheduler

from . import tasks


def main() -> None:
    connection = redis.Redis.from_url(sys.argv[1])
    cron = CronScheduler(connection, logging_level="WARNING")
    for i in range(int(sys.argv[2])):
        cron.register(tasks.noop, "steady", args=(i,), interval=1)
    cron.start()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
