"""``make demo``: a scheduler, a worker, live edits from a second process, watched with ``rqrcron info``
and on the web page (``rqrcron web``, whose URL and token it prints).

On a throwaway Redis (the ``redis-server`` on PATH, else the embedded one), or on
``REDIS_URL`` if set: the demo then writes only ``demo:*`` keys, the cron jobs below and
RQ jobs on queue ``demo``, and removes them when it ends. ``DEMO_SECONDS`` sets how long
the live view runs (default 20). Ctrl-C at any point stops everything it started.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from redis import Redis
from rq import Queue

from examples.tasks import greet
from rediscron import RedisCronJob, RedisCronScheduler, Registry, audit, keys
from rediscron.lock import SchedulerLock
from rediscron.store import delete as delete_job
from rediscron.testing import RedisServer, free_port
from rediscron.web import DEFAULT_PORT as DEMO_WEB_PORT

ROOT = Path(__file__).resolve().parents[1]
JOB_IDS = ("greet", "report", "standup", "nightly", "heartbeat")
DEMO_SCHEDULER = f"rediscron-demo-{os.getpid()}"


def register(connection: Redis) -> None:
    scheduler = RedisCronScheduler(connection, logging_level="WARNING")
    scheduler.register(greet, "demo", id="greet", args=("world",), interval=3)
    scheduler.register(greet, "demo", id="report", args=("minute report",), cron="* * * * *")
    scheduler.register(greet, "demo", id="standup", args=("stand-up",), cron="30 9 * * 1-5", timezone="Europe/Berlin")
    scheduler.register(greet, "demo", id="nightly", args=("night owls",), cron="0 3 * * *", enabled=False)
    print(
        "Registered: greet (every 3s), report (every minute), standup (09:30 Mon-Fri, Europe/Berlin),\n"
        "            nightly (03:00 UTC, disabled)"
    )
    standup = RedisCronJob.fetch("standup", connection)
    when = ", ".join(f"{run.astimezone(ZoneInfo('Europe/Berlin')):%a %d %b %H:%M %Z}" for run in standup.next_runs(3))
    print(f"Preview: standup runs next on {when} (`rqrcron preview` shows any schedule)")


class Children:
    """The processes the demo starts; all of them are stopped however the demo ends."""

    def __init__(self, url: str, logs: Path) -> None:
        self.env = {**os.environ, "DEMO_REDIS_URL": url, "PYTHONPATH": str(ROOT)}
        self.logs = logs
        self.running: list[subprocess.Popen[bytes]] = []
        self.files: list[IO[bytes]] = []

    def start(self, name: str, args: list[str], quiet: bool = True) -> subprocess.Popen[bytes]:
        log = None
        if quiet:
            log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
            self.files.append(log)
        child = subprocess.Popen(args, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT if log else None)
        self.running.append(child)
        return child

    def stop(self, interrupted: bool) -> None:
        if interrupted:
            # Ctrl-C reached the children too: let them finish their own clean stop first.
            deadline = time.monotonic() + 5
            while any(child.poll() is None for child in self.running) and time.monotonic() < deadline:
                time.sleep(0.05)
        for child in self.running:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.running:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for log in self.files:
            log.close()


class DemoError(Exception):
    """The demo cannot run here; the message says why and what to do."""


def check_redis_is_free(connection: Redis) -> None:
    """On a Redis of the user's: refuse rather than take over a running scheduler or overwrite jobs."""
    holder = SchedulerLock.holder(connection)
    if holder is not None:
        raise DemoError(
            f"another rediscron scheduler ({holder.name}) holds the lock on this Redis, so the demo's "
            "own scheduler could not run. Stop it, or run `make demo` without REDIS_URL (a throwaway "
            "Redis)."
        )
    taken = [job_id for job_id in JOB_IDS if RedisCronJob.exists(job_id, connection)]
    if taken:
        raise DemoError(
            f"this Redis already has cron job(s) {', '.join(taken)}, which the demo would overwrite and "
            "delete. Run `make demo` without REDIS_URL (a throwaway Redis)."
        )
    others = connection.scard(keys.ids())
    if others:
        raise DemoError(
            f"this Redis already has {others} cron job(s): the demo's scheduler would run them too. Run "
            "`make demo` without REDIS_URL (a throwaway Redis), or on a Redis database of its own "
            "(redis://host:6379/15)."
        )


