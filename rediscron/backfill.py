"""Backfill: the slots of a past range enqueued by hand, each at most once, the schedule untouched.

One role of `RedisCronJob` (whose ``backfill()`` calls `backfill_slots`). A slot's RQ job id is fixed
(`runs.rq_job_id`), so a slot is enqueued only if no RQ job of that id exists, checked and
written in one transaction: a backfill run twice, or beside a scheduler firing the same slot,
enqueues it once. The job's own timing (next slot, latest run, run count) is never written.

Which slots: those of the job's schedule within the range (within its ``start_time`` and
``end_time`` too). A slot before the job was created never had a scheduler to run it. From its
creation on, the scheduler may have run a slot whose RQ job has since expired (a finished job
is kept for ``result_ttl``), which would look the same as one never run: such a slot is left
alone unless the job's drop log records it as not run, or the caller says ``scheduled=True``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from redis import Redis, WatchError
from redis.exceptions import ResponseError
from rq.queue import Queue

from . import keys
from .clock import from_epoch, parse_time, to_epoch
from .errors import InvalidJobError
from .history import HISTORY_LENGTH
from .record import slot_of
from .runs import HISTORY_COMMANDS, RunSource, build_rq_job, enqueued, queue_recorded, rq_job_id
from .schedule import IntervalSchedule, Schedule

#: Most slots one backfill takes unless told more (``max_slots``): a typo in a year must not queue a million runs.
BACKFILL_LIMIT = 1_000

#: What a backfill did (or, dry, would do) with each slot.
ENQUEUED = "enqueued"
WOULD_ENQUEUE = "would enqueue"
ALREADY_ENQUEUED = "already enqueued"
MAY_HAVE_RUN = "may have run"


@dataclass(frozen=True)
class BackfillSlot:
    """One slot of the range: when (UTC), its RQ job's id, and what became of it."""

    slot: datetime
    rq_job_id: str
    outcome: str


@dataclass(frozen=True)
class Backfill:
    """What a backfill of one job did: each slot of the range, in order."""

    job_id: str
    start: datetime
    end: datetime
    dry_run: bool
    slots: list[BackfillSlot] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        """How many slots had ``outcome`` (`ENQUEUED`, `WOULD_ENQUEUE`, `ALREADY_ENQUEUED`, `MAY_HAVE_RUN`)."""
        return sum(1 for s in self.slots if s.outcome == outcome)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.job_id,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "dry_run": self.dry_run,
            "slots": [{"slot": s.slot.isoformat(), "rq_job_id": s.rq_job_id, "outcome": s.outcome} for s in self.slots],
        }


class BackfillSource(RunSource, Protocol):
    """What a backfill reads of a job, besides what building its runs reads (`RedisCronJob` is one)."""

    @property
    def schedule(self) -> Schedule: ...

    start_time: datetime | None
    end_time: datetime | None
    created_at: datetime | None
    next_enqueue_time: datetime | None
    latest_enqueue_time: datetime | None
    drop_log: list[dict[str, Any]]


def slots_between(job: BackfillSource, start: int, end: int, anchor: int | None = None) -> Iterator[int]:
    """The job's slots from ``start`` to ``end`` (epoch seconds, both included), in order; an interval
    job's are counted from ``anchor``, a slot of its rhythm (default: its next slot, else its creation)."""
    if job.start_time is not None:
        start = max(start, math.ceil(to_epoch(job.start_time)))
    if job.end_time is not None:
        end = min(end, math.floor(to_epoch(job.end_time)))
    schedule = job.schedule
    if isinstance(schedule, IntervalSchedule):
        # The rhythm, counted back from a slot the job has (an interval job's slots are anchor + k * interval).
        if anchor is None:
            anchor = next((math.floor(to_epoch(t)) for t in (job.next_enqueue_time, job.created_at) if t), start)
        slot = anchor + math.ceil((start - anchor) / schedule.seconds) * schedule.seconds
        while slot <= end:
            yield slot
            slot += schedule.seconds
        return
    slot = schedule.next_after(start - 1)
    while slot <= end:
        yield slot
        slot = schedule.next_after(slot)


def _anchor(job: BackfillSource, connection: Redis) -> int | None:
    """A slot of an interval job's rhythm: its next slot, else the slot of its newest scheduled run
    (from its history: ``latest_enqueue_time`` is when a run was enqueued, often after its slot)."""
    if job.next_enqueue_time is not None:
        return math.floor(to_epoch(job.next_enqueue_time))
    try:
        newest = connection.zrevrange(keys.history(job.id), 0, HISTORY_LENGTH)
    except ResponseError:
        return None
    for rq_id in newest:
        suffix = rq_id.rsplit(b"-", 1)[-1] if isinstance(rq_id, bytes) else str(rq_id).rsplit("-", 1)[-1]
        if suffix.isdigit():
            return int(suffix)
    return None


