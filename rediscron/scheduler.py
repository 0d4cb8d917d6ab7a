"""RedisCronScheduler: the loop that moves due slots of Redis-stored cron jobs into RQ queues."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from inspect import signature
from types import FrameType
from typing import Any, cast

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.sentinel import SentinelConnectionPool
from rq import Callback, Retry, cron_scheduler_registry
from rq.cron import CronScheduler
from rq.exceptions import StopRequested
from rq.job import Job
from rq.queue import Queue
from rq.utils import as_text

from . import enqueue, keys, limits, scripts, store, writes
from .clock import Clock, format_time, from_epoch
from .errors import CorruptJobError, LockLostError, RediscronError, SchedulerLockedError
from .events import EventListener
from .fields import DEFAULT_RESULT_TTL
from .imports import DEFAULT_ALLOWED_IMPORTS, ImportAllowlist, callable_path
from .job import (
    RedisCronJob,
)
from .lock import LockHolder, SchedulerLock
from .logs import fields
from .metrics import LagHistogram
from .registry import REGISTER_ARGUMENTS, Registry
from .store import Conflict, Tick
from .text import shorten
from .wake import Waker

#: How many due slots one fire script handles.
DEFAULT_BATCH_SIZE = 200
#: How far ahead (seconds) the running loop reads the jobs about to be due and builds their
#: runs, so that at the slot only the fire script is left to do.
LOOKAHEAD = 1.0
#: Most runs built ahead at once.
AHEAD_LIMIT = 5000
#: Longest back-off between attempts while Redis is unreachable.
MAX_BACKOFF = 5.0
#: rq's own cron tools read the scheduler hash's ``cron_jobs`` field: it lists the soonest enabled jobs, this many.
MAX_JOBS_IN_SCHEDULER_HASH = 1000
#: The loop does its monitoring chores (the scheduler hash) only when the next wake is at least this far.
IDLE_ENOUGH = 0.25
#: How often a scheduler connected through Redis Sentinel asks which server is the master.
MASTER_CHECK_INTERVAL = 1.0
#: The scheduler hash expires unless refreshed; rq's registry forgets schedulers silent this long.
SCHEDULER_HASH_TTL = 120
#: How often (seconds) the running loop re-reads quarantined jobs, to lift the quarantine of those
#: whose record was repaired; it also does so each time it takes the lock.
QUARANTINE_RETRY_INTERVAL = 60.0
#: Most quarantined jobs re-read at a time.
QUARANTINE_RETRY_BATCH = 500

_CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
#: Refusals of rq's enqueue that concern the server or this user, not the job: retried, never quarantined.
_SERVER_WIDE_REFUSALS = ("NOPERM", "OOM", "READONLY", "MISCONF", "BUSY", "NOREPLICAS", "MASTERDOWN")


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
        self.batch_size = batch_size
        #: Heartbeats come three times per lock TTL, so one lost heartbeat never loses the lock.
        self.heartbeat_interval = min(lock_ttl / 3, SCHEDULER_HASH_TTL / 4)
        self._lock = SchedulerLock(connection, self.name, lock_ttl)
        self._wake = Waker()
        self._stopping = False
        #: The stop signal received, and a second one: the handler only notes them (it may take no lock).
        self._stop_signal: int | None = None
        self._second_signal: int | None = None
        #: Set while shutting down: a signal then lets the lock's release finish.
        self._releasing = False
        self._listener = EventListener(connection, self._on_event)
        self._queues: dict[tuple[str, str | None, str | None, str | None], Queue] = {}
        self._marker: str | None = None
        self._next_heartbeat = 0.0
        self._jobs_hash_dirty = True
        self._jobs_hash_saved = 0.0
        self._failing: str | None = None
        self._failing_since = 0.0
        self._backoff = 0.1
        self._stale = False
        self._stale_streak = 0
        self._advanced_to: float | None = None
        #: Runs built ahead of their slots, by job id; each is fired at its slot, if still valid.
        self._ahead: dict[str, enqueue.Slot] = {}
        self._look_ahead = False
        #: Whether the fire script is known to be loaded on the server this loop talks to.
        self._fire_loaded = False
        #: The Redis server's clock minus this host's monotonic clock, as of the last pass (never
        #: more than one round trip behind: an estimate of the server's time is never early).
        self._clock_offset = 0.0
        self._server_checked = False
        self._known_jobs: int | None = None
        #: After taking or extending the lock, wait (briefly) until this many replicas have it.
        self.wait_replicas = wait_replicas
        self._replicas_short = False
        self._master: tuple[str, int] | None = None
        self._next_master_check = 0.0
        #: Monitoring keys found unwritable (said once each).
        self._monitoring_failures: set[str] = set()
        #: Who took the lock when start() returned because another scheduler held it (not a requested stop).
        self.superseded_by: str | None = None
        #: Whether this scheduler leads: it took the lock (register_birth, acquire_lock) and has not given
        #: it back (remove_lock, register_death) nor lost it to another. heartbeat() keeps only a leader's lock.
        self._leading = False
        #: While load_config_from_file() runs: a job without id or name gets its function's path.
        self._ids_from_functions = False
        self._config_ids: dict[str, int] = {}
        #: When (the server's clock) the loop next re-reads quarantined jobs, and from which entry.
        self._next_quarantine_retry = 0.0
        self._quarantine_offset = 0
        #: Counters, for logs, metrics and tests.
        self.failed_passes = 0
        #: How many jobs the registry had when it was found empty after the lock vanished (Redis lost its
        #: data); None while the registry is not in that state.
        self.registry_lost: int | None = None
        self.fired = 0
        self.quarantined = 0
        self.missed = 0
        self.overlap_skipped = 0
        self.lag_histogram = LagHistogram()

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

    # -- registry API -------------------------------------------------------------------------

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

    # -- one pass -----------------------------------------------------------------------------

    def _tick(self, lookahead: float = 0.0, offset: int = 0) -> Tick:
        """Read the time, the change marker, the next score and the entries due (by now + ``lookahead``)."""
        now = None if self.clock is None else self.clock()
        tick = store.tick(self.connection, now=now, limit=self.batch_size, offset=offset, lookahead=lookahead)
        if self.clock is None:
            # Against the monotonic clock, so a step of this host's wall clock can't make a run early.
            self._clock_offset = tick.now - time.monotonic()
        return tick

    def _estimated_now(self) -> float:
        """The server's time without asking it: the injected clock, or this host's corrected by the last pass."""
        return self.clock() if self.clock is not None else time.monotonic() + self._clock_offset

    def enqueue_jobs(self) -> list[RedisCronJob]:  # type: ignore[override]
        """Enqueue all Redis cron jobs currently due; return the ones enqueued.

        Assumes this scheduler holds the lock (see [register_birth()][register_birth]); if the
        lock is missing or was lost, nothing is enqueued.
        """
        enqueued: list[RedisCronJob] = []
        while True:
            now, marker, _upcoming, due = self._tick()
            self._note_marker(marker)
            fired, more = self._fire_due(now, due)
            enqueued.extend(fired)
            # catchup="all" moves a job to its next missed slot, which is due at once.
            if not more and (self._advanced_to is None or self._advanced_to > now):
                return enqueued

    def _fire_due(self, now: float, due: list[store.Due]) -> tuple[list[RedisCronJob], bool]:
        """Fire one batch; return (jobs enqueued, whether another full batch may be due)."""
        self._stale = False
        self._advanced_to = None
        if not due or self._lock.value is None:
            return [], False
        slots = [
            slot
            for job, score, revision in self._read_due(due)
            if (slot := self._prepare(job, score, revision, now)) is not None
        ]
        if not slots:
            return [], len(due) >= self.batch_size
        return self._fire_slots(slots, now), len(due) >= self.batch_size

    def _prepare(self, job: RedisCronJob, score: str, revision: bytes | str, now: float) -> enqueue.Slot | None:
        """The job's due slot ready to fire, or None (the job is quarantined) if it can't be built."""
        try:
            return enqueue.prepare(self.connection, self.get_queue_for_job(job), job, score, revision, now)
        except _CONNECTION_ERRORS:
            raise
        except Exception as exc:
            self._quarantine(job.id, revision, exc)
            return None

    def _read_due(self, due: list[store.Due]) -> list[tuple[RedisCronJob, str, bytes | str]]:
        """The due entries of a tick as (job, score, revision read); unusable ones are quarantined or pruned."""
        readable: list[tuple[RedisCronJob, str, bytes | str]] = []
        missing: list[str] = []
        for entry in due:
            try:
                job_id = as_text(entry.id)
            except UnicodeDecodeError:
                # Not an id rediscron wrote (ids are text): drop the index entry, it can never fire.
                self.connection.zrem(keys.schedule(), entry.id)
                self.log.error("Removed an index entry that is not UTF-8 text: %r", entry.id)
                continue
            if not isinstance(entry.record, list):
                # tick.lua found another type of key where the hash should be.
                self._quarantine(job_id, "", CorruptJobError(job_id, f"{keys.job(job_id)} is a {entry.record}"))
                continue
            if not entry.record:
                missing.append(job_id)
                continue
            # Passed back to the fire script byte for byte, whatever it holds.
            revision = entry.revision or ""
            try:
                raw = dict(zip(entry.record[::2], entry.record[1::2], strict=True))
                job = self.cron_job_class.restore(raw, self.connection, id=job_id)
                readable.append((job, entry.score, revision))
            except _CONNECTION_ERRORS:
                raise
            except Exception as exc:
                self._quarantine(job_id, revision, exc)
        store.prune(self.connection, missing)
        return readable

    def _fire_slots(self, slots: list[enqueue.Slot], now: float) -> list[RedisCronJob]:
        """Run the fire script for prepared slots; return the jobs enqueued."""
        lock_value = self._lock.value
        if lock_value is None:
            return []
        return self._settle(slots, enqueue.fire(self.connection, lock_value, slots, now), now)

    def _settle(self, slots: list[enqueue.Slot], result: enqueue.Fired, now: float) -> list[RedisCronJob]:
        """Account for what the fire script did with ``slots``; return the jobs enqueued."""
        held, outcomes = result.held, result.outcomes
        if not held:
            self.log.warning(
                "Lock lost before enqueueing %d due slot(s); nothing enqueued",
                len(slots),
                extra=fields("lock_lost", scheduler=self.name, pending=len(slots)),
            )
            self._lock.value = None
            self._next_heartbeat = 0.0
            return []
        refusals = iter(result.refusals)
        server_wide: str | None = None
        for s, outcome in zip(slots, outcomes, strict=True):
            if outcome != enqueue.REFUSED:
                continue
            reason = next(refusals, "no reason given")
            if reason.startswith(_SERVER_WIDE_REFUSALS) or "can't run this command" in reason:
                server_wide = server_wide or reason  # not this job's fault: retried as a failed pass
            else:
                self._quarantine(
                    s.job.id,
                    s.revision,
                    RediscronError(
                        f"Redis refused the enqueue of its run ({reason}); a key where rq writes (its queue, a "
                        "registry) has another type"
                    ),
                )
        fired: list[RedisCronJob] = []
        # A job changed between read and fire: look again at once, but never spin on one that stays stale.
        self._stale_streak = self._stale_streak + 1 if enqueue.STALE in outcomes else 0
        self._stale = 0 < self._stale_streak <= 3
        advanced = [
            float(s.next_score)
            for s, outcome in zip(slots, outcomes, strict=True)
            if outcome not in (enqueue.STALE, enqueue.DISABLED, enqueue.REFUSED) and s.next_score != ""
        ]
        self._advanced_to = min(advanced) if advanced else None
        for s, outcome in zip(slots, outcomes, strict=True):
            self._report(s, outcome, now)
            if outcome == enqueue.ENQUEUED:
                # rq's and django-rq's cron pages read next/latest runs from the scheduler hash: refresh it
                # (the loop does, at most every 5 s).
                self._jobs_hash_dirty = True
                self.fired += 1
                s.job.latest_enqueue_time = from_epoch(now)
                s.job.next_enqueue_time = from_epoch(s.next_slot) if s.next_slot is not None else None
                fired.append(s.job)
        if server_wide is not None:
            if server_wide.startswith("NOPERM") or "can't run this command" in server_wide:
                raise NoPermissionError(
                    f"this user has no permissions to run one of the commands rq's enqueue sends "
                    f"(HSET, RPUSH, LPUSH, SADD, ZADD, EXPIRE, PERSIST...): {server_wide}"
                )
            raise ResponseError(server_wide)
        return fired

    def _build_ahead(self, entries: list[Any]) -> None:
        """Build the runs of entries not yet due, planned as if fired on time, to fire at their slots.

        The fire script still checks lock, revision and indexed slot, so a run built ahead
        of an edit or a lost lock is never enqueued; its job is simply planned again.
        """
        offset = 0
        if not self._fire_loaded:
            # Firing at the slot must not be the moment Redis turns out not to know the script.
            scripts.load(self.connection, "fire")
            self._fire_loaded = True
        while entries:
            fresh = [entry for entry in entries if not self._built(entry)]
            for job, score, revision in self._read_due(fresh):
                slot = self._prepare(job, score, revision, float(score))
                if slot is not None and slot.plan.run is not None and slot.plan.drop is None:
                    slot.script_args  # noqa: B018 - computed now, not at the slot
                    self._ahead[job.id] = slot
            if len(entries) < self.batch_size or len(self._ahead) >= AHEAD_LIMIT:
                return
            offset += len(entries)
            entries = self._tick(LOOKAHEAD, offset).entries

    def _built(self, entry: store.Due) -> bool:
        """Whether the run of a tick entry is already built, for the same record and slot."""
        try:
            built = self._ahead.get(as_text(entry.id))
        except UnicodeDecodeError:
            return False  # no id rediscron wrote: the pass that finds it due drops it
        return built is not None and entry.score == built.score and entry.revision == built.revision

    def _fire_ahead(self, now: float) -> None:
        """Fire the runs built ahead whose slots have come; one whose plan no longer holds is planned again."""
        ready = [s for s in self._ahead.values() if float(s.score) <= now]
        for s in ready:
            del self._ahead[s.job.id]
        valid = [s for s in ready if now < s.valid_until]
        lock_value = self._lock.value
        if not valid or lock_value is None:
            return
        batches = [valid[start : start + self.batch_size] for start in range(0, len(valid), self.batch_size)]
        # One round trip for all: Redis runs the scripts back to back, serving other clients in between.
        results = enqueue.fire_batches(self.connection, lock_value, batches, now)
        for batch, result in zip(batches, results, strict=True):
            self._settle(batch, result, now)
            if self._lock.value is None:
                break  # the other batches found the lock gone too

    def _report(self, s: enqueue.Slot, outcome: int, now: float) -> None:
        """Log what one fire did: runs, dropped slots, overlap skips, a job that has ended."""
        run, drop = s.plan.run, s.plan.drop
        if drop is not None and outcome not in (enqueue.STALE, enqueue.DISABLED, enqueue.REFUSED):
            self.missed += drop.slots
            self.log.warning(
                "Cron job %s: %s%d slot(s) from %s to %s not run (%s)",
                s.job.id,
                "" if drop.exact else "at least ",
                drop.slots,
                _time(drop.first),
                _time(drop.last),
                drop.reason,
                extra=fields(
                    "missed",
                    job_id=s.job.id,
                    slots=drop.slots,
                    exact=drop.exact,
                    first=drop.first,
                    last=drop.last,
                    reason=drop.reason,
                ),
            )
        if outcome == enqueue.ENQUEUED and s.rq_job is not None and run is not None:
            self.lag_histogram.observe(max(0.0, now - run))
            self.log.info(
                "Enqueued %s (slot %s, %.3fs late) as %s on queue %s",
                s.job.id,
                _time(run),
                max(0.0, now - run),
                s.rq_job.id,
                s.job.queue_name,
                extra=fields(
                    "fire",
                    job_id=s.job.id,
                    slot=run,
                    lag=round(now - run, 6),
                    rq_job_id=s.rq_job.id,
                    queue=s.job.queue_name,
                ),
            )
        elif outcome == enqueue.ALREADY_ENQUEUED and s.rq_job is not None and run is not None:
            self.log.info(
                "Slot %s of %s was already enqueued as %s; moved on",
                _time(run),
                s.job.id,
                s.rq_job.id,
                extra=fields("already_enqueued", job_id=s.job.id, slot=run, rq_job_id=s.rq_job.id),
            )
        elif outcome == enqueue.OVERLAP_SKIPPED and run is not None:
            self.overlap_skipped += 1
            self.log.info(
                "Cron job %s: slot %s skipped, its previous run is still queued or running (overlap=skip)",
                s.job.id,
                _time(run),
                extra=fields("overlap_skip", job_id=s.job.id, slot=run),
            )
        if outcome in (enqueue.ENQUEUED, enqueue.ALREADY_ENQUEUED, enqueue.DROPPED, enqueue.OVERLAP_SKIPPED) and (
            s.next_score == "" or (s.plan.final and outcome in (enqueue.ENQUEUED, enqueue.ALREADY_ENQUEUED))
        ):
            why = f"it has run max_runs={s.job.max_runs} times" if s.plan.final else "its end_time has passed"
            self.log.info("Cron job %s has ended: %s", s.job.id, why, extra=fields("ended", job_id=s.job.id, why=why))

    # -- rq-scheduler's API, so a hand-written rq-scheduler loop ports unchanged ---------------

    def acquire_lock(self) -> bool:
        """Take the singleton lock if it is free (or keep it if it is ours); False if another holds it.

        rq-scheduler's name for the lock half of [register_birth()][register_birth].
        """
        if self._lock.value is not None and self._lock.extend():
            return True
        self._leading = self._lock.acquire() is None
        return self._leading

    def remove_lock(self) -> None:
        """Release the lock if this scheduler holds it; safe to call when it does not.

        The scheduler then no longer leads: [heartbeat()][heartbeat] leaves the lock alone until
        [acquire_lock()][acquire_lock] or [register_birth()][register_birth] takes it again.
        """
        self._leading = False
        self._lock.release()

    def get_jobs_to_queue(self, with_times: bool = False) -> list[Any]:
        """The jobs due now, each remembering the slot it is due for; pass them to [enqueue_job()][enqueue_job].

        ``with_times=True`` gives ``(job, slot time)`` pairs instead, as rq-scheduler does.
        """
        now, marker, _upcoming, due = self._tick()
        self._note_marker(marker)
        jobs: list[Any] = []
        for job, score, revision in self._read_due(due):
            job._due = (score, revision, now)
            jobs.append((job, from_epoch(enqueue.indexed_slot(job, score))) if with_times else job)
        return jobs

    def get_queue_for_job(self, job: RedisCronJob) -> Queue:
        """The RQ queue a job's runs go to: its ``queue_class`` (default rq's ``Queue``), made with
        its ``job_class`` and ``serializer``."""
        spec = job.queue_spec()
        queue = self._queues.get(spec)
        if queue is None:
            queue = self._queues[spec] = job.make_queue(self.connection, self.allow_import)
        return queue

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
        if self._lock.value is None:
            self.log.warning("enqueue_job(%r) without the lock: nothing enqueued", job.id)
            return None
        score, revision, now = due
        job._due = None
        slot = self._prepare(job, score, revision, now)
        if slot is None:
            return None
        fired = enqueue.fire(self.connection, self._lock.value, [slot], now)
        self._settle([slot], fired, now)
        if fired.held and fired.outcomes and fired.outcomes[0] in (enqueue.ENQUEUED, enqueue.ALREADY_ENQUEUED):
            job._rq_job = slot.rq_job
            return slot.rq_job
        return None

    def _quarantine(self, job_id: str, revision: bytes | str, exc: Exception) -> None:
        message = exc.message if isinstance(exc, CorruptJobError) else f"{type(exc).__name__}: {exc}"
        # Stored for operators on other hosts: say whose view of the job this is.
        message = shorten(f"scheduler {self.name}: {message}", limits.MAX_ERROR_CHARS)
        if store.quarantine(self.connection, job_id, revision, message):
            self.quarantined += 1
            self.log.error(
                "Quarantined cron job %r: %s (fix the record, or register() it again; the scheduler "
                "retries it every %.0fs, and enable() or delete() acts at once)",
                job_id,
                message,
                QUARANTINE_RETRY_INTERVAL,
                extra=fields("quarantine", job_id=job_id, error=message),
            )

    def retry_quarantined(self) -> list[str]:
        """Re-read quarantined jobs and lift the quarantine of those that can be used now; return their ids.

        A job is usable again when its record reads and its next run can be built (say, after
        its record was repaired, or after this scheduler was started with a wider
        ``allow_import``). It resumes at its next slot from now, without catching up. The loop
        calls this each time it takes the lock and every ``QUARANTINE_RETRY_INTERVAL`` seconds.
        """
        raw = cast(
            list[Any],
            self.connection.zrangebyscore(
                keys.schedule(), "+inf", "+inf", start=self._quarantine_offset, num=QUARANTINE_RETRY_BATCH
            ),
        )
        self._quarantine_offset = self._quarantine_offset + len(raw) if len(raw) == QUARANTINE_RETRY_BATCH else 0
        ids = store.decode_ids(raw)[0]
        if not ids:
            return []
        with self.connection.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(keys.job(job_id))
            records = pipe.execute(raise_on_error=False)
        now = writes.now_of(self.connection, self.clock)
        lifted: list[str] = []
        gone = [
            job_id
            for job_id, record in zip(ids, records, strict=True)
            if not isinstance(record, Exception) and not record
        ]
        if gone:
            # Never due (+inf), so never pruned by a pass: an entry whose record was deleted by hand goes here.
            store.prune(self.connection, gone)
        for job_id, record in zip(ids, records, strict=True):
            if isinstance(record, Exception) or not record:
                continue  # another type of key (still unusable), or gone (pruned above)
            revision = record.get(b"revision") or record.get("revision") or ""
            try:
                job = self.cron_job_class.restore(record, self.connection, id=job_id)
                slot = job.first_slot(now)
                if slot is not None:
                    # Everything a fire needs, short of firing: the queue, its classes, the RQ job.
                    enqueue.record_enqueue(
                        self.connection,
                        self.get_queue_for_job(job),
                        job.build_rq_job(self.get_queue_for_job(job), slot),
                        job.at_front,
                    )
            except _CONNECTION_ERRORS:
                raise
            except Exception:
                continue  # still unusable; its stored error stays
            entry = job._index_entry(slot)
            if store.lift(self.connection, job_id, revision, entry):
                lifted.append(job_id)
                self.log.warning(
                    "Cron job %r can be used again; quarantine lifted (next run %s)",
                    job_id,
                    entry.next_time or "none: it has ended",
                    extra=fields("quarantine_lifted", job_id=job_id),
                )
        return lifted

    def calculate_sleep_interval(self) -> float:
        """Return seconds until the next indexed cron job is due, capped by ``max_sleep_interval``.

        The cap makes sure runtime updates are observed even if no Pub/Sub message arrives.
        """
        now, _marker, upcoming, due = self._tick()
        if due:
            return 0.0
        return self._sleep_for(now, upcoming)

    def _sleep_for(self, now: float, upcoming: float | None) -> float:
        sleep = self.max_sleep_interval if upcoming is None else max(0.0, upcoming - now)
        return min(sleep, self.max_sleep_interval)

    def _note_marker(self, marker: str) -> None:
        if marker != self._marker:
            if self._marker is not None:
                # The first reading follows register_birth(), which has just written the scheduler hash.
                self.log.debug("Registry changed (marker %s -> %s)", self._marker, marker)
                self._jobs_hash_dirty = True
            self._marker = marker

    # -- lifecycle ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The scheduler hash rq's tools read, with the stored jobs in rq's ``cron_jobs`` form."""
        data: dict[str, Any] = super().to_dict()
        # The soonest enabled jobs only: reading the whole registry on every change would cost O(N).
        jobs = self.registry.scheduled(MAX_JOBS_IN_SCHEDULER_HASH)
        data["cron_jobs"] = json.dumps([job.to_rq_dict() for job in jobs])
        data["lock_ttl"] = str(self.lock_ttl)
        # With hostname and pid: another scheduler of this host can tell this one's process is gone.
        data["pid_namespace"] = _pid_namespace()
        # Read by `rqrcron status`, which must say so even though Redis lost everything else.
        data["registry_lost"] = str(self.registry_lost) if self.registry_lost is not None else ""
        epoch = self._lock.epoch
        data["fencing_epoch"] = str(epoch) if epoch is not None else ""
        return data

    def save(self, pipeline: Pipeline | None = None) -> None:
        """Write the scheduler hash (with its TTL), as rq's CronScheduler does.

        The hash is for monitoring: a key of another type under this scheduler's name is
        replaced, and no failure to write it stops the scheduler.
        """
        if pipeline is not None:
            pipeline.hset(self.key, mapping=cast(dict[Any, Any], self.to_dict()))
            pipeline.expire(self.key, SCHEDULER_HASH_TTL)
        else:
            data = cast(dict[Any, Any], self.to_dict())
            for _attempt in range(2):
                with self.connection.pipeline(transaction=False) as pipe:
                    pipe.hset(self.key, mapping=data)
                    pipe.expire(self.key, SCHEDULER_HASH_TTL)
                    written = pipe.execute(raise_on_error=False)[0]
                if not isinstance(written, ResponseError):
                    break
                if "WRONGTYPE" not in str(written):
                    self._note_monitoring_failure(self.key, written)
                    break
                self.connection.delete(self.key)  # this scheduler's own key, by its name
        self._jobs_hash_dirty = False
        self._jobs_hash_saved = time.monotonic()

    def _note_monitoring_failure(self, key: str, error: Exception) -> None:
        """Say once that a monitoring key cannot be written; firing goes on regardless."""
        if key not in self._monitoring_failures:
            self._monitoring_failures.add(key)
            self.log.warning(
                "Scheduler %s: cannot write %s (%s); rq's tools may not list this scheduler, which keeps firing",
                self.name,
                key,
                error,
            )

    def _touch_registry(self) -> tuple[bool, int | None]:
        """Heartbeat rq's scheduler registry and refresh the hash's TTL, best effort: (hash still there,
        number of registered jobs or None)."""
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.zadd(cron_scheduler_registry.get_registry_key(), {self.name: time.time()})
            pipe.expire(self.key, SCHEDULER_HASH_TTL)
            pipe.scard(keys.ids())
            added, refreshed, registered = pipe.execute(raise_on_error=False)
        if isinstance(added, Exception):
            self._note_monitoring_failure(cron_scheduler_registry.get_registry_key(), added)
        counted = None if isinstance(registered, Exception) else int(registered)
        return bool(refreshed) and not isinstance(refreshed, Exception), counted

    def save_jobs_data(self) -> None:
        """No-op compatibility hook: every job is stored on its own, so there is no local list to save."""

    def register_birth(self) -> None:
        """Acquire the singleton scheduler lock and register this scheduler in rq's registry.

        If the lock is owned by another scheduler, raises
        [SchedulerLockedError][rediscron.SchedulerLockedError] (a RuntimeError) naming it,
        before anything is registered.
        """
        holder = self._lock.acquire()
        if holder is not None and self._holder_is_gone(holder) and self._lock.release_held_by(holder.value):
            self.log.warning(
                "Scheduler %s: the lock's holder %s ran on this host and its process is gone; took "
                "over without waiting for its lock to expire",
                self.name,
                holder.name,
                extra=fields("lock_taken_over", scheduler=self.name, holder=holder.name),
            )
            holder = self._lock.acquire()
        if holder is not None:
            raise SchedulerLockedError(f"{holder.name} (fencing epoch {holder.epoch})")
        self._leading = True
        self.log.info(
            "Scheduler %s: took the lock (fencing epoch %s)",
            self.name,
            self._lock.epoch,
            extra=fields("lock_acquired", scheduler=self.name, epoch=self._lock.epoch),
        )
        # A new leader gives quarantined jobs another chance (its allow_import may differ).
        self._next_quarantine_retry = 0.0
        self._quarantine_offset = 0
        _refreshed, self._known_jobs = self._touch_registry()
        self.save()
        self._next_heartbeat = time.monotonic() + self.heartbeat_interval
        self._wait_for_replicas()
        if not self._server_checked:
            self._server_checked = True
            self._warn_about_server()

    def _holder_is_gone(self, holder: LockHolder) -> bool:
        """Whether the lock's holder is a scheduler of this host (and pid namespace) whose process has exited."""
        raw = self.connection.hmget(f"{keys.prefix()}:cron_scheduler:{holder.name}", "hostname", "pid", "pid_namespace")
        host, pid, namespace = (x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in raw)
        if (
            host != self.hostname
            or namespace is None
            or namespace != _pid_namespace()
            or not pid
            or not pid.isascii()
            or not pid.isdigit()
            or len(pid) > 9
            or int(pid) == os.getpid()
        ):
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except (OSError, OverflowError, ValueError):
            return False  # alive (another user's), or no pid this system has: can't tell, so not gone
        return False

    def _warn_about_server(self) -> None:
        """Say once if this Redis may evict the registry."""
        try:
            policy = as_text(
                cast(dict[Any, Any], self.connection.config_get("maxmemory-policy")).get("maxmemory-policy") or ""
            )
        except ResponseError:
            return  # CONFIG is often disabled on managed Redis; nothing to check then
        if policy.startswith("allkeys-"):
            self.log.warning(
                "Redis maxmemory-policy is %s: under memory pressure Redis may evict cron job records and the "
                "schedule index. Use noeviction (or a volatile-* policy) for the Redis that holds the registry.",
                policy,
            )

    def register_death(self, pipeline: Pipeline | None = None) -> None:
        """Unregister this scheduler and release the singleton lock if it is still ours.

        Safe to call twice, and after the lock was lost.
        """
        client = pipeline if pipeline is not None else self.connection
        self._leading = False
        try:
            # The lock first: a standby takes over at once, whatever happens to the monitoring keys after.
            released = self._lock.release()
        except (*_CONNECTION_ERRORS, RedisError) as exc:
            self.log.warning("Scheduler %s: could not release the lock (%s); it expires by itself", self.name, exc)
            released = False
        try:
            client.zrem(cron_scheduler_registry.get_registry_key(), self.name)
            client.delete(self.key)
        except (*_CONNECTION_ERRORS, RedisError) as exc:
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
        if not self._leading:
            if not self._touch_registry()[0]:
                self.save()
            return
        extended = self._lock.extend()
        if not extended:
            holder = self._lock.acquire()
            if holder is not None:
                self._leading = False
                self.log.error(
                    "Scheduler %s: lock is held by %s; stopping",
                    self.name,
                    holder.name,
                    extra=fields("lock_lost", scheduler=self.name, holder=holder.name, epoch=holder.epoch),
                )
                raise LockLostError(holder.name)
            self.log.warning(
                "Scheduler %s: lock had expired; took it again (fencing epoch %s)",
                self.name,
                self._lock.epoch,
                extra=fields("lock_retaken", scheduler=self.name, epoch=self._lock.epoch),
            )
        refreshed, registered = self._touch_registry()
        self._wait_for_replicas()
        if registered is not None:
            if not extended:
                self._check_registry(registered)
            if self.registry_lost is not None and registered > 0:
                self.log.warning("Scheduler %s: the registry has jobs again (%d)", self.name, registered)
                self.registry_lost = None
                self._jobs_hash_dirty = True
            self._known_jobs = registered
        if not refreshed or self._jobs_hash_dirty:
            self.save()
        self._next_heartbeat = time.monotonic() + self.heartbeat_interval

    def _wait_for_replicas(self) -> None:
        """WAIT until ``wait_replicas`` replicas have the lock (at most 100 ms); say so once if they don't."""
        if not self.wait_replicas:
            return
        acked = int(self.connection.wait(self.wait_replicas, 100))
        short = acked < self.wait_replicas
        if short and not self._replicas_short:
            self.log.warning(
                "Scheduler %s: only %d of %d replica(s) acknowledged the lock; a failover now could lose it",
                self.name,
                acked,
                self.wait_replicas,
            )
        elif not short and self._replicas_short:
            self.log.info("Scheduler %s: %d replica(s) acknowledge the lock again", self.name, acked)
        self._replicas_short = short

    def _check_registry(self, registered: int) -> None:
        """After the lock vanished, say loudly if the registry shrank: Redis may have lost its data."""
        known = self._known_jobs
        if not known or registered >= known:
            return
        if registered == 0:
            self.registry_lost = known
            self.log.error(
                "Scheduler %s: the registry is EMPTY (it had %d job(s)) and the lock had vanished: Redis restarted "
                "without its data or was flushed. Nothing will run until the jobs are registered again "
                "(for example with `rqrcron apply`).",
                self.name,
                known,
            )
        else:
            self.log.warning(
                "Scheduler %s: the registry has %d job(s), %d before the lock vanished: Redis may have lost recent "
                "writes (a restart or failover). Check the registry (`rqrcron info`).",
                self.name,
                registered,
                known,
            )

    @property
    def lock_epoch(self) -> int | None:
        """Fencing epoch of the lock this scheduler holds, or None."""
        return self._lock.epoch

    def _on_event(self, event: dict[str, Any]) -> None:
        self._wake.set()

    def request_stop(self, *_args: Any) -> None:
        """Ask the loop to stop after the current step (what SIGINT and SIGTERM do)."""
        self._stopping = True
        self._wake.set()

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        # Nothing here may take a lock (not even logging's): the main thread, interrupted, may hold it.
        if self._releasing:
            # Shutting down already: releasing the lock takes one round trip (bounded by the socket
            # timeout); let it finish, so a standby takes over at once. A third signal leaves anyway.
            self._releasing = False
            self._second_signal = signum
            return
        if self._stopping:
            # A second signal: the loop is stuck (e.g. Redis hangs); leave now. The lock expires by itself.
            self._second_signal = signum
            raise KeyboardInterrupt
        self._stop_signal = signum
        self.request_stop()

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, self._request_stop)
        return previous

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
        self._stopping = False
        self._stop_signal = None
        self._second_signal = None
        self._releasing = False
        self.superseded_by = None
        started = False
        _setup_logging(self.logging_level)
        previous = self._install_signal_handlers()
        try:
            if not burst:
                self._listener.start()
            try:
                while True:
                    if standby and not burst:
                        self._wait_for_lock()
                    else:
                        self.register_birth()
                    started = True
                    if self._stopping:
                        break
                    try:
                        self._loop(burst)
                        break
                    except LockLostError as exc:
                        if not standby or self._stopping:
                            self.superseded_by = exc.holder
                            raise
                        # Superseded (e.g. after a pause): stand by again rather than exit.
                        self.log.warning("Scheduler %s: lost the lock; standing by again", self.name)
            except StopRequested:
                self.log.info("Scheduler %s: stop requested", self.name)
            except KeyboardInterrupt:
                if self._second_signal is not None:
                    self.log.warning("Scheduler %s: second signal %s; exiting at once", self.name, self._second_signal)
                else:
                    self.log.info("Scheduler %s: interrupted", self.name)
            finally:
                self._releasing = True
                if self._stop_signal is not None:
                    # Logged here, not in the handler, which must take no lock.
                    self.log.info(
                        "Scheduler %s: received signal %s; stopped after the current step", self.name, self._stop_signal
                    )
                self._listener.stop()
                self.register_death()
                self._releasing = False
                if started:
                    self.log.info("Scheduler %s: shutdown complete", self.name)
        finally:
            for sig, handler in previous.items() if isinstance(previous, dict) else ():
                signal.signal(sig, handler)

    def _wait_for_lock(self) -> None:
        """Standby: retry register_birth() until it succeeds or a stop is requested."""
        announced: str | None = None
        while not self._stopping:
            self._wake.clear()
            try:
                self.register_birth()
                return
            except SchedulerLockedError as exc:
                if exc.holder != announced:
                    self.log.info("Scheduler %s: standing by; the lock is held by %s", self.name, exc.holder)
                    announced = exc.holder
                wait = 1.0
            except Exception as exc:
                wait = self._on_failure(exc)
            # A release is published, so a graceful handover is immediate; a crashed holder's lock
            # just expires, which the periodic retry notices.
            self._wake.wait(wait)

    def run(self, burst: bool = False) -> None:
        """Alias of [start()][start], as rq-scheduler names it."""
        self.start(burst=burst)

    def _hooked(self) -> bool:
        """Whether enqueue_jobs() or calculate_sleep_interval() is overridden (by a subclass, or on the object)."""
        return (
            getattr(self.enqueue_jobs, "__func__", None) is not RedisCronScheduler.enqueue_jobs
            or getattr(self.calculate_sleep_interval, "__func__", None)
            is not RedisCronScheduler.calculate_sleep_interval
        )

    def _hooked_pass(self) -> float:
        """rq's pass, through the overridden hooks: enqueue what is due, then ask how long to wait."""
        self.enqueue_jobs()
        return float(self.calculate_sleep_interval())

    def _loop(self, burst: bool) -> None:
        hooked = self._hooked()
        # A pass through overridden hooks has no look-ahead: rq's hooks know nothing of runs built ahead.
        self._look_ahead = not burst and not hooked
        self._ahead.clear()
        self._fire_loaded = False
        while not self._stopping:
            self._wake.clear()
            try:
                if time.monotonic() >= self._next_heartbeat or self._lock.value is None:
                    self.heartbeat()
                sleep = self._hooked_pass() if hooked else self._pass()
                if self._failing is not None:
                    self.log.warning(
                        "Scheduler %s: recovered after %.1fs (%s)",
                        self.name,
                        time.monotonic() - self._failing_since,
                        self._failing,
                    )
                    self._failing = None
                    self._backoff = 0.1
            except StopRequested:
                raise
            except Exception as exc:
                if burst or (hooked and not isinstance(exc, (*_CONNECTION_ERRORS, RedisError))):
                    raise  # an overriding hook's own error is its caller's, as in rq's loop
                sleep = self._on_failure(exc)
            if burst and sleep > 0:
                return
            if sleep > 0 and not self._stopping:
                self._wake.wait(sleep)

    def _on_failure(self, exc: Exception) -> float:
        """Log a failure once per kind, and return how long to back off before the next try."""
        self.failed_passes += 1
        kind = "Redis unreachable" if isinstance(exc, _CONNECTION_ERRORS) else type(exc).__name__
        if kind != self._failing:
            if self._failing is None:
                self._failing_since = time.monotonic()
            self._failing = kind
            if isinstance(exc, _CONNECTION_ERRORS):
                self.log.error("Scheduler %s: Redis unreachable (%s); retrying with back-off", self.name, exc)
            elif isinstance(exc, RedisError):
                # An error reply (NOPERM, OOM, READONLY, BUSY...): Redis says what is wrong, no traceback needed.
                hint = (
                    " (docs/operations.md lists the ACL rights the scheduler needs)"
                    if "NOPERM" in str(exc) or isinstance(exc, NoPermissionError)
                    else ""
                )
                self.log.error(
                    "Scheduler %s: Redis refused a command: %s%s; retrying with back-off", self.name, exc, hint
                )
            else:
                # A bug: keep going, loudly, without crashing.
                self.log.exception("Scheduler %s: pass failed; retrying with back-off", self.name)
        backoff = self._backoff
        self._backoff = min(self._backoff * 2, MAX_BACKOFF)
        self._next_heartbeat = 0.0
        # Redis may come back as a restarted server that knows no scripts.
        self._fire_loaded = False
        return backoff

    def _check_master(self) -> None:
        """Through Sentinel: ask, at most once a second, which server is the master, and move to a new one.

        A demoted master may accept writes until the sentinels reconfigure it, seconds later;
        whatever is written there meanwhile is lost when it resyncs. Asking the sentinels
        bounds that window to about a second.
        """
        pool = self.connection.connection_pool
        if not isinstance(pool, SentinelConnectionPool) or time.monotonic() < self._next_master_check:
            return
        self._next_master_check = time.monotonic() + MASTER_CHECK_INTERVAL
        address = pool.get_master_address()  # type: ignore[no-untyped-call]
        if self._master is not None and address != self._master:
            self.log.warning(
                "Scheduler %s: Redis Sentinel reports a new master %s:%s (was %s:%s); moving to it",
                self.name,
                *address,
                *self._master,
                extra=fields("master_changed", scheduler=self.name, master=f"{address[0]}:{address[1]}"),
            )
            pool.disconnect(inuse_connections=False)
            self._listener.resubscribe()
            # Built against the old master's clock and records: build again from the new one.
            self._ahead.clear()
            self._fire_loaded = False
            self._next_heartbeat = 0.0
            self._master = address
            self.heartbeat()
        self._master = address

    def run_once(self) -> float:
        """One pass of the loop [start()][start] runs: fire what is due (runs built ahead first), build the
        runs due within the look-ahead, re-read quarantined jobs when it is time; return how long to wait
        before the next pass, in seconds.

        It needs the lock ([register_birth()][register_birth]); the loop also heartbeats between passes.
        For tests and embedding (with the ``clock`` argument, time moves only when the test moves it).
        """
        return self._pass()

    def _pass(self) -> float:
        """One pass: fire what is due, build what is about to be; return how long to wait before the next."""
        self._check_master()
        if time.monotonic() >= self._lock.valid_until:
            # Our lock may have expired unnoticed (a long pause); re-check it before firing.
            self.heartbeat()
        if self._ahead:
            self._fire_ahead(self._estimated_now())
        if self._estimated_now() >= self._next_quarantine_retry:
            self._next_quarantine_retry = self._estimated_now() + QUARANTINE_RETRY_INTERVAL
            self.retry_quarantined()
        now, marker, upcoming, entries = self._tick(LOOKAHEAD if self._look_ahead else 0.0)
        self._note_marker(marker)
        due = [entry for entry in entries if float(entry.score) <= now]
        _fired, more = self._fire_due(now, due)
        if more or (due and self._lock.value is None):
            return 0.0
        if not due and entries and self._lock.value is not None:
            self._build_ahead(entries)
            if self._ahead:
                soonest = min(float(s.score) for s in self._ahead.values())
                upcoming = soonest if upcoming is None else min(upcoming, soonest)
        elif not entries and upcoming is not None and self._look_ahead:
            # Nothing within the look-ahead yet: wake when the next slot enters it, to build its runs in time.
            upcoming -= LOOKAHEAD
        if self._stale:
            # A job changed between read and fire; it is still due, so look again shortly.
            return 0.01
        if self._advanced_to is not None:
            # The slots just fired moved on; their next one may come before anything read in the tick.
            # Fired cold, they were not built ahead: wake in time to build their next run.
            advanced = self._advanced_to - (LOOKAHEAD if self._look_ahead else 0.0)
            upcoming = advanced if upcoming is None else min(upcoming, advanced)
        # Building runs ahead takes time: count the wait from now, not from the tick.
        sleep = self._sleep_for(self._estimated_now(), upcoming)
        since = time.monotonic() - self._jobs_hash_saved
        if self._jobs_hash_dirty and ((sleep > IDLE_ENOUGH and since > 5.0) or since > 60.0):
            # Monitoring only, and it reads up to 1,000 jobs: done while idle, not between a slot's fires
            # (unless the loop has not been idle for a minute).
            self.save()
            sleep = self._sleep_for(self._estimated_now(), upcoming)
        until_heartbeat = max(0.0, self._next_heartbeat - time.monotonic())
        return min(sleep, until_heartbeat)


def _pid_namespace() -> str:
    """This process's pid namespace ('' where there is none to tell): pids compare only within one."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def _time(slot: int) -> str:
    return format_time(from_epoch(slot))


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
