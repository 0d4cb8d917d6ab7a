"""Writing a job's definition: read its stored timing, place its next slot, save with compare-and-set.

Every write of a definition goes through here, whoever asks (``RedisCronJob.save()``,
``Registry.register()``, ``rqrcron apply``): the save script keeps what the scheduler owns,
and a write that raced a fire or another edit is read and sent again.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from redis import Redis
from redis.client import Pipeline

from . import store
from .clock import Clock, ServerClock, format_time, redis_time
from .errors import JobNotFound, RediscronError
from .fields import DEFINITION_FIELDS, SCHEDULE_FIELDS
from .record import StoredTiming, read_timings, timing_of
from .store import Conflict, IndexEntry, Saved, SaveStatus, Source

#: Most definitions sent in one packet by `write_many`.
STREAM_GROUP = 100
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


def fresh_now(connection: Redis, clock: Clock | None) -> float:
    """`estimated_now`, else the server's clock read now (and kept as the reading to estimate from)."""
    now = estimated_now(connection, clock)
    if now is None:
        now = redis_time(connection)
        _server_clocks.setdefault(connection, ServerClock()).note(now)
    return now


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
        found = (estimate, *_found_timing(saved.found))
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
    connection: Redis,
    batch: Sequence[tuple[Writable, str, dict[str, str]]],
    conflict: Conflict,
    clock: Clock | None,
    per_send: int = 1000,
) -> list[SaveStatus]:
    """Save many validated definitions, each ``(job, enabled, fields)``, each atomically, at most ``per_send``
    (and `STREAM_GROUP`) to a packet; the packets go out in a stream, each packed while the server runs
    the one before.

    Each job is taken for new first (one write, placed from a recent reading of the server's clock).
    Those that exist come back with their stored timing and are written again over the revision read;
    one whose record changed meanwhile (a fire) is written again alone.
    """
    now = fresh_now(connection, clock)
    # Small groups: Redis writes each while the next is made and packed (a group of a thousand would
    # leave one idle while the other works).
    per_send = min(per_send, STREAM_GROUP)
    taken_new = (
        save_call(job, fields, now, None, "-", enabled=enabled, conflict=conflict) for job, enabled, fields in batch
    )
    statuses: list[SaveStatus] = []
    existing: list[tuple[int, StoredTiming | None, str]] = []
    saved_new = store.save_all(connection, taken_new, per_send)
    for i, ((job, _enabled, _fields), saved) in enumerate(zip(batch, saved_new, strict=True)):
        statuses.append(job._saved(saved, now, None) if saved.found is None else SaveStatus.CHANGED)
        if saved.found is not None:
            existing.append((i, *_found_timing(saved.found)))
    over_read = [
        save_call(batch[i][0], batch[i][2], now, stored, expected, enabled=batch[i][1], conflict=conflict)
        for i, stored, expected in existing
    ]
    for (i, _stored, _expected), saved in zip(existing, store.save_all(connection, over_read, per_send), strict=True):
        job, enabled, _fields = batch[i]
        statuses[i] = job._saved(saved, now, None)
        if statuses[i] == SaveStatus.CHANGED:
            statuses[i] = write(job, None, enabled=enabled, conflict=conflict)
    return statuses


def _found_timing(found: tuple[Any, ...]) -> tuple[StoredTiming | None, str]:
    """The stored timing and revision the save script handed back for a job taken for new that exists."""
    return timing_of(tuple(value or None for value in found))


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
