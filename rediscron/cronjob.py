"""CronDefinition: a cron job's validated definition and its timing, with no Redis I/O.

[RedisCronJob][rediscron.RedisCronJob] adds what reads and writes Redis (fetch, save, enable,
disable, delete, history, runs by hand). What is here works on the object alone: the fields
and their checks, the slots of its schedule, and the hash fields it is stored as.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence, Set
from datetime import datetime, timedelta, timezone
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Any, Generic, TypeVar

from redis import Redis
from rq import Callback, Retry
from rq.cron import CronJob
from rq.job import Job
from rq.queue import Queue

from . import fields, keys, record, store
from .clock import Clock, format_time, from_epoch, to_epoch
from .definition import Definition, check_time, id_from_name, normalise, normalise_like
from .errors import CorruptJobError, InvalidJobError
from .fields import CODE_OPTIONS, DEFAULT_RESULT_TTL, DEFINITION_FIELDS, FIELDS, OPTIONS
from .options import build_webhooks, jitter_delay
from .preview import slots_from
from .record import SCHEMA_VERSION, StoredTiming, slot_of
from .schedule import Schedule, make_schedule

#: The hash fields a save writes of a definition, in order.
_WRITTEN = ("schema_version", *DEFINITION_FIELDS)
#: The attribute types `RedisCronJob._like` copies rather than shares.
_CONTAINERS = frozenset({dict, list, set})
_Self = TypeVar("_Self", bound="CronDefinition")


class CronDefinition(CronJob):
    """rq's ``CronJob`` with rediscron's fields, checks and timing; the base of
    [RedisCronJob][rediscron.RedisCronJob], which documents every field."""

    #: IANA zone the cron fields are read in.
    timezone: str
    #: How late (seconds) a slot may still run; None: no limit.
    misfire_grace_time: int | None
    #: What runs after missed slots: "coalesce", "skip" or "all".
    catchup: str
    #: "allow", or "skip" a slot while the previous run is still queued or running.
    overlap: str
    #: Seconds of deterministic per-slot delay, at most.
    jitter: int
    start_time: datetime | None
    end_time: datetime | None
    max_runs: int | None
    #: Disable the job once this many runs in a row have failed; None: never.
    max_consecutive_failures: int | None
    description: str | None
    #: ``{"max": n, "interval": [seconds...]}`` (rq's Retry).
    retry: dict[str, Any] | None
    at_front: bool
    on_success: str | dict[str, Any] | None
    on_failure: str | dict[str, Any] | None
    on_stopped: str | dict[str, Any] | None
    queue_class: str | None
    job_class: str | None
    serializer: str | None
    #: rq's webhooks (``Webhook.to_dict()`` forms), sent by the worker when a run ends.
    webhooks: list[dict[str, Any]] | None
    #: ``{name: value}`` to select jobs by (sorted by name), or None.
    labels: dict[str, str] | None

    def __init__(
        self,
        id: str | None = None,
        queue_name: str = "",
        func: Callable[..., Any] | str | None = None,
        func_name: str | None = None,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        interval: int | None = None,
        cron: str | None = None,
        job_timeout: int | None = None,
        result_ttl: int | None = DEFAULT_RESULT_TTL,
        ttl: int | None = None,
        failure_ttl: int | None = None,
        meta: dict[str, Any] | None = None,
        connection: Redis | None = None,
        latest_enqueue_time: datetime | None = None,
        next_enqueue_time: datetime | None = None,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
        enabled: bool = True,
        *,
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
    ) -> None:
        """Build and validate a job; nothing is written until [save()][save].

        :param id: The job's stable id (any text of at most 200 characters without control
            characters). rq's ``name`` is taken as the id when ``id`` is not given.
        :param queue_name: The RQ queue its runs go to.
        :param func: The function (or its dotted path) each run calls; it must be importable
            by that path where the workers run.
        :param func_name: The dotted path, instead of ``func``.
        :param args: Positional arguments of each run (JSON).
        :param kwargs: Keyword arguments of each run (JSON).
        :param interval: Seconds between runs; give this or ``cron``.
        :param cron: A cron expression (5 fields, or 6 with seconds), read in ``timezone``.
        :param job_timeout: rq's timeout of each run, in seconds.
        :param result_ttl: Seconds rq keeps a run's result (0: not kept, -1: forever).
        :param ttl: Seconds a run may wait in its queue.
        :param failure_ttl: Seconds rq keeps a failed run.
        :param meta: rq job meta of each run (JSON; keys ``rediscron_*`` are reserved).
        :param connection: The Redis client to save, fetch and delete with.
        :param latest_enqueue_time: When a run was last enqueued (the scheduler keeps it).
        :param next_enqueue_time: The next run (the scheduler keeps it; computed for cron).
        :param created_at: Kept from the stored job.
        :param updated_at: Kept from the stored job.
        :param enabled: Whether the scheduler runs it.
        :param name: rq's name for the job: the id.

        The keyword options (``timezone``, ``catchup``, ``retry``, ``webhooks``...) are those of
        [RedisCronScheduler.register()][rediscron.RedisCronScheduler.register].

        :raises InvalidJobError: A value is refused; the error names the job and the field.
        """
        # Every field by name (a test holds this signature to fields.FIELDS).
        arguments = locals()
        given = {name: arguments[name] for name in FIELDS}
        given["id"] = id_from_name(id, name)
        d = normalise(given, func)
        values = d.values
        super().__init__(
            queue_name=values["queue_name"],
            func=d.func,
            func_name=None if d.func is not None else values["func_name"],
            args=values["args"],
            kwargs=values["kwargs"],
            interval=values["interval"],
            cron=values["cron"],
            job_timeout=values["job_timeout"],
            result_ttl=values["result_ttl"],
            ttl=values["ttl"],
            failure_ttl=values["failure_ttl"],
            meta=values["meta"],
        )
        self.id: str = d.id
        for name, value in (
            ("latest_enqueue_time", latest_enqueue_time),
            ("next_enqueue_time", next_enqueue_time),
            ("created_at", created_at),
            ("updated_at", updated_at),
        ):
            check_time(value, d.id, name)
        self.connection: Redis | None = connection
        self.latest_enqueue_time = latest_enqueue_time
        self.next_enqueue_time = next_enqueue_time
        self.created_at: datetime | None = created_at
        self.updated_at: datetime | None = updated_at
        self.job_timeout: int | None = None
        self.result_ttl: int | None = None
        self.ttl: int | None = None
        self.failure_ttl: int | None = None
        self.meta: dict[str, Any] | None = None
        self.enabled: bool = True
        self._apply(d)
        #: Bumped by every write to the stored record; the scheduler fires only the revision it read.
        self.revision: int = 0
        #: Why the scheduler quarantined this job (its record could not be used), if it did.
        self.last_error: str | None = None
        #: Replaces the Redis server's clock when computing next runs (tests, injected by the scheduler).
        self.clock: Clock | None = None
        #: (score, revision, now) of the slot this job is due for, set by get_jobs_to_queue(); and the RQ
        #: job enqueue_job() enqueued (or found) for it.
        self._due: tuple[str, bytes | str, float] | None = None
        self._rq_job: Job | None = None
        #: Kept by the scheduler: scheduled runs enqueued, slots missed, slots skipped for overlap.
        self.run_count = 0
        self.missed_count = 0
        self.overlap_count = 0
        #: Runs that failed in a row, as counted by the scheduler when each next run is enqueued (a run
        #: still in progress then is not counted); [get_stats()][get_stats] counts from the live history.
        self.consecutive_failures = 0
        #: The latest slots not run, newest last: {"at", "from", "to", "slots", "exact", "reason"}.
        self.drop_log: list[dict[str, Any]] = []
        self._trusted_options: dict[str, Any] = {}
        #: What the caller of this object gave itself for the options naming code, by option: (stored
        #: path, the class given, or None for a path given). Used as given; a path read from Redis is
        #: imported only through an allowlist.
        self._code: dict[str, tuple[str, Any]] = {}
        self._remember_code(given)
        #: Whether this object was read from Redis: its save() then updates the stored job only, and never
        #: brings back one deleted meanwhile (an object you build yourself saves as an upsert).
        self._fetched = False
        #: What the stored record defined when this job was read by a scheduler (`record.definition_key`).
        self._definition_key: Any = None
        if next_enqueue_time is None and self.cron:
            # As rq's CronJob does: a cron job knows its next run as soon as it is built.
            self.next_enqueue_time = self.get_next_enqueue_time()

    def _remember_code(self, given: Mapping[str, Any]) -> None:
        for name in CODE_OPTIONS:
            value = given.get(name)
            if value is not None:
                self._code[name] = (getattr(self, name), None if isinstance(value, str) else value)

    def _apply(self, d: Definition) -> None:
        for name, value in d.values.items():
            setattr(self, name, value)
        self.name = d.id
        self.func = d.func
        self.job_options = self._options(d.values, build_webhooks(self.webhooks))
        self._json = d.texts
        # What func_name was derived from (or read from Redis): an unchanged pair is not re-checked.
        self._checked = (d.func, d.values["func_name"])
        #: The definition's hash fields, when derived from another job's of its shape (`_built_like`).
        self._built_fields: dict[str, str] | None = None

    def _validated(self) -> Definition:
        """Validate the job's current attributes (callers may have edited them) and normalise them."""
        func_checked, name_checked = self._checked
        func: Any = self.func
        trusted: str | None = None
        values = {name: getattr(self, name) for name in FIELDS}
        if func is func_checked and self.func_name == name_checked:
            trusted = self.func_name
        elif func is not func_checked:
            values["func_name"] = None  # a new function: its path is derived from it
        else:
            func = None  # a new dotted path: it is imported to check it
        d = normalise(values, func, trusted_func_name=trusted, trusted=self._trusted_options)
        self._apply(d)
        self._remember_code(values)
        for name in ("latest_enqueue_time", "next_enqueue_time", "created_at", "updated_at"):
            check_time(getattr(self, name), d.id, name)
        return d

    def options(self) -> dict[str, Any]:
        """The job's options (``timezone``, ``catchup``, ``retry``...) by name, as they are now."""
        return {name: getattr(self, name) for name in OPTIONS}

    def get_next_enqueue_time(self) -> datetime:
        """The run after the latest one (or after now, by this host's clock), by this job's schedule.

        rq's own version reads cron in the host's zone; this one uses the job's ``timezone``. The
        scheduler itself works from Redis time and the index, not from this.
        """
        if "_checked" not in self.__dict__:
            # rq's CronJob.__init__ asks before this job is set up; the constructor sets the real value.
            return datetime.fromtimestamp(0, timezone.utc)
        if self.interval and self.latest_enqueue_time is not None:
            return self.latest_enqueue_time + timedelta(seconds=self.interval)  # as rq: exactly one interval on
        base = self.latest_enqueue_time or datetime.now(timezone.utc)
        return from_epoch(self.schedule.next_after_fire(math.floor(to_epoch(base)), to_epoch(base)))

    def __repr__(self) -> str:
        schedule = self.describe_schedule()
        return f"{type(self).__name__}(id={self.id!r}, func_name={self.func_name!r}, schedule={schedule!r})"

    def __eq__(self, other: object) -> bool:
        """Jobs are the same job when they have the same id, as the registry knows them (``get_jobs()``
        returns new objects each time)."""
        if not isinstance(other, CronDefinition):
            return NotImplemented
        return self.id == other.id

    def __hash__(self) -> int:
        return hash((CronDefinition, self.id))

    # -- schedule -----------------------------------------------------------------------------

    @property
    def key(self) -> str:
        """Redis hash key for this cron job (``rq:cron_job:{id}``)."""
        return keys.job(self.id)

    @property
    def schedule(self) -> Schedule:
        """The schedule object computing this job's slots."""
        return make_schedule(self.interval, self.cron, self.timezone)

    def describe_schedule(self) -> str:
        """``*/5 * * * *`` or ``every 300s``."""
        return self.schedule.describe()

    def first_slot(self, now: float, stored: StoredTiming | None = None) -> int | None:
        """The slot this job gets when created, re-scheduled or re-enabled at ``now``; None if it has ended.

        An interval job keeps its rhythm from its last slot (taken from ``stored``,
        the record as it is in Redis, else from this object): the first point of the
        new rhythm that is not in the past. A job with no earlier slot is due at once
        (at ``start_time``, if that is later). A job past ``end_time``, or that has run
        ``max_runs`` times, gets no slot.
        """
        if stored is None:
            stored = StoredTiming(
                self.interval, slot_of(self.next_enqueue_time), slot_of(self.latest_enqueue_time), self.run_count
            )
        if self.max_runs is not None and stored.runs >= self.max_runs:
            return None
        last: float | None = None
        if stored.next_slot is not None and stored.interval:
            last = stored.next_slot - stored.interval
        elif stored.latest is not None:
            last = stored.latest
        if self.start_time is not None and to_epoch(self.start_time) > now:
            begin = math.ceil(to_epoch(self.start_time))
            # A cron slot exactly at start_time counts; cron looks strictly after the time it is given.
            slot = self.schedule.first_slot(begin if self.interval else begin - 1, last)
        else:
            slot = self.schedule.first_slot(now, last)
        return None if self.past_end(slot) else slot

    def next_runs(self, n: int = 10, after: datetime | None = None) -> list[datetime]:
        """The next ``n`` slots of this job's schedule (UTC, 1,000 at most), fewer if it ends (``end_time``,
        ``max_runs``).

        From its stored next run, or the first slot after ``after`` (default: now, by this
        host's clock). Nothing is read or written.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InvalidJobError(self.id, "n", f"must be a whole number >= 0, not {n!r}")
        check_time(after, self.id, "after")
        schedule = self.schedule
        if after is None and self.next_enqueue_time is not None:
            slot = math.floor(to_epoch(self.next_enqueue_time))
        else:
            start = to_epoch(after) if after is not None else datetime.now(timezone.utc).timestamp()
            slot = schedule.next_after_fire(math.floor(start), start)
        if self.max_runs is not None:
            n = min(n, max(0, self.max_runs - self.run_count))
        return [from_epoch(each) for each in slots_from(schedule, slot, n, self.past_end)]

    def past_end(self, slot: int) -> bool:
        """Whether ``slot`` falls after ``end_time``."""
        return self.end_time is not None and slot > to_epoch(self.end_time)

    def score(self, slot: int) -> int:
        """The index score of a slot: the slot plus its jitter delay (less than the gap to the next slot)."""
        if not self.jitter:
            return slot
        room = self.interval if self.interval else self.schedule.next_after_fire(slot, slot) - slot
        return slot + jitter_delay(self.id, slot, self.jitter, room)

    # -- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Serialize the cron job into Redis hash fields.

        Values are strings or integers; ``args``, ``kwargs`` and ``meta`` are JSON;
        datetimes are in RQ's UTC format. A field whose value is None is left out,
        so ``redis-cli hgetall rq:cron_job:{id}`` shows exactly what is set.
        """
        self._validated()
        return self._fields()

    def _fields(self) -> dict[str, Any]:
        """[to_dict()][to_dict] of attributes already validated."""
        data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            **fields.encode({name: getattr(self, name) for name in FIELDS}, self._json),
            "revision": self.revision,
            "created_at": format_time(self.created_at) if self.created_at else None,
            "updated_at": format_time(self.updated_at) if self.updated_at else None,
            "latest_enqueue_time": format_time(self.latest_enqueue_time) if self.latest_enqueue_time else None,
            "next_enqueue_time": format_time(self.next_enqueue_time) if self.next_enqueue_time else None,
            "last_error": self.last_error,
        }
        return {k: v for k, v in data.items() if v is not None}

    def to_rq_dict(self) -> dict[str, Any]:
        """rq's own monitoring form of this job (what ``rq.cron.CronJob.from_dict`` reads)."""
        self._validated()
        data: dict[str, Any] = CronJob.to_dict(self)
        data["name"] = self.id
        return data

    def _definition_fields(self, validate: bool = True) -> dict[str, str]:
        """The definition's hash fields; ``validate=False`` only for a job nobody has touched since it was built."""
        if not validate and self._built_fields is not None:
            return dict(self._built_fields)
        data = self.to_dict() if validate else self._fields()
        return {f: str(data[f]) for f in _WRITTEN if f in data}

    @classmethod
    def restore(
        cls: type[_Self],
        raw_data: Mapping[Any, Any],
        connection: Redis | None = None,
        *,
        id: str | None = None,
    ) -> _Self:
        """Restore a job from Redis hash data.

        Nothing is imported: ``func_name`` stays a dotted path (``func`` is None), and the
        job's runs are enqueued by that path, as ``Queue.enqueue("pkg.mod.func")`` does; the
        RQ worker imports it. So what Redis holds never runs code in the process reading it.
        A record that cannot be read raises [CorruptJobError][rediscron.CorruptJobError].
        """
        rec = record.decode(raw_data, id)
        try:
            job = cls(
                id=rec.id,
                # Stands in for the function, which is never imported here: skips the caller-side checks.
                func=_placeholder,
                connection=connection,
                latest_enqueue_time=rec.latest_enqueue_time,
                next_enqueue_time=rec.next_enqueue_time,
                created_at=rec.created_at,
                updated_at=rec.updated_at,
                **rec.definition,
            )
        except InvalidJobError as exc:
            raise CorruptJobError(rec.id, f"{exc.field}: {exc.message}") from None
        for name, value in rec.code.items():
            setattr(job, name, value)
        job._trusted_options = rec.code
        job._fetched = True
        job.func = None
        job.func_name = rec.func_name
        job._checked = (None, rec.func_name)
        # As stored: none for a disabled or ended job (not what the constructor computes for cron).
        job._take_state({name: getattr(rec, name) for name in record.STATE_FIELDS})
        return job

    @staticmethod
    def _options(values: Mapping[str, Any], webhooks: Any) -> dict[str, Any]:
        """rq's ``job_options`` of a definition's values, and its webhooks built."""
        options = {name: values[name] for name in ("job_timeout", "result_ttl", "ttl", "failure_ttl", "meta")}
        options["webhooks"] = webhooks
        return {k: v for k, v in options.items() if v is not None}

    def _like(self: _Self, raw_data: Mapping[Any, Any], job_id: str) -> _Self:
        """What [restore()][restore] gives for ``raw_data``, a record of this job's shape (equal to this job's
        record but for `record.PER_JOB_FIELDS` and the state): only what tells them apart is read and checked.
        A record that cannot be read raises CorruptJobError, as from restore()."""
        try:
            d = normalise_like(record.decode_per_job(raw_data, job_id), job_id, self._json)
            state = record.decode_state(raw_data, job_id)
            for name in ("latest_enqueue_time", "next_enqueue_time", "created_at", "updated_at"):
                check_time(state[name], job_id, name)
        except InvalidJobError as exc:
            raise CorruptJobError(job_id, f"{exc.field}: {exc.message}") from None
        job = self._with(d)
        job._take_state(state)
        return job

    def _built_like(self: _Self, job_id: object, per_job: Mapping[str, Any]) -> _Self:
        """What the constructor gives for a job given the arguments this job was built from but for its id
        and ``per_job`` (its ``args``, ``kwargs``, ``meta``, each absent one at its default): only those are
        checked, with the same errors. This job must be as built, never saved nor changed since."""
        values = {name: per_job.get(name, FIELDS[name].default) for name in record.PER_JOB_FIELDS[1:]}
        job = self._with(normalise_like(values, job_id, self._json))  # type: ignore[arg-type]
        if job.cron:
            job.next_enqueue_time = job.get_next_enqueue_time()  # as the constructor computes it, now
        # Its hash fields are this job's but for its own (those it does not store: left out).
        if self._built_fields is None:  # this job's own, worked out once for all the jobs built like it
            self._built_fields = self._definition_fields(validate=False)
        shared = self._built_fields
        merged = {name: text for name, text in shared.items() if name not in record.PER_JOB_FIELDS}
        own = fields.encode(vars(job), job._json, record.PER_JOB_FIELDS)
        merged |= {name: str(value) for name, value in own.items()}
        job._built_fields = {name: merged[name] for name in _WRITTEN if name in merged}
        return job

    def _with(self: _Self, d: Definition) -> _Self:
        """A detached copy of this job with the id and per-job fields of ``d`` (`normalise_like`'s)."""
        job = self._detached(replaced={*d.values, "job_options", "_json", "_built_fields"})
        for name, value in d.values.items():
            setattr(job, name, value)
        job.name = d.id
        shared = {name: self.job_options.get(name) for name in ("job_timeout", "result_ttl", "ttl", "failure_ttl")}
        job.job_options = self._options({**shared, "meta": job.meta}, self.job_options.get("webhooks"))
        job._json = d.texts
        job._built_fields = None
        return job

    def _detached(self: _Self, replaced: Set[str] = frozenset()) -> _Self:
        """A copy whose containers (arguments, labels, options...) are its own: changed in place, they
        change the copy only. ``replaced``: attributes the caller sets anew at once (not copied)."""
        job = copy.copy(self)
        state = vars(job)
        for name, value in state.items():
            if type(value) in _CONTAINERS and name not in replaced:
                state[name] = value.copy()
        return job

    def _take_state(self, state: Mapping[str, Any]) -> None:
        """Set what the scheduler keeps (`record.STATE_FIELDS`, read by `record.decode_state`)."""
        for name, value in state.items():
            setattr(self, name, value)

    @classmethod
    def from_dict(cls: type[_Self], data: dict[str, Any]) -> _Self:
        """A job from [to_dict()][to_dict]'s fields, or from rq's ``CronJob.to_dict()`` form (its ``name`` is the id).

        Like [restore()][restore], nothing is imported; unlike [fetch()][rediscron.RedisCronJob.fetch],
        nothing is read from Redis.
        """
        fields = {key: str(value) for key, value in data.items() if value is not None}
        if "id" not in fields and (data.get("name") or data.get("func_name")):
            fields["id"] = str(data.get("name") or data.get("func_name"))
        return cls.restore(fields)

    def _entry_after(self, now: float, stored: StoredTiming | None, latest: datetime | None) -> store.IndexEntry:
        """Where a write at ``now`` indexes this job: after ``latest`` if given (a recorded run), else
        [first_slot()][first_slot]."""
        candidate: int | None
        if latest is not None:
            candidate = self.schedule.next_after_fire(slot_of(latest) or 0, to_epoch(latest))
            candidate = None if self.past_end(candidate) else candidate
        else:
            candidate = self.first_slot(now, stored)
        return self._index_entry(candidate)

    def _index_entry(self, slot: int | None) -> store.IndexEntry:
        """The index entry of a slot: its score and next_enqueue_time (NO_ENTRY for none)."""
        return store.IndexEntry.of(None if slot is None else self.score(slot), slot)

    def queue_spec(self) -> tuple[str, str | None, str | None, str | None]:
        """What identifies this job's RQ queue: (name, queue_class, job_class, serializer)."""
        return self.queue_name, self.queue_class, self.job_class, self.serializer

    def given_code(self, option: str) -> tuple[str, Any] | None:
        """What this object's caller gave for an option naming code: (its stored path, the class given, or
        None for a path given); None if it was not given here (read from Redis)."""
        return self._code.get(option)


