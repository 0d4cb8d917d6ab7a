"""RedisCronScheduler: rq's ``CronScheduler`` over the jobs in Redis, built from named parts.

`Registry` reads and writes the jobs, `Leadership` holds the lock, `Dispatch` fires the due
slots, `LookAhead` builds runs before their slots, and `Stats` counts. This class keeps rq's
``CronScheduler`` contract (and rq-scheduler's names, so ported loops run unchanged), the
scheduler hash rq's tools read, and the loop that ``start()`` runs.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq.job import Job
from rq.queue import Queue

from . import enqueue
from .alerts import OnDisable, notifier
from .clock import Clock, from_epoch
from .dispatch import CONNECTION_ERRORS, DEFAULT_BATCH_SIZE, QUARANTINE_RETRY_INTERVAL, Dispatch
from .events import EventListener
from .imports import DEFAULT_ALLOWED_IMPORTS
from .job import RedisCronJob
from .leadership import Leadership, pid_namespace
from .logs import fields
from .lookahead import LOOKAHEAD, LookAhead
from .passes import Pass
from .presence import SCHEDULER_HASH_TTL, Presence
from .registration import CronRegistration
from .runner import Runner
from .stats import Stats
from .store import Tick

__all__ = ["LOOKAHEAD", "QUARANTINE_RETRY_INTERVAL", "RedisCronScheduler"]

#: rq's own cron tools read the scheduler hash's ``cron_jobs`` field: it lists the soonest enabled jobs, this many.
MAX_JOBS_IN_SCHEDULER_HASH = 1000


class RedisCronScheduler(CronRegistration):
    """Cron scheduler that uses Redis as the cron job source of truth.

    Each pass reads the due job ids from the Redis sorted set and their hashes,
    and enqueues every due slot exactly once: the RQ job id is derived from
    (job id, slot) and each enqueue is one atomic script that checks this
    scheduler still holds the lock and the job is unchanged since it was read.

    Only one scheduler enqueues at a time. [register_birth()][register_birth] takes
    ``rq:cron_jobs:lock`` (RuntimeError naming the holder if it is taken),
    [heartbeat()][heartbeat] extends it, [register_death()][register_death] releases it. Edits made
    by any process reach the loop at once through Pub/Sub, and at the latest on
    its next pass through the ``last_update`` marker.

    ``clock`` (epoch seconds) replaces the Redis server's clock; tests use it to
    move time without sleeping.

    Nothing Redis holds runs code here: a job's function is enqueued by its dotted
    path and imported by the RQ worker. ``allow_import`` lists the dotted-path prefixes
    (default ``("rq",)``, rq's own classes) from which the options naming code a run is
    built with (``job_class``, ``queue_class``, ``serializer``) may be imported, besides
    those this process registered jobs with itself; a job naming anything else is
    quarantined with a message saying what to allow.

    Example::

        scheduler = RedisCronScheduler(redis, lock_ttl=120)
        scheduler.register(rebuild_metric, queue_name="metrics", id="metric:pm25",
                           args=("pm25",), interval=300)
        scheduler.start()
    """

    def __init__(
        self,
        connection: Redis,
        logging_level: str | int = logging.INFO,
        name: str = "",
        lock_ttl: int = 120,
        max_sleep_interval: float = 60.0,
        *,
        clock: Clock | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        wait_replicas: int = 0,
        allow_import: Iterable[str] = DEFAULT_ALLOWED_IMPORTS,
        on_disable: OnDisable | None = None,
    ) -> None:
        """Set up a scheduler; nothing is read or written until it is used.

        :param connection: The Redis client that holds the registry (and RQ's queues).
        :param logging_level: Level for the ``rediscron`` logger when [start()][start] sets up
            output (only if the application configured none).
        :param name: This scheduler's name in rq's registry and in the lock (default
            ``host:pid:random``).
        :param lock_ttl: Seconds the lock outlives a scheduler that stops heartbeating: the
            longest wait before a standby takes over after a crash (at least 3).
        :param max_sleep_interval: Longest wait between two passes, in seconds.
        :param clock: Replaces the Redis server's clock (epoch seconds); for tests.
        :param batch_size: How many due slots one fire script handles.
        :param wait_replicas: After taking or extending the lock, wait (100 ms at most) until
            this many replicas have it.
        :param allow_import: Dotted-path prefixes from which the classes a job names
            (``job_class``, ``queue_class``, ``serializer``) may be imported; rq's own by default.
        :param on_disable: Told when this scheduler disables a job whose runs failed its
            ``max_consecutive_failures`` times in a row: a callable given a dict (``event``, ``id``,
            ``failures``, ``max_consecutive_failures``, ``slot``, ``at``, ``scheduler``), or an
            http(s) URL that dict is POSTed to as JSON (from a thread; 5 s timeout). A hook that
            fails is logged, never stops the scheduler.
        :raises ValueError: A setting out of its range.
        """
        _check_settings(lock_ttl, max_sleep_interval, batch_size, wait_replicas)
        super().__init__(connection, logging_level, name, clock=clock, allow_import=allow_import)
        self.log = logging.getLogger("rediscron.scheduler")
        self.logging_level = logging_level
        self.lock_ttl = lock_ttl
        self.max_sleep_interval = float(max_sleep_interval)
        #: What this scheduler has done: counters and the lag histogram.
        self.stats = Stats()
        #: The lock, heartbeats three times per lock TTL (one lost heartbeat never loses the lock).
        self.leadership = Leadership(
            connection,
            self.name,
            self.hostname,
            lock_ttl,
            heartbeat_interval=min(lock_ttl / 3, SCHEDULER_HASH_TTL / 4),
            wait_replicas=wait_replicas,
            log=self.log,
        )
        self.dispatch = Dispatch(
            self.registry,
            self.leadership,
            self.stats,
            name=self.name,
            batch_size=batch_size,
            log=self.log,
            on_disable=notifier(on_disable),
        )
        self.lookahead = LookAhead(self.dispatch)
        self._listener = EventListener(connection, self._on_event)
        self._runner = Runner(
            self, self.leadership, self.lookahead, self.stats, self._listener, name=self.name, log=self.log
        )
        #: The scheduler hash and rq's scheduler registry, where rq's tools see this scheduler.
        self.presence = Presence(connection, self.key, self.name, self.stats, self.log)
        #: One pass of the loop (run_once()); the heartbeat and the hash's save are this scheduler's own steps.
        self.passes = Pass(
            self.dispatch,
            self.lookahead,
            self.leadership,
            self.presence,
            self._listener,
            max_sleep=lambda: self.max_sleep_interval,
            heartbeat=lambda: self.heartbeat(),
            save=lambda: self.save(),
            log=self.log,
        )
        #: Who took the lock when start() returned because another scheduler held it (not a requested stop).
        self.superseded_by: str | None = None

    @property
    def batch_size(self) -> int:
        """How many due slots one fire script handles."""
        return self.dispatch.batch_size

    @batch_size.setter
    def batch_size(self, size: int) -> None:
        self.dispatch.batch_size = size

    @property
    def lock_epoch(self) -> int | None:
        """Fencing epoch of the lock this scheduler holds, or None."""
        return self.leadership.epoch

    @property
    def registry_lost(self) -> int | None:
        """How many jobs the registry had when it was found empty after the lock vanished (Redis lost its
        data); None while the registry is not in that state."""
        return self.leadership.registry_lost

    # -- one pass (rq's CronScheduler API) ----------------------------------------------------------

    def enqueue_jobs(self) -> list[RedisCronJob]:  # type: ignore[override]
        """Enqueue all Redis cron jobs currently due; return the ones enqueued.

        Assumes this scheduler holds the lock (see [register_birth()][register_birth]); if the
        lock is missing or was lost, nothing is enqueued.
        """
        enqueued: list[RedisCronJob] = []
        while True:
            now, _marker, _upcoming, due = self._tick()
            fired, more = self.dispatch.fire_due(now, due)
            enqueued.extend(fired)
            if self.dispatch.paused:
                return enqueued
            advanced = self.dispatch.advanced_to
            # catchup="all" moves a job to its next missed slot, which is due at once.
            if not more and (advanced is None or advanced > now):
                return enqueued

    def calculate_sleep_interval(self) -> float:
        """Return seconds until the next indexed cron job is due, capped by ``max_sleep_interval``.

        The cap makes sure runtime updates are observed even if no Pub/Sub message arrives.
        """
        now, _marker, upcoming, due = self._tick()
        if due:
            return 0.0
        return self.passes.sleep_for(now, upcoming)

    def _tick(self, lookahead: float = 0.0) -> Tick:
        return self.passes.tick(lookahead)

    def retry_quarantined(self) -> list[str]:
        """Re-read quarantined jobs and lift the quarantine of those that can be used now; return their ids.

        A job is usable again when its record reads and its next run can be built (say, after
        its record was repaired, or after this scheduler was started with a wider
        ``allow_import``). It resumes at its next slot from now, without catching up. The loop
        calls this each time it takes the lock and every ``QUARANTINE_RETRY_INTERVAL`` seconds.
        """
        return self.dispatch.retry_quarantined()

    # -- rq-scheduler's API, so a hand-written rq-scheduler loop ports unchanged ----------------------

    def acquire_lock(self) -> bool:
        """Take the singleton lock if it is free (or keep it if it is ours); False if another holds it.

        rq-scheduler's name for the lock half of [register_birth()][register_birth].
        """
        return self.leadership.acquire()

    def remove_lock(self) -> None:
        """Release the lock if this scheduler holds it; safe to call when it does not.

        The scheduler then no longer leads: [heartbeat()][heartbeat] leaves the lock alone until
        [acquire_lock()][acquire_lock] or [register_birth()][register_birth] takes it again.
        """
        self.leadership.release()

    def get_jobs_to_queue(self, with_times: bool = False) -> list[Any]:
        """The jobs due now, each remembering the slot it is due for; pass them to [enqueue_job()][enqueue_job].

        ``with_times=True`` gives ``(job, slot time)`` pairs instead, as rq-scheduler does.
        """
        now, _marker, _upcoming, due = self._tick()
        jobs: list[Any] = []
        for job, score, revision in self.dispatch.read_due(due):
            job._due = (score, revision, now)
            jobs.append((job, from_epoch(enqueue.indexed_slot(job, score))) if with_times else job)
        return jobs

    def get_queue_for_job(self, job: RedisCronJob) -> Queue:
        """The RQ queue a job's runs go to: its ``queue_class`` (default rq's ``Queue``), made with
        its ``job_class`` and ``serializer``."""
        return self.dispatch.queue_for(job)

    def enqueue_job(self, job: RedisCronJob) -> Job | None:
        """Enqueue the slot a [get_jobs_to_queue()][get_jobs_to_queue] job is due for, at most once; return its RQ job.

        Like every enqueue, this needs the lock ([acquire_lock()][acquire_lock]), and does nothing
        (returning None) if the job changed since it was read or the lock is not held. A slot
        whose RQ job exists already is not enqueued again: that RQ job is returned, and so it
        is when the same job is passed again.
        """
        due = getattr(job, "_due", None)
        if due is None:
            done: Job | None = getattr(job, "_rq_job", None)
            if done is not None:
                return done  # enqueued by an earlier call: nothing more to do
            raise ValueError(f"cron job {job.id!r} carries no due slot; take it from get_jobs_to_queue()")
        if self.leadership.fence is None:
            self.log.warning("enqueue_job(%r) without the lock: nothing enqueued", job.id)
            return None
        score, revision, now = due
        job._due = None
        rq_job = self.dispatch.fire_read((job, score, revision), now)
        if rq_job is not None:
            job._rq_job = rq_job
        return rq_job

    # -- lifecycle (rq's CronScheduler API) ---------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The scheduler hash rq's tools read, with the stored jobs in rq's ``cron_jobs`` form."""
        data: dict[str, Any] = super().to_dict()
        # The soonest enabled jobs only: reading the whole registry on every change would cost O(N).
        jobs = self.registry.scheduled(MAX_JOBS_IN_SCHEDULER_HASH)
        data["cron_jobs"] = json.dumps([job.to_rq_dict() for job in jobs])
        data["lock_ttl"] = str(self.lock_ttl)
        # With hostname and pid: another scheduler of this host can tell this one's process is gone.
        data["pid_namespace"] = pid_namespace()
        # Read by `rqrcron status`, which must say so even though Redis lost everything else.
        data["registry_lost"] = str(self.leadership.registry_lost) if self.leadership.registry_lost is not None else ""
        epoch = self.leadership.epoch
        data["fencing_epoch"] = str(epoch) if epoch is not None else ""
        return data

    def save(self, pipeline: Pipeline | None = None) -> None:
        """Write the scheduler hash (with its TTL), as rq's CronScheduler does.

        The hash is for monitoring: a key of another type under this scheduler's name is
        replaced, and no failure to write it stops the scheduler.
        """
        self.presence.write(self.to_dict(), pipeline)

    def save_jobs_data(self) -> None:
        """No-op compatibility hook: every job is stored on its own, so there is no local list to save."""

    def register_birth(self) -> None:
        """Acquire the singleton scheduler lock and register this scheduler in rq's registry.

        If the lock is owned by another scheduler, raises
        [SchedulerLockedError][rediscron.SchedulerLockedError] (a RuntimeError) naming it,
        before anything is registered.
        """
        self.leadership.take()
        # A new leader gives quarantined jobs another chance (its allow_import may differ).
        self.dispatch.retry_soon()
        _refreshed, self.leadership.known_jobs = self.presence.touch()
        self.save()

    def register_death(self, pipeline: Pipeline | None = None) -> None:
        """Unregister this scheduler and release the singleton lock if it is still ours.

        Safe to call twice, and after the lock was lost.
        """
        client = pipeline if pipeline is not None else self.connection
        try:
            # The lock first: a standby takes over at once, whatever happens to the monitoring keys after.
            released = self.leadership.release()
        except (*CONNECTION_ERRORS, RedisError) as exc:
            self.log.warning("Scheduler %s: could not release the lock (%s); it expires by itself", self.name, exc)
            released = False
        try:
            self.presence.unregister(client)
        except (*CONNECTION_ERRORS, RedisError) as exc:
            self.log.warning("Scheduler %s: could not unregister from rq's registry (%s)", self.name, exc)
        if released:
            self.log.info(
                "Scheduler %s: released the lock", self.name, extra=fields("lock_released", scheduler=self.name)
            )

    def heartbeat(self) -> None:
        """Heartbeat rq's scheduler registry and, while this scheduler leads, extend the scheduler lock.

        If its lock was lost and is free, it is taken again (with a new fencing epoch). If
        another scheduler holds it, raises [LockLostError][rediscron.LockLostError] (rq's
        ``StopRequested``) so this one stops instead of running alongside it. A scheduler
        that does not lead (it never took the lock, or gave it back with
        [remove_lock()][remove_lock], as an rq-scheduler style loop does between passes) only
        heartbeats: it neither takes the lock nor raises.
        """
        if not self.leadership.leading:
            if not self.presence.touch()[0]:
                self.save()
            return
        extended = self.leadership.keep()
        refreshed, registered = self.presence.touch()
        if self.leadership.kept(registered, extended):
            self.presence.dirty = True  # the registry has jobs again
        if not refreshed or self.presence.dirty:
            self.save()

    # -- the loop -----------------------------------------------------------------------------------

    def start(self, burst: bool = False, standby: bool = False) -> None:
        """Start the singleton Redis cron scheduler loop.

        Startup acquires the lock and registers birth (RuntimeError if another
        scheduler holds the lock, unless ``standby=True``: then it waits, and takes
        over as soon as the holder releases the lock or its lock expires). The loop
        then sleeps until the earliest next run (at most ``max_sleep_interval``),
        waking at once on a change event. SIGINT/SIGTERM stop it between steps: it
        unregisters, releases the lock if it still owns it, and returns. With
        ``burst=True`` it enqueues what is due once and returns.

        A subclass (or object) that overrides [enqueue_jobs()][enqueue_jobs] or
        [calculate_sleep_interval()][calculate_sleep_interval] gets rq's loop: each pass calls them, and an
        exception from them (other than Redis being unreachable, which is retried) ends
        ``start()`` after [register_death()][register_death]. The built-in pass does the same work in one
        round trip and builds runs ahead of their slots.
        """
        _setup_logging(self.logging_level)
        self.superseded_by = None
        self.superseded_by = self._runner.run(burst=burst, standby=standby, hooked=self._hooked())

    def run(self, burst: bool = False) -> None:
        """Alias of [start()][start], as rq-scheduler names it."""
        self.start(burst=burst)

    def request_stop(self, *_args: Any) -> None:
        """Ask the loop to stop after the current step (what SIGINT and SIGTERM do)."""
        self._runner.request_stop()

    @property
    def failing(self) -> str | None:
        """Why the loop's passes fail, while they do ("Redis unreachable", an error's name), else None."""
        return self._runner.failing

    def _install_signal_handlers(self) -> dict[int, Any]:
        # rq's name for this step: rq's tests (and subclasses) patch it.
        return self._runner.install_signal_handlers()

    def _on_event(self, event: dict[str, Any]) -> None:
        self._runner.wake.set()

    def _hooked(self) -> bool:
        """Whether enqueue_jobs() or calculate_sleep_interval() is overridden (by a subclass, or on the object)."""
        return (
            getattr(self.enqueue_jobs, "__func__", None) is not RedisCronScheduler.enqueue_jobs
            or getattr(self.calculate_sleep_interval, "__func__", None)
            is not RedisCronScheduler.calculate_sleep_interval
        )

    def run_once(self) -> float:
        """One pass of the loop [start()][start] runs: fire what is due (runs built ahead first), build the
        runs due within the look-ahead, re-read quarantined jobs when it is time; return how long to wait
        before the next pass, in seconds.

        It needs the lock ([register_birth()][register_birth]); the loop also heartbeats between passes.
        For tests and embedding (with the ``clock`` argument, time moves only when the test moves it).
        """
        return self.passes.run()


def _check_settings(lock_ttl: object, max_sleep_interval: object, batch_size: object, wait_replicas: object) -> None:
    """ValueError for a scheduler setting out of its range."""
    if isinstance(wait_replicas, bool) or not isinstance(wait_replicas, int) or wait_replicas < 0:
        raise ValueError(f"wait_replicas must be a whole number >= 0, not {wait_replicas!r}")
    if isinstance(lock_ttl, bool) or not isinstance(lock_ttl, int) or lock_ttl < 3:
        raise ValueError(f"lock_ttl must be a whole number of seconds >= 3, not {lock_ttl!r}")
    if (
        isinstance(max_sleep_interval, bool)
        or not isinstance(max_sleep_interval, (int, float))
        or not math.isfinite(max_sleep_interval)
        or max_sleep_interval <= 0
    ):
        raise ValueError(f"max_sleep_interval must be a positive number of seconds, not {max_sleep_interval!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive whole number, not {batch_size!r}")


def _setup_logging(level: str | int) -> None:
    # Like rq's CronScheduler: configure output only when the application has not.
    logger = logging.getLogger("rediscron")
    if logger.handlers or logging.getLogger().handlers:
        return
    if isinstance(level, str):
        level = logging.getLevelName(level.upper())
    if isinstance(level, int):
        logger.setLevel(level)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
