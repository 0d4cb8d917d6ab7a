"""Creates, edits, disables, enables and deletes jobs as fast as it can, logging each call.

Usage: python -m tests.system.churn URL OPERATIONS SEED. Prints one JSON line per call:
{"id", "op", "start", "end", "on"}, where "on" says whether the job may fire after the call.
"""

from __future__ import annotations

import json
import random
import sys
import time

from redis import Redis

from rediscron import JobNotFound, RedisCronJob, RedisCronScheduler
from tests import jobs


def main(url: str, operations: int, seed: int) -> None:
    rng = random.Random(seed)
    connection = Redis.from_url(url)
    admin = RedisCronScheduler(connection, logging_level="ERROR")
    state: dict[str, bool | None] = {}  # None: absent; else enabled
    ids = [f"churn:{i}" for i in range(30)]
    for _ in range(operations):
        job_id = rng.choice(ids)
        op = rng.choice(["register", "register", "disable", "enable", "delete"])
        start = time.time()
        try:
            if op == "register":
                admin.register(jobs.noop, "default", id=job_id, interval=rng.choice([1, 2]))
                state[job_id] = True if state.get(job_id) is None else state[job_id]
            elif op == "delete":
                RedisCronJob.fetch(job_id, connection).delete()
                state[job_id] = None
            else:
                job = RedisCronJob.fetch(job_id, connection)
                job.enable() if op == "enable" else job.disable()
                state[job_id] = op == "enable"
        except JobNotFound:
            op = "missing"
        end = time.time()
        print(json.dumps({"id": job_id, "op": op, "start": start, "end": end, "on": bool(state.get(job_id))}))
        time.sleep(0.002)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
