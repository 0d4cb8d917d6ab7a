"""The registry: the one place that reads and writes cron jobs in Redis, from a connection alone.

The CLI, ``rqrcron apply``, the scheduler's ``register()`` and every other surface work
through a ``Registry``; none of them needs a scheduler. Reads never write (a listing works
for a read-only user); writes are atomic scripts that notify running schedulers.

Example::

    registry = Registry(redis)
    registry.register(rebuild_metric, "metrics", id="metric:pm25", args=("pm25",), interval=300)
    registry.disable("metric:pm25")
    for job in registry.jobs():
        print(job.id, job.state())
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from redis import Redis
from rq.job import Job
from rq.utils import as_text

from . import audit, keys, store, writes
from .clock import Clock
from .cronjob import BuiltByShape, ByShape, CronDefinition
from .errors import CorruptJobError, EditConflict, InvalidJobError, JobNotFound, RediscronError
from .fields import CODE_OPTIONS, FIELDS
from .history import HISTORY_LENGTH, HistoryEntry, read_history
from .imports import DEFAULT_ALLOWED_IMPORTS, ImportAllowlist
from .job import RedisCronJob
from .options import labelled
from .store import Conflict

log = logging.getLogger("rediscron.registry")

#: What ``register()`` and each ``register_many()`` item take by name.
REGISTER_ARGUMENTS = frozenset({"func", "name", *FIELDS})


class Registry:
    """Cron jobs in Redis: register, edit, enable, disable, delete, trigger, fetch and list them.

    ``job_class`` is the class jobs are built and read as (a subclass of
    [RedisCronJob][rediscron.RedisCronJob]); ``clock`` replaces the Redis server's clock when
    placing next runs (tests); ``allow_import`` is where a triggered run's ``job_class``,
    ``queue_class`` and ``serializer`` may be imported from (rq's own by default, plus the
    classes this process registers jobs with).
    """

    def __init__(
        self,
        connection: Redis,
        *,
        job_class: type[RedisCronJob] = RedisCronJob,
        clock: Clock | None = None,
        allow_import: ImportAllowlist | Iterable[str] = DEFAULT_ALLOWED_IMPORTS,
    ) -> None:
        self.connection = connection
        self.job_class = job_class
        self.clock = clock
        self.allow_import = allow_import if isinstance(allow_import, ImportAllowlist) else ImportAllowlist(allow_import)

    # -- writing ----------------------------------------------------------------------------------

    def register(
        self,
        func: Callable[..., Any] | str,
        queue_name: str,
        *,
        enabled: bool | None = None,
        conflict: Conflict = "replace",
        **definition: Any,
    ) -> RedisCronJob:
        """Create or update one job (the arguments of ``RedisCronScheduler.register()``); the job as stored.

        ``enabled=None`` keeps the stored state (a new job is enabled). ``conflict`` says what
        to do when the id exists: ``"replace"`` its definition, ``"ignore"`` (the stored job is
        returned) or ``"raise"`` [InvalidJobError][rediscron.InvalidJobError].
        """
        job_id = definition.get("id") if isinstance(definition.get("id"), str) else None
        check_conflict(conflict, job_id or (definition.get("name") or None))
        check_enabled(enabled, job_id)
        job = self._build(func=func, queue_name=queue_name, enabled=True if enabled is None else enabled, **definition)
        # Checked as it was built; a subclass's own to_dict() still runs.
        as_built = type(job).to_dict is RedisCronJob.to_dict
        status = writes.write(job, enabled=_state(enabled), conflict=conflict, validated=as_built)
        if status == store.SaveStatus.EXISTS:
            raise InvalidJobError(job.id, "id", "a cron job with this id exists (conflict='raise')")
        if status == store.SaveStatus.IGNORED:
            return self.fetch(job.id)
        if log.isEnabledFor(logging.INFO):  # its schedule in words is not worked out for nothing
            log.info(
                "Registered cron job %r: %s on queue %s (%s)",
                job.id,
                job.func_name,
                queue_name,
                job.describe_schedule(),
            )
        return job

    def register_many(
        self, jobs: Iterable[Mapping[str, Any]], *, conflict: Conflict = "replace", batch_size: int = 1000
    ) -> list[RedisCronJob]:
        """Create or update many jobs: all validated first (all or nothing), then written ``batch_size`` to a
        round trip (each job atomically; a job that exists takes one more). Each item holds
        [register()][register]'s arguments by name.

        With ``conflict="raise"``, an id that exists refuses the whole call before anything is written.
        Returns the jobs as stored, in input order.
        """
        check_conflict(conflict, None)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive whole number, not {batch_size!r}")
        planned: list[tuple[RedisCronJob, str, dict[str, str]]] = []
        seen: set[str] = set()
        build = self._builder()
        for number, spec in enumerate(jobs, 1):
            if not isinstance(spec, Mapping):
                raise InvalidJobError(None, f"job #{number}", "must be a mapping of register() arguments")
            unknown = set(spec) - REGISTER_ARGUMENTS
            if unknown:
                where = spec.get("id") if isinstance(spec.get("id"), str) else f"#{number}"
                raise InvalidJobError(where, "arguments", f"unknown: {sorted(unknown)}")
            arguments = dict(spec)
            enabled = arguments.pop("enabled", None)
            check_enabled(enabled, arguments.get("id"))
            job = build({"enabled": True if enabled is None else enabled, **arguments})
            if job.id in seen:
                raise InvalidJobError(job.id, "id", "appears twice in the batch")
            seen.add(job.id)
            # Validated when built, before anything is written; the batch writes these very fields.
            planned.append((job, _state(enabled), job._definition_fields(validate=False)))
        if conflict == "raise" and planned:
            taken = [job.id for (job, _, _), there in zip(planned, self._exist(planned), strict=True) if there]
            if taken:
                raise InvalidJobError(
                    taken[0],
                    "id",
                    f"{len(taken)} job(s) exist already (conflict='raise'), e.g. {', '.join(taken[:5])}; "
                    "nothing was written",
                )
        statuses = writes.write_many(self.connection, planned, conflict, self.clock, batch_size)
        result = [
            job if status == store.SaveStatus.WRITTEN else self.fetch(job.id)
            for (job, _state_, _fields), status in zip(planned, statuses, strict=True)
        ]
        log.info("Registered %d cron jobs", len(result))
        return result

    def update(self, job_id: str, *, seen: str | None = None, **changes: Any) -> RedisCronJob:
        """Change some fields of a stored job (``interval=600``, ``args=[...]``...); the job as stored.

        Only updates: [JobNotFound][rediscron.JobNotFound] if the job is gone, and never brings
        it back. The rest of its definition, its enabled state and its next run (unless the
        schedule changed) are kept.

        ``seen``: the [digest()][digest] of the job as the caller last read it (an edit form). If
        its definition changed since, [EditConflict][rediscron.EditConflict] is raised and nothing is
        written; the check and the write are one compare-and-set, so no edit is lost to another.
        """
        unknown = set(changes) - (REGISTER_ARGUMENTS - {"id", "name", "enabled"})
        if unknown:
            raise InvalidJobError(job_id, "arguments", f"unknown or not changeable here: {sorted(unknown)}")
        for _attempt in range(writes.MAX_WRITE_ATTEMPTS):
            job = self.fetch(job_id)
            if seen is not None and digest(job) != seen:
                raise EditConflict(job_id)
            for name, value in changes.items():
                if name != "func":
                    setattr(job, name, value)
                elif isinstance(value, str):
                    job.func_name = value  # a new dotted path: checked where it imports
                else:
                    job.func = value  # a new function: its path is derived from it
            self._trust_code_of(job)
            status = writes.write(
                job, enabled="1" if job.enabled else "0", conflict="update", revision=str(job.revision)
            )
            if status == store.SaveStatus.MISSING:
                raise JobNotFound(job_id)
            if status != store.SaveStatus.CHANGED:
                return job
            # Fired or edited between the read and the write: read it again (and compare again).
        raise RediscronError(f"cron job {job_id!r}: the record kept changing during the write; try again")

    def digest(self, job: RedisCronJob) -> str:
        """A short fingerprint of ``job``'s definition (not of its timing): pass it to
        [update()][update] as ``seen`` to refuse an edit made over someone else's."""
        return digest(job)

    def enable(self, job_id: str) -> RedisCronJob:
        """Enable a job (it resumes at its next slot, without catching up; a quarantined job is tried again)."""
        job = self.fetch(job_id)
        job.enable()
        return job

    def disable(self, job_id: str) -> RedisCronJob:
        """Disable a job: once this returns, no scheduler enqueues a run of it until it is enabled."""
        job = self.fetch(job_id)
        job.disable()
        return job

    def delete(self, job_id: str) -> bool:
        """Delete a job, even one whose record cannot be read; whether it existed."""
        return store.delete(self.connection, job_id)

    def trigger(self, job_id: str) -> Job:
        """Enqueue one run of a job now, without moving its schedule; the RQ job (it appears in the history)."""
        return self.fetch(job_id).trigger(self.allow_import)

    def enable_quarantined(self) -> tuple[list[str], dict[str, str]]:
        """Enable every quarantined job: (ids enabled, ids not, with why). A record that still cannot be
        read stays quarantined, and is reported."""
        raw = cast(list[Any], self.connection.zrangebyscore(keys.schedule(), "+inf", "+inf"))
        ids, bad = store.decode_ids(raw)
        lifted: list[str] = []
        failed = {job_id: "the id is not UTF-8 text; remove it with `rqrcron rm`" for job_id in bad}
        for job_id in sorted(ids):
            try:
                self.enable(job_id)
            except CorruptJobError as exc:
                failed[job_id] = f"its record still cannot be read: {exc.message}"
            except JobNotFound:
                continue
            else:
                lifted.append(job_id)
        return lifted, failed

    def prune(self, ids: list[str]) -> int:
        """Drop those of ``ids`` whose record is gone from the index and the id set; how many."""
        pruned = store.prune(self.connection, ids)
        if pruned:
            log.info("Pruned %s stale index entries", pruned)
        return pruned

    def pause(self, reason: str = "", actor: str | None = None) -> None:
        """Stop every fire registry-wide, without touching any job's enabled state; once this returns, no
        scheduler enqueues a scheduled run until [resume()][resume]. Slots that come meanwhile wait, and
        after the resume each job's catch-up policy decides what runs (runs by hand still work)."""
        who = actor or audit.actor()
        record = json.dumps({"at": self._now(), "by": who, "reason": reason})
        entry = {**audit.entry_fields("paused", detail=reason), "actor": who}
        self._announce("paused", lambda pipe: pipe.set(keys.paused(), record), entry)
        log.info("Paused every fire (%s)", who)

    def resume(self) -> bool:
        """Let the schedulers fire again; whether the registry was paused."""
        was = bool(self.connection.exists(keys.paused()))
        if was:  # nothing to announce (nor to write) when it was not paused
            self._announce("resumed", lambda pipe: pipe.delete(keys.paused()), audit.entry_fields("resumed"))
        return was

    def paused(self) -> dict[str, Any] | None:
        """Who paused every fire, when (epoch seconds) and why, while it is paused; else None."""
        return read_pause(self.connection.get(keys.paused()))

    def _announce(self, event: str, change: Callable[[Any], Any], entry: dict[str, str]) -> None:
        with self.connection.pipeline(transaction=True) as pipe:
            change(pipe)
            pipe.incr(keys.last_update())
            pipe.publish(keys.events(), json.dumps({"event": event}))
            audit.append(pipe, entry)
            # The audit entry is best effort, as in the scripts: a key of another type there fails only it.
            replies = pipe.execute(raise_on_error=False)
        for reply in replies[:-1]:
            if isinstance(reply, Exception):
                raise reply

    def _now(self) -> float:
        return self.clock() if self.clock is not None else time.time()

    # -- reading ----------------------------------------------------------------------------------

    def select(self, labels: Mapping[str, str]) -> list[str]:
        """The ids of the jobs that have every one of ``labels``, sorted; read a page at a time, nothing
        imported (a record whose labels cannot be read has none)."""
        found: list[str] = []
        for part in store.batched_ids(store.SortedIds(self.connection), 1000):
            ids = [each.decode() for each in part]
            with self.connection.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hget(keys.job(job_id), "labels")
                replies = pipe.execute(raise_on_error=False)
            found += [job_id for job_id, raw in zip(ids, replies, strict=True) if labelled(_labels_of(raw), labels)]
        return found

    def fetch(self, job_id: str) -> RedisCronJob:
        """One job by id ([JobNotFound][rediscron.JobNotFound], [CorruptJobError][rediscron.CorruptJobError])."""
        job = self.job_class.fetch(job_id, self.connection)
        job.clock = self.clock
        return job

    def exists(self, job_id: str) -> bool:
        """Whether a job with this id is stored."""
        return bool(self.connection.exists(keys.job(job_id)))

    def ids(self) -> tuple[list[str], list[str]]:
        """Every registered id, sorted; and (escaped) the entries that are not UTF-8 text, which no job can have."""
        return store.all_ids(self.connection)

    def jobs(self) -> list[RedisCronJob]:
        """Every readable job, enabled or not, sorted by id ([invalid()][invalid] lists the others)."""
        return self.load(self.ids()[0])[0]

    def scheduled(self, limit: int | None = None) -> list[RedisCronJob]:
        """The enabled jobs in the index, soonest first (at most ``limit``); unreadable ones left out."""
        raw = self.connection.zrange(keys.schedule(), 0, -1 if limit is None else limit - 1)
        # An index entry that is not text is dropped by the scheduler when it comes due; it names no job.
        return self.load(store.decode_ids(cast(list[Any], raw))[0])[0]

    def invalid(self) -> dict[str, str]:
        """Stored jobs that cannot be read back or were quarantined, with the reason, by id."""
        ids, bad = self.ids()
        jobs, invalid, _missing = self.load(ids)
        invalid.update({job.id: job.last_error for job in jobs if job.last_error})
        invalid.update({job_id: "the id is not UTF-8 text" for job_id in bad})
        return invalid

    def load(
        self, ids: list[str], *, prune: bool = True, chunk: int = 1000
    ) -> tuple[list[RedisCronJob], dict[str, str], list[str]]:
        """Read many jobs in pipelined chunks: (readable jobs, unreadable ones with why, ids whose record is gone).

        ``prune``: drop the index entries of records that are gone (``prune=False`` only reads).
        """
        jobs, invalid, missing = load_jobs(self.connection, ids, chunk, self.job_class)
        for job in jobs:
            job.clock = self.clock
        if prune:
            self.prune(missing)
        return jobs, invalid, missing

    def history(self, ids: list[str], limit: int = HISTORY_LENGTH) -> dict[str, list[HistoryEntry]]:
        """The newest ``limit`` runs of each job in ``ids``, newest first (two pipelined round trips)."""
        return read_history(self.connection, ids, limit)

    # -- helpers ----------------------------------------------------------------------------------

    def _build(self, **arguments: Any) -> RedisCronJob:
        job = self.job_class(connection=self.connection, **arguments)
        job.clock = self.clock
        self._trust_code_of(job)
        return job

    def _builder(self) -> Callable[[Mapping[str, Any]], RedisCronJob]:
        """Builds jobs from arguments by name as `_build` does, checking in full only the first of each
        shape (`cronjob.BuiltByShape`), unless the job class builds its own way."""
        if self.job_class.__init__ is not CronDefinition.__init__:
            return lambda arguments: self._build(**arguments)
        return BuiltByShape(self._build)

    def _trust_code_of(self, job: RedisCronJob) -> None:
        """The classes this process registers a job with, this process may import when it reads the job back."""
        for option in CODE_OPTIONS:
            path = getattr(job, option)
            if path is not None and not self.allow_import.allows(path):
                self.allow_import.add(path)

    def _exist(self, planned: list[tuple[RedisCronJob, str, dict[str, str]]]) -> list[bool]:
        with self.connection.pipeline(transaction=False) as pipe:
            for job, _enabled, _fields in planned:
                pipe.exists(job.key)
            return [bool(there) for there in pipe.execute()]