def _placeholder() -> None:
    """Stands in for a function that cannot be imported in this process."""


#: Most shapes of records a `ByShape` keeps.
SHAPES_KEPT = 1_000


class ByShape(Generic[_Self]):
    """Restores records, decoding and checking in full only the first of each shape (`record.shape_key`):
    the jobs of one shape (a thousand tenants' reports) differ in their id, arguments and meta alone."""

    def __init__(self, job_class: type[_Self], connection: Redis | None = None, limit: int = SHAPES_KEPT) -> None:
        self.job_class = job_class
        self.connection = connection
        self.limit = limit
        self._seen: dict[tuple[Any, ...], _Self] = {}

    def restore(self, raw_data: Mapping[Any, Any], job_id: str) -> _Self:
        """What ``job_class.restore(raw_data, connection, id=job_id)`` gives, and raises."""
        shape = record.shape_key(raw_data)
        like = self._seen.get(shape)
        if like is not None:
            return like._like(raw_data, job_id)
        job = self.job_class.restore(raw_data, self.connection, id=job_id)
        if len(self._seen) >= self.limit:
            del self._seen[next(iter(self._seen))]
        self._seen[shape] = job._detached()
        return job

    def clear(self) -> None:
        self._seen.clear()


#: What sets apart the jobs of one shape as given to the constructor (`BuiltByShape`).
PER_JOB_ARGUMENTS = ("id", "name", "args", "kwargs", "meta")


