"""Cron inside RQ workers: ``rq worker --worker-class rediscron.CronWorker``.

Every such worker hosts a rediscron scheduler that stands by for the lock; one leads at a time,
and when its worker stops, is killed or paused, another takes over under the lock's rules (a
graceful stop releases the lock at once; a crash or a pause frees it when its TTL runs out). The
fencing epoch keeps any number of candidates safe: a paused leader that wakes up enqueues nothing.

The scheduler runs in a thread of the worker's main process with a Redis pool of its own, so the
worker's blocking dequeue never waits for it. A work horse is forked from the main thread: it
never runs the scheduler.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from rq.worker import Worker

from .connection import own_client
from .scheduler import RedisCronScheduler

log = logging.getLogger("rediscron.worker")

#: Overrides ``CronWorker.lock_ttl`` (set by ``rqrcron worker --lock-ttl``).
LOCK_TTL_VARIABLE = "RQRCRON_WORKER_LOCK_TTL"


class CronWorker(Worker):
    """An rq ``Worker`` that also hosts a rediscron scheduler (a standby until it takes the lock).

    Set ``lock_ttl`` (seconds; the longest wait before a standby takes over after a crash or a
    pause) and ``cron_max_sleep_interval`` on a subclass, or with ``rqrcron worker --lock-ttl``.
    """

    #: How long the lock outlives a leading worker that stops heartbeating (killed or paused).
    lock_ttl: int = 30
    #: Longest wait between two passes of the hosted scheduler, in seconds.
    cron_max_sleep_interval: float = 60.0
    #: The scheduler class each worker hosts.
    cron_scheduler_class: type[RedisCronScheduler] = RedisCronScheduler

    def work(self, *args: Any, **kwargs: Any) -> bool:
        """rq's work loop, with the hosted scheduler standing by (or leading) for as long as it runs.

        The scheduler logs at the worker's ``logging_level`` (``rq worker --logging_level``).
        """
        level = kwargs.get("logging_level", args[1] if len(args) > 1 else None)
        self._cron_logging_level = level or "INFO"
        try:
            return bool(super().work(*args, **kwargs))
        finally:
            self._stop_cron()

    def request_stop(self, signum: Any, frame: Any) -> None:
        """rq's warm shutdown (SIGINT, SIGTERM), and the hosted scheduler asked to stop at once: it releases
        the lock if it leads, so a standby takes over while this worker winds down."""
        scheduler = getattr(self, "cron_scheduler", None)
        if scheduler is not None:
            scheduler.request_stop()
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def teardown(self) -> None:
        """The hosted scheduler stopped first (rq's own teardown may wait on its Pub/Sub thread)."""
        if not self.is_horse:
            self._stop_cron()
        super().teardown()  # type: ignore[no-untyped-call]

    def unsubscribe(self) -> None:
        """rq's, with its Pub/Sub thread told to stop before the unsubscribe's reply wakes it.

        rq unsubscribes, then stops the thread and waits for it; a thread that took the reply in
        between waits for another message, up to 60 s (its ``sleep_time``), and the worker's exit
        with it (seen with redis-py 8.2, in about one stop in ten here). Stopped first, the thread
        leaves as the reply comes.
        """
        running = getattr(getattr(self, "pubsub_thread", None), "_running", None)
        if isinstance(running, threading.Event):
            running.clear()
        super().unsubscribe()  # type: ignore[no-untyped-call]

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()  # type: ignore[no-untyped-call]
        # Started once rq handles SIGINT/SIGTERM: a stop that comes as soon as it leads is a clean one.
        if getattr(self, "cron_scheduler", None) is None:
            self.cron_scheduler = self._start_cron()

    def _start_cron(self) -> RedisCronScheduler:
        lock_ttl = self.lock_ttl
        if os.environ.get(LOCK_TTL_VARIABLE, "").isdigit():
            lock_ttl = int(os.environ[LOCK_TTL_VARIABLE])  # `rqrcron worker --lock-ttl`
        connection = own_client(self.connection, max_connections=4, socket_timeout=max(5.0, lock_ttl / 3))
        scheduler = self.cron_scheduler_class(
            connection,
            name=f"{self.name}:cron",
            lock_ttl=lock_ttl,
            max_sleep_interval=self.cron_max_sleep_interval,
            logging_level=getattr(self, "_cron_logging_level", "INFO"),
        )
        self._cron_thread = threading.Thread(
            target=self._run_cron, args=(scheduler,), name="rediscron-scheduler", daemon=True
        )
        self._cron_thread.start()
        return scheduler

    def _run_cron(self, scheduler: RedisCronScheduler) -> None:
        try:
            scheduler.start(standby=True)
        except Exception:
            # The worker goes on working; its jobs do not depend on the scheduler it hosts.
            log.exception("Worker %s: its cron scheduler stopped", self.name)

    def _stop_cron(self) -> None:
        """Stop the hosted scheduler: it releases the lock if it leads, so a standby takes over at once."""
        scheduler, thread = getattr(self, "cron_scheduler", None), getattr(self, "_cron_thread", None)
        if scheduler is None or thread is None:
            return
        scheduler.request_stop()
        thread.join(timeout=max(10.0, self.lock_ttl / 3))
        if thread.is_alive():
            log.warning("Worker %s: its cron scheduler did not stop in time; its lock expires by itself", self.name)