def _labels_of(raw: Any) -> dict[str, str] | None:
    """A record's ``labels`` field as HGET gave it, read as a record's field is; None if absent or not
    what rediscron writes."""
    if not isinstance(raw, (bytes, str)):
        return None
    try:
        return cast(dict[str, str], FIELDS["labels"].decode(as_text(raw)))
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None


def read_pause(raw: Any) -> dict[str, Any] | None:
    """The pause record as stored (None: not paused); one that is not ours still reads as a pause."""
    if raw is None:
        return None
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        record = None
    return record if isinstance(record, dict) else {"at": None, "by": "?", "reason": "(unreadable pause record)"}


def digest(job: RedisCronJob) -> str:
    """A fingerprint of ``job``'s definition fields as stored (its timing and counters left out)."""
    fields = job._definition_fields(validate=False)
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def load_jobs(
    connection: Redis, ids: list[str], chunk: int = 1000, job_class: type[RedisCronJob] = RedisCronJob
) -> tuple[list[RedisCronJob], dict[str, str], list[str]]:
    """Read many jobs in pipelined chunks: (readable jobs, unreadable ones with the reason, ids whose hash is gone).

    Only reads: a listing works for a read-only user and never cleans up.
    """
    jobs: list[RedisCronJob] = []
    invalid: dict[str, str] = {}
    missing: list[str] = []
    by_shape = ByShape(job_class, connection)
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        with connection.pipeline(transaction=False) as pipe:
            for job_id in part:
                pipe.hgetall(keys.job(job_id))
            raws = pipe.execute(raise_on_error=False)
        for job_id, raw in zip(part, raws, strict=True):
            if isinstance(raw, Exception):
                invalid[job_id] = f"{keys.job(job_id)} cannot be read as a hash: {raw}"
            elif not raw:
                missing.append(job_id)
            else:
                try:
                    jobs.append(by_shape.restore(raw, job_id))
                except CorruptJobError as exc:
                    invalid[job_id] = exc.message
    return jobs, invalid, missing


def check_conflict(conflict: object, job_id: str | None) -> None:
    """Refuse a ``conflict`` other than "replace", "ignore" or "raise"."""
    if conflict not in ("replace", "ignore", "raise"):
        raise InvalidJobError(job_id, "conflict", f"must be 'replace', 'ignore' or 'raise', not {conflict!r}")


def check_enabled(enabled: object, job_id: str | None) -> None:
    """Refuse an ``enabled`` other than True, False or None."""
    if enabled is not None and not isinstance(enabled, bool):
        raise InvalidJobError(job_id, "enabled", f"must be True, False or None, not {enabled!r}")


def _state(enabled: bool | None) -> str:
    """``enabled`` as the save script takes it: "1", "0", or "" to keep the stored state."""
    return "" if enabled is None else ("1" if enabled else "0")
