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
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from inspect import signature
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import Callback, Retry
from rq.cron import CronScheduler
from rq.job import Job
from rq.queue import Queue

from . import enqueue
from .clock import Clock, from_epoch
from .dispatch import CONNECTION_ERRORS, DEFAULT_BATCH_SIZE, QUARANTINE_RETRY_INTERVAL, Dispatch
from .events import EventListener
from .fields import DEFAULT_RESULT_TTL
from .imports import DEFAULT_ALLOWED_IMPORTS, ImportAllowlist, callable_path
from .job import RedisCronJob
from .leadership import Leadership, pid_namespace
from .logs import fields
from .lookahead import LOOKAHEAD, LookAhead
from .passes import Pass
from .presence import SCHEDULER_HASH_TTL, Presence
from .registry import REGISTER_ARGUMENTS, Registry
from .runner import Runner
from .stats import Stats
from .store import Conflict, Tick

__all__ = ["LOOKAHEAD", "QUARANTINE_RETRY_INTERVAL", "RedisCronScheduler"]

#: rq's own cron tools read the scheduler hash's ``cron_jobs`` field: it lists the soonest enabled jobs, this many.
MAX_JOBS_IN_SCHEDULER_HASH = 1000


class RedisCronScheduler(CronScheduler):
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

    #: The class of the jobs it registers and reads (a subclass of [RedisCronJob][rediscron.RedisCronJob], as a
    #: subclass of this scheduler may set).
    cron_job_class: type[RedisCronJob] = RedisCronJob

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
        :raises ValueError: A setting out of its range.
        """
        _check_settings(lock_ttl, max_sleep_interval, batch_size, wait_replicas)
        #: The jobs in Redis, read and written for this scheduler (its ``clock`` and ``allow_import``).
        self.registry = Registry(
            connection, job_class=self.cron_job_class, clock=clock, allow_import=ImportAllowlist(allow_import)
        )
        rq_log = logging.getLogger("rq.cron")
        handlers, propagate, level = list(rq_log.handlers), rq_log.propagate, rq_log.level
        super().__init__(connection=connection, logging_level=logging_level, name=name)
        # rq's CronScheduler sets up output for its logger when built; a library must leave logging to the
        # application (start() and the CLI set it up, if the application has not).
        rq_log.handlers[:] = handlers
        rq_log.propagate, rq_log.level = propagate, level
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
            self.registry, self.leadership, self.stats, name=self.name, batch_size=batch_size, log=self.log
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
        #: While load_config_from_file() runs: a job without id or name gets its function's path.
        self._ids_from_functions = False
        self._config_ids: dict[str, int] = {}

    @property
    def clock(self) -> Clock | None:
        """Replaces the Redis server's clock (epoch seconds), for tests; None: the server's."""
        return self.registry.clock

    @clock.setter
    def clock(self, clock: Clock | None) -> None:
        self.registry.clock = clock

    @property
    def allow_import(self) -> ImportAllowlist:
        """Where the options naming code (``job_class``, ``queue_class``, ``serializer``) of stored jobs
        may be imported from; the job's function itself is never imported here."""
        return self.registry.allow_import

    @allow_import.setter
    def allow_import(self, allowlist: ImportAllowlist) -> None:
        self.registry.allow_import = allowlist

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

    # -- the registry (rq's CronScheduler API) ------------------------------------------------------

    def register(
        self,
        func: Callable[..., Any] | str,
        queue_name: str,
        *positional: Any,
        id: str | None = None,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        interval: int | None = None,
        cron: str | None = None,
        job_timeout: int | None = None,
        result_ttl: int | None = DEFAULT_RESULT_TTL,
        ttl: int | None = None,
        failure_ttl: int | None = None,
        meta: dict[str, Any] | None = None,
        enabled: bool | None = None,
        conflict: Conflict = "replace",
        timezone: str = "UTC",
        misfire_grace_time: int | None = None,
        catchup: str = "coalesce",
        overlap: str = "allow",
        jitter: int = 0,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        max_runs: int | None = None,
        description: str | None = None,
        retry: Retry | int | Mapping[str, Any] | None = None,
        at_front: bool = False,
        on_success: Callable[..., Any] | Callback | str | None = None,
        on_failure: Callable[..., Any] | Callback | str | None = None,
        on_stopped: Callable[..., Any] | Callback | str | None = None,
        queue_class: type[Queue] | str | None = None,
        job_class: type[Job] | str | None = None,
        serializer: Any = None,
        webhooks: Sequence[Any] | None = None,
        name: str = "",
    ) -> RedisCronJob:
        """Create or update one persisted cron job.

        ``id`` is required and stable: calling ``register()`` again with the same id
        edits the job instead of adding a duplicate. rq's ``name=`` is taken as the id when
        no ``id`` is given.

        Arguments after ``queue_name`` may be given by position in this method's order
        (``id, args, kwargs, interval, cron, job_timeout, result_ttl, ttl, failure_ttl,
        meta, enabled``, when the third is a string) or in rq's ``CronScheduler.register``
        order (``args, kwargs, interval, cron, job_timeout, result_ttl, ttl, failure_ttl,
        meta, webhooks, name``), so rq code ports with ``id=`` added. An edit keeps ``created_at``, the
        enabled state (unless ``enabled=`` is given) and the next run (unless the
        schedule changed). Everything is validated before anything is written; a bad
        argument raises [InvalidJobError][rediscron.InvalidJobError] naming the job and
        the field. The change reaches running schedulers at once.

        ``conflict`` says what to do when the id exists: ``"replace"`` (edit, the
        default), ``"ignore"`` (leave the stored job alone) or ``"raise"``
        ([InvalidJobError][rediscron.InvalidJobError]).

        Scheduling options (each stored with the job; defaults are not stored):

        - ``timezone``: IANA name the cron fields are read in (default ``"UTC"``, never
          the host's zone). See docs/scheduling.md for the DST rules.
        - ``misfire_grace_time``: seconds a slot may be late and still run (None: no limit).
        - ``catchup``: after missed slots, ``"coalesce"`` into one run (default), ``"skip"``
          them, or run ``"all"`` of them (at most the newest 100).
        - ``overlap``: ``"allow"`` (default) or ``"skip"`` a slot while the previous run
          is still queued, deferred, scheduled or started.
        - ``jitter``: up to this many seconds of delay per slot, the same for a given slot
          on every scheduler (the slot, and so exactly-once, is unchanged).
        - ``start_time``, ``end_time`` (aware datetimes), ``max_runs``: a window and a
          limit on scheduled runs; a job past them stops firing and says so.

        rq options for each run: ``job_timeout``, ``result_ttl``, ``ttl``, ``failure_ttl``,
        ``meta``, ``description``, ``retry`` (rq ``Retry``, or a number of retries),
        ``at_front``, ``on_success``/``on_failure``/``on_stopped`` (functions or dotted
        paths, or rq ``Callback``), ``webhooks`` (rq ``Webhook`` objects, rq 2.10 and
        newer), and the queue's ``queue_class``, ``job_class`` and ``serializer`` (classes
        or dotted paths).

        Example::

            scheduler.register(rebuild_metric, "metrics", id="metric:pm25", interval=300)
            # Later, from another process:
            scheduler.register(rebuild_metric, "metrics", id="metric:pm25", interval=600)
            # rq's order, as rq code calls it:
            scheduler.register(rebuild_metric, "metrics", ("pm10",), None, 300, id="metric:pm10")
        """
        # Every argument but conflict, by name (a test holds the signature to the job's fields).
        given = {key: value for key, value in locals().items() if key in REGISTER_ARGUMENTS}
        if positional:
            given = _by_position(positional, given)
        if given["id"] is None and not given["name"] and self._ids_from_functions:
            given["id"] = self._config_id(func)
        return self.registry.register(conflict=conflict, **given)

    def register_many(
        self,
        jobs: Iterable[Mapping[str, Any]],
        *,
        conflict: Conflict = "replace",
        batch_size: int = 1000,
    ) -> list[RedisCronJob]:
        """Create or update many jobs: every one is validated first (all or nothing), then each
        batch is written in one atomic round trip (plus one to read what is stored).

        Each item is a mapping of [register()][register]'s keyword arguments (``func``,
        ``queue_name``, ``id``, ``interval`` or ``cron``, ...). ``conflict`` applies to all;
        with ``"raise"``, an id that exists refuses the whole call before anything is written.
        Returns the jobs as stored, in input order.

        Example::

            scheduler.register_many([
                {"func": rebuild_metric, "queue_name": "metrics", "id": f"metric:{m}", "args": (m,),
                 "interval": 300}
                for m in ("pm25", "pm10", "no2")
            ])
        """
        return self.registry.register_many(jobs, conflict=conflict, batch_size=batch_size)

    def load_config_from_file(self, config_path: str) -> None:
        """Register every job of an rq cron config (a module calling ``rq.cron.register(...)``), as rq does.

        Each job's id is its rq ``name``, else its function's dotted path; jobs of the config that
        share a function and have no name get ``path``, ``path#2``, ... in the config's order (give
        them ``name=`` to choose). As in rq, a job that cannot be registered is logged and skipped.
        ``rqrcron apply`` reads the same configs and refuses the whole file instead.
        """
        self._ids_from_functions = True
        self._config_ids.clear()
        try:
            super().load_config_from_file(config_path)
        finally:
            self._ids_from_functions = False

    def _config_id(self, func: Callable[..., Any] | str) -> str:
        path = func if isinstance(func, str) else callable_path(func, None)
        count = self._config_ids[path] = self._config_ids.get(path, 0) + 1
        return path if count == 1 else f"{path}#{count}"

    def trigger(self, id: str) -> Job:
        """Enqueue one run of job ``id`` now, without moving its schedule (JobNotFound if none).

        The run appears in the job's history. Its
        ``job_class``, ``queue_class`` and ``serializer`` are imported through ``allow_import``.
        """
        return self.registry.trigger(id)

    def get_jobs(self) -> list[RedisCronJob]:  # type: ignore[override]
        """Return all enabled jobs currently indexed in Redis, soonest first.

        Index entries whose hash is gone are pruned. Records that cannot be read are
        left out; [get_invalid_jobs()][get_invalid_jobs] lists them.
        """
        return self.registry.scheduled()

    def get_all_jobs(self) -> list[RedisCronJob]:
        """Return all persisted cron jobs, including disabled jobs, sorted by id."""
        return self.registry.jobs()

    def get_invalid_jobs(self) -> dict[str, str]:
        """Stored jobs that cannot be read back or were quarantined, with the reason, by id."""
        return self.registry.invalid()

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