def wait_for_scheduler(connection: Redis, scheduler: subprocess.Popen[bytes], logs: Path) -> None:
    """Until the demo's scheduler holds the lock; DemoError if it exits or never gets it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        holder = SchedulerLock.holder(connection)
        if holder is not None and holder.name == DEMO_SCHEDULER:
            return
        if scheduler.poll() is not None:
            log = (logs / "scheduler.log").read_text(errors="replace").strip().splitlines()
            raise DemoError(f"the demo's scheduler stopped at once: {log[-1] if log else 'no output'}")
        time.sleep(0.05)
    raise DemoError(
        "the demo's scheduler did not take the lock within 10 s"
        + (f" (held by {holder.name})" if holder is not None else "")
    )


def forget_queue(connection: Redis, name: str) -> None:
    """Remove the demo's queue, its RQ jobs and rq's registries of it, so `rq info` no longer lists it."""
    queue = Queue(name, connection=connection)
    registries = [
        queue.finished_job_registry,
        queue.failed_job_registry,
        queue.started_job_registry,
        queue.deferred_job_registry,
        queue.scheduled_job_registry,
        queue.canceled_job_registry,
    ]
    run_ids = [*queue.get_job_ids(), *(job_id for registry in registries for job_id in registry.get_job_ids())]
    queue.empty()
    connection.delete(*[keys.rq_job(run_id) for run_id in run_ids], *[registry.key for registry in registries])
    queue.delete(delete_jobs=False)


def start_web(children: Children, cli: list[str]) -> str:
    """``rqrcron web`` beside the demo (when the ``web`` extra is installed): what to print about it."""
    if importlib.util.find_spec("starlette") is None:
        return "(The web page needs the 'web' extra: pip install 'rediscron[web]'.)\n"
    port = DEMO_WEB_PORT if port_is_free(DEMO_WEB_PORT) else free_port()
    token = secrets.token_urlsafe(18)
    children.env["RQRCRON_WEB_TOKEN"] = token  # in the environment, not on the process list
    web = children.start("web", [*cli, "web", "--port", str(port)])
    children.env.pop("RQRCRON_WEB_TOKEN")
    deadline = time.monotonic() + 15
    while port_is_free(port) and web.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if web.poll() is not None or port_is_free(port):
        log = (children.logs / "web.log").read_text(errors="replace").strip().splitlines()
        return f"The web page did not start: {log[-1] if log else 'no output'}\n"
    return f"Web page, while the demo runs: http://127.0.0.1:{port}/ (sign in with token {token})\n"


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def summary(connection: Redis) -> bool:
    """Print what happened; False if the worker ran nothing."""
    print("\nWhat the second process did while you watched:")
    for line in connection.lrange("demo:actions", 0, -1):
        print("  ", line.decode())
    runs = [line.decode() for line in connection.lrange("demo:log", 0, -1)]
    if not runs:
        print("Nothing ran: no job reached the worker. The logs of the demo's processes said:", file=sys.stderr)
        return False
    print(f"What the worker ran ({len(runs)} runs, the last ones):")
    for line in runs[-8:]:
        print("  ", line)
    print("Each change reached the running scheduler without a restart.")
    changes = audit.read(connection, count=6)
    print("The audit log's newest entries (`rqrcron log` shows each field changed; `rqrcron rollback` undoes):")
    for entry in changes:
        print(f"   {entry.at:%H:%M:%S}  {entry.action:<9} {entry.job_id or '(every job)'}  by {entry.actor}")
    return True


def main() -> int:
    seconds = float(os.environ.get("DEMO_SECONDS", "20"))
    url = os.environ.get("REDIS_URL", "")
    server = None
    logs = Path(tempfile.mkdtemp(prefix="rediscron-demo-"))
    children = Children(url, logs)
    connection: Redis | None = None
    interrupted = False
    registered = False  # on a Redis of the user's, only what the demo registered is removed
    try:
        if not url:
            server = RedisServer()
            server.start()
            url = server.url
            children.env["DEMO_REDIS_URL"] = url
            print(f"Started a throwaway Redis at {url}")
        connection = Redis.from_url(url)
        if server is None:
            check_redis_is_free(connection)
        register(connection)
        registered = True
        cli = [sys.executable, "-m", "rediscron", "-u", url]
        scheduler = children.start(
            "scheduler", [*cli, "scheduler", "--lock-ttl", "10", "-l", "WARNING", "--name", DEMO_SCHEDULER]
        )
        wait_for_scheduler(connection, scheduler, logs)
        children.start("worker", [str(Path(sys.executable).parent / "rq"), "worker", "--url", url, "demo"])
        web = start_web(children, cli)
        print(
            f"Started a scheduler and an rq worker; a second process will edit, add and delete jobs.\n"
            f"{web}"
            f"Watching `rqrcron info -R -i 1` for {seconds:.0f}s (Ctrl-C stops the demo)..."
        )
        time.sleep(1.5)
        children.start("editor", [sys.executable, "-m", "examples.editor", url, str(seconds)])
        viewer = children.start("viewer", [*cli, "info", "-R", "-i", "1"], quiet=False)
        time.sleep(seconds)
        viewer.send_signal(signal.SIGINT)  # what Ctrl-C does: the view ends cleanly
        try:
            viewer.wait(5)
        except subprocess.TimeoutExpired:
            # Started with SIGINT ignored (in the background, under nohup): end it another way.
            viewer.terminate()
            viewer.wait(5)
        if not summary(connection):
            for name in ("scheduler", "worker"):
                print(f"--- {name} ---\n{(logs / f'{name}.log').read_text(errors='replace')[-2000:]}", file=sys.stderr)
            return 1
        return 0
    except DemoError as exc:
        print(f"The demo cannot run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        interrupted = True
        print("\nInterrupted; stopping everything the demo started.")
        return 130
    finally:
        # A second Ctrl-C while cleaning up must not leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        children.stop(interrupted)
        if connection is not None and server is None and registered:
            # A Redis of the user's: remove what the demo wrote. (A throwaway one just goes.)
            for job_id in JOB_IDS:
                delete_job(connection, job_id)
            forget_queue(connection, "demo")
            Registry(connection).resume()  # if the demo was stopped while it had every fire paused
            connection.delete("demo:log", "demo:actions")
        if server is not None:
            server.cleanup()
        shutil.rmtree(logs, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
