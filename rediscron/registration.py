"""CronRegistration: the registering half of rq's ``CronScheduler`` contract, over a `Registry`.

``register()``, ``register_many()``, ``load_config_from_file()``, ``trigger()`` and the job
listings, with rq's argument orders. It needs a connection only;
[RedisCronScheduler][rediscron.RedisCronScheduler] adds the lock and the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from inspect import signature
from typing import Any

from redis import Redis
from rq import Callback, Retry
from rq.cron import CronScheduler
from rq.job import Job
from rq.queue import Queue

from .clock import Clock
from .fields import DEFAULT_RESULT_TTL
from .imports import DEFAULT_ALLOWED_IMPORTS, ImportAllowlist, callable_path
from .job import RedisCronJob
from .registry import REGISTER_ARGUMENTS, Registry
from .store import Conflict


class CronRegistration(CronScheduler):
    """rq's ``CronScheduler`` registering API over the jobs in Redis; the base of
    [RedisCronScheduler][rediscron.RedisCronScheduler], which documents it."""

    #: The class of the jobs it registers and reads (a subclass of [RedisCronJob][rediscron.RedisCronJob], as a
    #: subclass of this scheduler may set).
    cron_job_class: type[RedisCronJob] = RedisCronJob

    def __init__(
        self,
        connection: Redis,
        logging_level: str | int = logging.INFO,
        name: str = "",
        *,
        clock: Clock | None = None,
        allow_import: Iterable[str] = DEFAULT_ALLOWED_IMPORTS,
    ) -> None:
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
        max_consecutive_failures: int | None = None,
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
        labels: Mapping[str, str] | None = None,
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
        - ``max_consecutive_failures``: disable the job once this many of its runs in a row
          have failed (its drop log and the audit log say why; the scheduler's ``on_disable``
          hook is told).

        rq options for each run: ``job_timeout``, ``result_ttl``, ``ttl``, ``failure_ttl``,
        ``meta``, ``description``, ``retry`` (rq ``Retry``, or a number of retries),
        ``at_front``, ``on_success``/``on_failure``/``on_stopped`` (functions or dotted
        paths, or rq ``Callback``), ``webhooks`` (rq ``Webhook`` objects, rq 2.10 and
        newer), and the queue's ``queue_class``, ``job_class`` and ``serializer`` (classes
        or dotted paths).

        ``labels`` (``{"team": "billing"}``): text to select jobs by, in listings
        (`rqrcron info --label team=billing`) and in actions on many jobs at once
        (`rqrcron disable --label team=billing`).

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
        """Create or update many jobs: every one is validated first (all or nothing), then they are
        written ``batch_size`` to a round trip, each job atomically (a job that exists already takes
        a second round trip: its stored timing is read on the first). The round trips go out in a
        stream: each batch is packed while Redis writes the one before.

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
_DEFAULTS = {name: parameter.default for name, parameter in signature(CronRegistration.register).parameters.items()}


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