#: register()'s arguments after queue_name, by position: its own order, and rq's CronScheduler.register order.
_OWN_ORDER = (
    "id",
    "args",
    "kwargs",
    "interval",
    "cron",
    "job_timeout",
    "result_ttl",
    "ttl",
    "failure_ttl",
    "meta",
    "enabled",
)
_RQ_ORDER = (
    "args",
    "kwargs",
    "interval",
    "cron",
    "job_timeout",
    "result_ttl",
    "ttl",
    "failure_ttl",
    "meta",
    "webhooks",
    "name",
)
_DEFAULTS = {name: parameter.default for name, parameter in signature(RedisCronScheduler.register).parameters.items()}


def _by_position(positional: tuple[Any, ...], keywords: dict[str, Any]) -> dict[str, Any]:
    """``keywords`` with the positional arguments filled in, in the order their first one tells."""
    order = _OWN_ORDER if isinstance(positional[0], str) else _RQ_ORDER
    if len(positional) > len(order):
        raise TypeError(f"register() takes at most {len(order) + 2} positional arguments ({len(positional) + 2} given)")
    given = dict(keywords)
    for name, value in zip(order, positional, strict=False):
        if given[name] is not _DEFAULTS[name] and given[name] != _DEFAULTS[name]:
            raise TypeError(f"register() got multiple values for argument {name!r}")
        given[name] = value
    return given


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