class BuiltByShape(Generic[_Self]):
    """Builds jobs from the constructor's arguments, checking in full only the first of each shape: the
    jobs of one shape (``register_many`` of a thousand tenants' reports) are given the same arguments,
    type for type, but for `PER_JOB_ARGUMENTS`. ``build`` makes a job from arguments by name."""

    def __init__(self, build: Callable[..., _Self], limit: int = SHAPES_KEPT) -> None:
        self.build = build
        self.limit = limit
        self._seen: dict[Any, _Self] = {}

    def __call__(self, arguments: Mapping[str, Any]) -> _Self:
        """What ``build(**arguments)`` gives, and raises."""
        try:
            shape = _frozen({name: value for name, value in arguments.items() if name not in PER_JOB_ARGUMENTS})
        except RecursionError:  # an object that holds itself: built in full
            return self.build(**arguments)
        like = self._seen.get(shape)
        if like is not None:
            job_id = id_from_name(arguments.get("id"), arguments.get("name", ""))
            return like._built_like(job_id, arguments)
        job = self.build(**arguments)
        if len(self._seen) >= self.limit:
            del self._seen[next(iter(self._seen))]
        self._seen[shape] = job._detached()
        return job


class _Same:
    """Stands for an object in a shape: the same object only (functions, classes, callbacks...)."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.value is self.value

    def __hash__(self) -> int:
        return id(self.value)


def _frozen(value: Any) -> Any:
    """A hashable snapshot of ``value`` that equals another's only if they are equal type for type (1, 1.0
    and True differ; so do 0.0 and -0.0), all the way down; any other object stands for itself."""
    kind = type(value)
    if kind is dict:
        return (dict, tuple((_frozen(k), _frozen(v)) for k, v in value.items()))
    if kind is list or kind is tuple:
        return (kind, tuple(_frozen(item) for item in value))
    if kind is float:
        return (float, repr(value))
    if kind in (str, int, bool, type(None)):
        return (kind, value)
    if isinstance(value, (FunctionType, BuiltinFunctionType, MethodType, type)):
        return _Same(value)
    state = getattr(value, "__dict__", None)
    # An object with attributes (rq's Retry, Callback...) may be changed in place between two jobs.
    return (_Same(kind), _frozen(state)) if type(state) is dict else _Same(value)
