"""Run every rediscron operation against one Redis Cluster node; run with RQ_KEY_PREFIX={rq}.

Usage: python -m tests.system.cluster_ops PORT. Prints a JSON report; any error is a failure.
"""

from __future__ import annotations

import json
import sys

from click.testing import CliRunner
from redis import Redis

from rediscron import RedisCronJob, RedisCronScheduler, keys
from rediscron.cli import main
from rediscron.status import read_status
from tests import jobs

T0 = 1_900_000_800


def run(port: int) -> dict[str, object]:
    connection = Redis(port=port)
    now = [T0 + 0.25]
    s = RedisCronScheduler(connection, name="cluster", clock=lambda: now[0], logging_level="ERROR")
    s.register(jobs.noop, "q", id="a", interval=60, overlap="skip", jitter=5)
    s.register_many([{"func": jobs.noop, "queue_name": "q", "id": f"m{i}", "cron": "* * * * *"} for i in range(5)])
    s.register(jobs.noop, "q", id="gone", interval=60)
    s.register_birth()
    fired = [job.id for job in s.enqueue_jobs()]
    now[0] += 60
    fired += [job.id for job in s.enqueue_jobs()]
    job = RedisCronJob.fetch("m0", connection)
    job.disable()
    job.enable()
    job.trigger()
    RedisCronJob.fetch("gone", connection).delete()
    connection.hset(keys.job("m1"), "revision", "corrupt")
    now[0] += 60
    s.enqueue_jobs()
    s.heartbeat()
    history = [e.rq_job_id for e in RedisCronJob.fetch("m0", connection).get_history()]
    status = read_status(connection)
    url = f"redis://127.0.0.1:{port}/0"
    cli = CliRunner()
    info = cli.invoke(main, ["-u", url, "info"], catch_exceptions=False).output
    export = cli.invoke(main, ["-u", url, "export"], catch_exceptions=False).output
    s.register_death()
    return {
        "fired": sorted(fired),
        "history": history,
        "invalid": sorted(s.get_invalid_jobs()),
        "registered": status.registered,
        "fired_total": status.fired_total,
        "info_lines": len(info.splitlines()),
        "exported": len(json.loads(export)["jobs"]),
        "keys": sorted(k.decode() for k in connection.keys("*")),
    }


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]))))
