"""The demo's second process: it edits, adds and deletes cron jobs while the scheduler runs, then pauses
every fire for a moment and resumes.

Usage: python -m examples.editor REDIS_URL SECONDS
Each action is also written to the Redis list ``demo:actions``, for the demo's summary.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone

from redis import Redis

from examples.tasks import greet
from rediscron import RedisCronJob, RedisCronScheduler, Registry


def main() -> None:
    connection = Redis.from_url(sys.argv[1])
    seconds = float(sys.argv[2])
    admin = RedisCronScheduler(connection, logging_level="WARNING")
    registry = Registry(connection)
    start = time.monotonic()

    def at(fraction: float, what: str) -> None:
        time.sleep(max(0.0, start + seconds * fraction - time.monotonic()))
        connection.rpush("demo:actions", f"{datetime.now(timezone.utc):%H:%M:%S} {what}")

    at(0.25, "edit 'greet': every 1s now, greeting 'rediscron'")
    admin.register(greet, "demo", id="greet", args=("rediscron",), interval=1)
    at(0.5, "add 'heartbeat': every 2s")
    admin.register(greet, "demo", id="heartbeat", args=("heartbeat",), interval=2)
    at(0.75, "delete 'report'")
    RedisCronJob.fetch("report", connection).delete()
    at(0.8, "pause every fire (the kill switch): the jobs keep their state, their slots wait")
    registry.pause(reason="demo", actor="the demo's editor")
    at(0.92, "resume: the slots that came meanwhile run once each job's catch-up policy says so")
    registry.resume()


if __name__ == "__main__":
    main()
