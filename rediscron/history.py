"""A cron job's history (the RQ jobs it spawned, read field by field) and its stats."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis import Redis
from rq.utils import as_text

from . import keys
from .clock import from_epoch, parse_time
from .text import printable

#: How many RQ job ids each cron job's history keeps (memory stays bounded).
HISTORY_LENGTH = 20
#: RQ job states in which a run has not finished yet.
IN_PROGRESS = ("queued", "started", "deferred", "scheduled")


@dataclass(frozen=True)
class HistoryEntry:
    """One RQ job a cron job spawned."""

    rq_job_id: str
    #: The slot (epoch seconds) it was enqueued for.
    slot: int | None
    enqueued_at: datetime
    #: RQ's job status (``queued``, ``started``, ``finished``, ``failed``...), or ``expired``
    #: once RQ has dropped the job.
    status: str
    #: When a worker started and ended it, as RQ recorded (None until then, or once expired).
    started_at: datetime | None = None
    ended_at: datetime | None = None


def read_history(connection: Redis, ids: list[str], limit: int = HISTORY_LENGTH) -> dict[str, list[HistoryEntry]]:
    """The newest ``limit`` runs of each job in ``ids``, newest first, in two pipelined round trips.

    RQ's job hashes are read field by field (status and times), never with ``Job.fetch``,
    which would unpickle what Redis holds.
    """
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.zrange(keys.history(job_id), 0, max(0, limit - 1), desc=True, withscores=True)
        ranges = pipe.execute(raise_on_error=False)
    runs: dict[str, list[tuple[str, float]]] = {}
    for job_id, raw in zip(ids, ranges, strict=True):
        entries = []
        for member, score in raw if isinstance(raw, list) else []:
            try:
                when = float(score)
                from_epoch(when)  # a score no moment has (inf, 1e300) marks no run rediscron wrote
                entries.append((as_text(member), when))
            except (UnicodeDecodeError, ValueError, OverflowError, OSError):
                continue  # not an id rq or rediscron wrote
        runs[job_id] = entries
    with connection.pipeline(transaction=False) as pipe:
        for entries in runs.values():
            for rq_id, _ in entries:
                pipe.hmget(keys.rq_job(rq_id), "status", "started_at", "ended_at")
        fields = iter(pipe.execute(raise_on_error=False))
    history: dict[str, list[HistoryEntry]] = {}
    for job_id, entries in runs.items():
        history[job_id] = []
        for rq_id, score in entries:
            found = next(fields)
            status, started, ended = found if isinstance(found, list) else (None, None, None)
            history[job_id].append(
                HistoryEntry(
                    rq_id,
                    slot_of_rq_id(rq_id),
                    from_epoch(score),
                    _status_text(status),
                    _rq_time(started),
                    _rq_time(ended),
                )
            )
    return history


def slot_of_rq_id(rq_id: str) -> int | None:
    """The slot of a scheduled run's RQ job id (``cron-<hash>-<slot>``); None for a run by hand
    (``cron-<hash>-manual-<random>``, whose random part may be all digits) or an id not ours."""
    parts = rq_id.split("-")
    if len(parts) != 3 or parts[0] != "cron":
        return None
    tail = parts[2]
    return int(tail) if tail.isascii() and tail.isdigit() and len(tail) < 19 else None


def _status_text(raw: Any) -> str:
    """RQ's status field as text (``expired`` when the RQ job is gone); odd bytes are shown, not trusted."""
    if raw is None:
        return "expired"
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return printable(text[:20]) or "unknown"


def _rq_time(raw: Any) -> datetime | None:
    if not raw:
        return None
    try:
        return parse_time(as_text(raw))
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass(frozen=True)
class JobStats:
    """What a cron job has done: from its record and its history."""

    last_fire_time: datetime | None
    #: RQ status of the newest run (``finished``, ``failed``, ``queued``...), or None before the first.
    last_status: str | None
    #: Newest finished runs that failed in a row (runs still in progress are passed over).
    consecutive_failures: int
    #: Scheduled runs enqueued (triggered runs are not counted).
    runs: int
    #: Slots not run because of downtime (coalesced, skipped, misfired or over the catch-up limit).
    missed: int
    #: Slots skipped because the previous run was still in progress (``overlap="skip"``).
    overlap_skipped: int
    #: The latest records of slots not run, oldest first.
    drops: list[dict[str, Any]]


def consecutive_failures(history: list[HistoryEntry]) -> int:
    """Newest finished runs that failed in a row (runs still in progress are passed over)."""
    failures = 0
    for entry in history:
        if entry.status in IN_PROGRESS:
            continue
        if entry.status != "failed":
            break
        failures += 1
    return failures