def _recorded_not_run(job: BackfillSource, slot: int) -> bool:
    """Whether the job's drop log records ``slot`` as not run (missed, skipped): its entries'
    ``from``/``to`` (RQ times; `catchup.Drop.record`); an entry that does not read so is ignored."""
    for entry in job.drop_log:
        try:
            first, last = slot_of(parse_time(entry["from"])), slot_of(parse_time(entry["to"]))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        if first is not None and last is not None and first <= slot <= last:
            return True
    return False


def backfill_slots(
    job: BackfillSource,
    connection: Redis,
    queue: Queue,
    start: datetime,
    end: datetime,
    *,
    max_slots: int = BACKFILL_LIMIT,
    scheduled: bool = False,
    dry_run: bool = False,
) -> Backfill:
    """Enqueue the job's slots from ``start`` to ``end`` (see the module's docstring); ``dry_run``: say
    what would be enqueued, enqueue nothing."""
    for value, name in ((start, "from"), (end, "to")):
        if not isinstance(value, datetime):
            raise InvalidJobError(job.id, name, f"must be a datetime, not {value!r}")
    if isinstance(max_slots, bool) or not isinstance(max_slots, int) or max_slots < 1:
        raise InvalidJobError(job.id, "max_slots", f"must be a whole number >= 1, not {max_slots!r}")
    for value, name in ((start, "from"), (end, "to")):
        if not 1970 <= value.year <= 9000:
            raise InvalidJobError(job.id, name, f"must be between the years 1970 and 9000, not {value.isoformat()}")
    if to_epoch(end) < to_epoch(start):
        raise InvalidJobError(job.id, "to", f"{end.isoformat()} is before from {start.isoformat()}")
    first, last = math.ceil(to_epoch(start)), math.floor(to_epoch(end))
    seconds, _micro = connection.time()
    if last > int(seconds):
        raise InvalidJobError(
            job.id, "to", f"{end.isoformat()} is in the future; backfill takes past slots (the scheduler runs the rest)"
        )
    slots: list[int] = []
    for slot in slots_between(job, first, last, _anchor(job, connection)):
        if len(slots) == max_slots:
            raise InvalidJobError(
                job.id,
                "from/to",
                f"the range holds more than {max_slots:,} slots; narrow it, or pass a larger max_slots (--max N)",
            )
        slots.append(slot)
    # A record without created_at (written by hand) may have run any slot.
    created = math.floor(to_epoch(job.created_at)) if job.created_at is not None else -math.inf
    done = _backfilled(connection, job.id)
    report = Backfill(job.id, from_epoch(first), from_epoch(last), dry_run)
    for slot in slots:
        rq_id = rq_job_id(job.id, slot)
        if slot >= created and not scheduled and not _recorded_not_run(job, slot):
            outcome = MAY_HAVE_RUN
        elif slot in done or connection.exists(keys.rq_job(rq_id)):
            outcome = ALREADY_ENQUEUED
        elif dry_run:
            outcome = WOULD_ENQUEUE
        else:
            outcome = ENQUEUED if _enqueue_if_absent(job, connection, queue, slot) else ALREADY_ENQUEUED
        report.slots.append(BackfillSlot(from_epoch(slot), rq_id, outcome))
    return report


def _enqueue_if_absent(job: RunSource, connection: Redis, queue: Queue, slot: int) -> bool:
    """Enqueue the run of ``slot`` unless its RQ job exists, in one transaction; whether it was enqueued."""
    rq_job = build_rq_job(job, queue, slot)
    rq_job.meta["rediscron_backfill"] = True
    done = keys.backfilled(job.id)
    with connection.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(rq_job.key, done)  # type: ignore[no-untyped-call]
                if pipe.exists(rq_job.key) or slot in _members(pipe, done):
                    return False
                pipe.multi()
                queue_recorded(pipe, queue, job, rq_job)
                pipe.sadd(done, slot)
                replies = pipe.execute(raise_on_error=False)
            except WatchError:
                continue  # something wrote its RQ job, or backfilled the slot, meanwhile: look again
            # rq's own writes must have worked; the bookkeeping after them (a key of another type
            # there) must not turn an enqueued run into an error, as in the fire script.
            enqueued(replies, HISTORY_COMMANDS + 1)
            return True


def _backfilled(connection: Redis, job_id: str) -> set[int]:
    """The slots of ``job_id`` a backfill has enqueued (none if the key is not ours)."""
    return _members(connection, keys.backfilled(job_id))


def _members(client: Any, key: str) -> set[int]:
    try:
        raw = client.smembers(key)
    except ResponseError:  # a key of another type there
        return set()
    return {int(x) for x in raw if x.isdigit()}
