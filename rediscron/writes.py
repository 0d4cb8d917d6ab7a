"""Writing a job's definition: read its stored timing, place its next slot, save with compare-and-set.

Every write of a definition goes through here, whoever asks (``RedisCronJob.save()``,
``Registry.register()``, ``rqrcron apply``): the save script keeps what the scheduler owns,
and a write that raced a fire or another edit is read and sent again.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from redis import Redis
from redis.client import Pipeline

from . import store
from .clock import Clock, ServerClock, format_time, redis_time
from .errors import JobNotFound, RediscronError
from .fields import DEFINITION_FIELDS, SCHEDULE_FIELDS
from .record import StoredTiming, read_timings, timing_of
from .store import Conflict, IndexEntry, Saved, SaveStatus, Source

#: How often a write is sent again after the record changed between its read and its write.
MAX_WRITE_ATTEMPTS = 20


class Writable(Protocol):
    """What a write needs of a job (``RedisCronJob`` is one)."""

    id: str
    clock: Clock | None

    def _connection(self) -> Redis: ...

    def _definition_fields(self, validate: bool = True) -> dict[str, str]:
        """The definition's hash fields, validated."""

    def _entry_after(self, now: float, stored: StoredTiming | None, latest: datetime | None) -> IndexEntry:
        """Where the job is indexed if the write moves its next run (see ``RedisCronJob.first_slot()``)."""

    def _saved(self, saved: Saved, now: float, latest: datetime | None) -> SaveStatus:
        """Take in what the save reported (the revision, the next run...); return its status."""


def now_of(connection: Redis, clock: Clock | None) -> float:
    """The injected clock's time, else the Redis server's."""
    return clock() if clock is not None else redis_time(connection)


def read_timing(connection: Redis, job_id: str, clock: Clock | None) -> tuple[float, StoredTiming | None, str]:
    """Now, and the stored record's timing and revision, in one round trip."""
    now, [(stored, revision)] = read_timings(connection, [job_id], clock)
    if clock is None:
        _server_clocks.setdefault(connection, ServerClock()).note(now)
    return now, stored, revision


#: The server's clock as last read through each connection.
_server_clocks: weakref.WeakKeyDictionary[Redis, ServerClock] = weakref.WeakKeyDictionary()
#: How long (seconds) a reading of the server's clock stands in for it, to save a round trip.
CLOCK_READING_KEPT = 10.0


def estimated_now(connection: Redis, clock: Clock | None) -> float | None:
    """The injected clock's time, or the server's estimated from a recent reading; None if there is none."""
    if clock is not None:
        return clock()
    reading = _server_clocks.get(connection)
    return None if reading is None else reading.estimate(CLOCK_READING_KEPT)


def save_call(
    job: Writable,
    fields: dict[str, str],
    now: float,
    stored: StoredTiming | None,
    expected: str,
    *,
    enabled: str,
    conflict: Conflict,
    event: str = "updated",
    latest: datetime | None = None,
    source: Source = "hand",
) -> store.Save:
    """The save script's call for ``job``'s definition ``fields``, read ``stored`` at ``now``.

    ``source``: ``"file"`` when the definition comes from a schedules file (``rqrcron apply``).
    """
    return store.Save(
        job_id=job.id,
        fields=fields,
        removed=[f for f in DEFINITION_FIELDS if f not in fields],
        schedule_fields=SCHEDULE_FIELDS,
        now=now,
        entry=job._entry_after(now, stored, latest),
        enabled=enabled,
        conflict=conflict,
        expected=expected,
        source=source,
        event=event,
        latest=format_time(latest) if latest else "",
    )


def write(
    job: Writable,
    pipeline: Pipeline | None = None,
    *,
    enabled: str,
    conflict: Conflict = "replace",
    event: str = "updated",
    latest: datetime | None = None,
    source: Source = "hand",
    revision: str | None = None,
    validated: bool = False,
) -> SaveStatus:
    """Save ``job``'s definition; on a ``pipeline``, queue it (no compare-and-set: nothing can be read first).

    ``enabled``: "1", "0", or "" to keep the stored state. ``revision``: write only over the
    record at that revision (else ``SaveStatus.CHANGED``, nothing written); without it, a write
    that raced a fire is read and sent again. ``validated``: the job was just built, and checked
    then, by the caller (not checked again).
    """
    connection = job._connection()
    fields = job._definition_fields(validate=not validated)  # validated before anything is read
    if pipeline is not None:
        now = now_of(connection, job.clock)
        call = save_call(
            job, fields, now, None, "", enabled=enabled, conflict=conflict, event=event, latest=latest, source=source
        )
        store.queue_save(pipeline, call)
        return SaveStatus.WRITTEN
    # A job taken for new is written in one round trip, placed from an estimate of the server's clock
    # (read within seconds); if a record exists, the script says so and hands back its timing.
    found: tuple[float, StoredTiming | None, str] | None = None
    estimate = estimated_now(connection, job.clock) if revision is None and latest is None else None
    if estimate is not None:
        call = save_call(
            job, fields, estimate, None, "-", enabled=enabled, conflict=conflict, event=event, source=source
        )
        saved = store.save(connection, call)
        if saved.found is None:
            return job._saved(saved, estimate, None)
        found = (estimate, *timing_of(tuple(value or None for value in saved.found)))
    for _attempt in range(MAX_WRITE_ATTEMPTS):
        now, stored, expected = found if found is not None else read_timing(connection, job.id, job.clock)
        found = None
        if revision is not None and expected != revision:
            return SaveStatus.CHANGED
        call = save_call(
            job,
            fields,
            now,
            stored,
            expected,
            enabled=enabled,
            conflict=conflict,
            event=event,
            latest=latest,
            source=source,
        )
        status = job._saved(store.save(connection, call), now, latest)
        if status != SaveStatus.CHANGED or revision is not None:
            return status
        # A scheduler fired or someone edited between our read and write: read again.
    raise RediscronError(f"cron job {job.id!r}: the record kept changing during the write; try again")


def write_many(
    connection: Redis, batch: Sequence[tuple[Writable, str, dict[str, str]]], conflict: Conflict, clock: Clock | None
) -> list[SaveStatus]:
    """Save many validated definitions, each ``(job, enabled, fields)``, in one atomic round trip (plus one read).

    A job whose record changed between the read and the write (a fire) is written again alone.
    """
    now, stored = read_timings(connection, [job.id for job, _enabled, _fields in batch], clock)
    calls = [
        save_call(job, fields, now, timing, expected, enabled=enabled, conflict=conflict)
        for (job, enabled, fields), (timing, expected) in zip(batch, stored, strict=True)
    ]
    statuses = []
    for (job, enabled, _fields), saved in zip(batch, store.save_all(connection, calls), strict=True):
        status = job._saved(saved, now, None)
        if status == SaveStatus.CHANGED:
            status = write(job, None, enabled=enabled, conflict=conflict)
        statuses.append(status)
    return statuses


def set_enabled(job: Writable, enabled: bool, pipeline: Pipeline | None = None) -> int:
    """Enable or disable ``job``; its new revision (0 when queued on a ``pipeline``).

    Enabling indexes the job at its next slot from now (no catching up), and retries a
    quarantined job. [JobNotFound][rediscron.JobNotFound] if there is no such job.
    """
    connection = job._connection()
    now, stored, _revision = read_timing(connection, job.id, job.clock)
    entry = job._entry_after(now, stored, None)
    revision = store.set_enabled(pipeline if pipeline is not None else connection, job.id, enabled, now, entry)
    if pipeline is None and revision == 0:
        raise JobNotFound(job.id)
    return revision
