"""``make demo``: a scheduler, a worker and live edits on a throwaway Redis, in about 15 seconds.

Set REDIS_URL to use an existing Redis instead of the embedded one (the demo writes only
``demo:*`` keys and ``greet``/``nightly`` cron jobs, and deletes them when it ends).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from redis import Redis

from examples.tasks import greet
from rediscron import RedisCronJob, RedisCronScheduler
from rediscron.job import delete_job
from rediscron.testing import RedisServer

ROOT = Path(__file__).resolve().parents[1]


def show(connection: Redis, scheduler: RedisCronScheduler, elapsed: float) -> None:
    print(f"--- t={elapsed:4.1f}s ---")
    for job in scheduler.get_all_jobs():
        state = "enabled " if job.enabled else "disabled"
        nxt = job.next_enqueue_time.strftime("%H:%M:%S") if job.next_enqueue_time and job.enabled else "-"
        print(f"  {job.id:8} {job.describe_schedule():12} {state}  next {nxt}")
    for line in connection.lrange("demo:log", 0, -1):
        print("  worker ran:", line.decode())
    connection.delete("demo:log")


def main() -> int:
    server = None
    url = os.environ.get("REDIS_URL", "")
    if not url:
        server = RedisServer()
        server.start()
        url = server.url
        print(f"Started a throwaway Redis at {url}")
    connection = Redis.from_url(url)
    env = {**os.environ, "DEMO_REDIS_URL": url, "PYTHONPATH": str(ROOT)}
    children: list[subprocess.Popen[bytes]] = []
    try:
        scheduler = RedisCronScheduler(connection, logging_level="WARNING")
        scheduler.register(greet, "demo", id="greet", args=("world",), interval=3)
        scheduler.register(greet, "demo", id="nightly", args=("night owls",), cron="0 3 * * *", enabled=False)
        print("Registered 'greet' (every 3s) and 'nightly' (03:00 UTC, disabled)")
        bin_dir = Path(sys.executable).parent
        children.append(subprocess.Popen(
            [sys.executable, "-m", "rediscron", "-u", url, "scheduler", "--lock-ttl", "10", "-l", "WARNING"],
            env=env, cwd=ROOT))
        children.append(subprocess.Popen(
            [str(bin_dir / "rq"), "worker", "--url", url, "--quiet", "demo"], env=env, cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        start = time.monotonic()
        steps = {5: "edit", 10: "disable"}
        for tick in range(1, 16):
            time.sleep(max(0.0, start + tick - time.monotonic()))
            action = steps.get(tick)
            if action == "edit":
                print(">>> another process edits 'greet': every 1s, greeting 'rediscron'")
                RedisCronScheduler(connection, logging_level="WARNING").register(
                    greet, "demo", id="greet", args=("rediscron",), interval=1
                )
            elif action == "disable":
                print(">>> another process disables 'greet'")
                RedisCronJob.fetch("greet", connection).disable()
            show(connection, scheduler, time.monotonic() - start)
        print("Done: the scheduler picked up each change without a restart.")
        return 0
    except KeyboardInterrupt:
        print("Interrupted; cleaning up.")
        return 130
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        for job_id in ("greet", "nightly"):
            delete_job(connection, job_id)
        connection.delete("demo:log")
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
