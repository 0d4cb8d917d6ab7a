"""Turn due slots into RQ jobs: rq's own enqueue writes, run in one atomic, fenced script."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import Any

from redis import Redis
from rq.job import Job
from rq.queue import Queue

from . import catchup, keys, scripts
from .audit import AUDIT_LENGTH
from .catchup import Plan
from .clock import format_time, from_epoch
from .history import HISTORY_LENGTH
from .job import RedisCronJob
from .record import slot_of
from .template import FilledRun, Run, RunTemplate, Templates, build_run
from .template import record_enqueue as record_enqueue  # where callers and tests import it from


class Outcome(IntEnum):
    """What the fire script did with one slot (the numbers it returns; lua/fire.lua's header)."""

    #: The job changed since it was read (or its index entry moved): left for the next pass.
    STALE = 0
    ENQUEUED = 1
    #: Its RQ job existed already (a retry): only advanced.
    ALREADY_ENQUEUED = 2
    #: Found disabled: removed from the index.
    DISABLED = 3
    #: Only slots dropped by the catch-up policy: advanced.
    DROPPED = 4
    #: The previous run was still in progress (overlap="skip"): advanced.
    OVERLAP_SKIPPED = 5
    #: Redis refused one of rq's enqueue commands: nothing of it kept, not advanced.
    REFUSED = 6
    #: Not run: its runs failed ``max_consecutive_failures`` times in a row; the job is disabled.
    FAILED_OUT = 7


STALE, ENQUEUED, ALREADY_ENQUEUED, DISABLED, DROPPED, OVERLAP_SKIPPED, REFUSED, FAILED_OUT = tuple(Outcome)
#: How many not-run slot records each job keeps in its ``drop_log``.
DROP_LOG_LENGTH = 20
#: The fire script's reply while every fire is paused.
PAUSED_REPLY = 2
#: In a slot's script arguments, where rq's writes would be: the run is filled in from a template.
FILLED_IN = -2
#: How many recent fires (time and lag) the registry keeps for ``rqrcron status``.
FIRES_KEPT = 5000


@dataclass
class Fired:
    """What one fire script did: whether the lock held, each slot's outcome, and why Redis refused
    the enqueue of each REFUSED slot, in their order."""

    held: bool
    outcomes: list[Outcome]
    refusals: list[str]
    #: Every fire is paused registry-wide (`Registry.pause`): nothing was done.
    paused: bool = False


@dataclass(frozen=True, slots=True)
class Owner:
    """What firing a run and accounting for it read of its job: a run built ahead keeps this, not the job."""

    id: str
    queue_name: str
    max_runs: int | None
    #: Runs failed in a row as read, and the job's limit (`FAILED_OUT`'s report).
    failures: int
    max_failures: int | None

    @classmethod
    def of(cls, job: RedisCronJob) -> Owner:
        return cls(job.id, job.queue_name, job.max_runs, job.consecutive_failures, job.max_consecutive_failures)

    @property
    def key(self) -> str:
        """Its job's hash (made when asked for: a run built ahead does not hold it)."""
        return keys.job(self.id)

    @property
    def history(self) -> str:
        """Its job's history of runs."""
        return keys.history(self.id)


@dataclass(slots=True)
class Slot:
    """One due job, planned and ready to fire."""

    #: The job as read (None once `compact`: its ``owner`` is all a run built ahead keeps of it).
    job: RedisCronJob | None
    owner: Owner
    #: The slot the job is indexed at, and the index score read.
    slot: int
    score: str
    revision: bytes | str
    plan: Plan
    #: The index score of the next slot ('' when the job has ended).
    next_score: int | str
    #: The run of the slot (None when only dropped slots are due), and its RQ job when rq built it
    #: (not from a template).
    run: Run | FilledRun | None
    rq_job: Job | None
    #: Hash fields set whatever happens, when the slot runs, when it is skipped for overlap, and when
    #: the job is disabled for failing (the fire script adds ``latest_enqueue_time`` and ``revision``).
    always: dict[str, str]
    on_run: dict[str, str]
    on_overlap: dict[str, str]
    on_failed: dict[str, str]

    #: Until when (epoch seconds) the plan holds: at or after it, plan again at the real time.
    valid_until: float = math.inf
    #: What `compact` keeps of the script's arguments: all of them, or the fields the slot sets.
    _args: tuple[Any, ...] | None = None
    _fields: tuple[Any, ...] | None = None
    #: Whether a slot `compact` emptied the field lists of skips a slot while a run is in progress.
    _skips_overlap: bool = False

    @property
    def next_slot(self) -> int | None:
        return self.plan.next_slot

    def script_args(self, templates: dict[RunTemplate, int] | None = None) -> tuple[Any, ...]:
        """This slot's part of the fire script's arguments. ``templates``: those its script sends, by number;
        a run filled in from one is sent as what fills it in (its template added if it is not there)."""
        if self._args is not None:
            return self._args
        header = self._make_header()
        if self.run is None:
            return (*header, 0, 0)
        if templates is not None and isinstance(self.run, FilledRun):
            number = templates.setdefault(self.run.template, len(templates) + 1)
            return (*header, FILLED_IN, number, *self.run.filled_in())
        stamp_at, ncmd, flat = self.run.laid_out()
        return (*header, stamp_at, ncmd, *flat)

    def _make_header(self) -> tuple[Any, ...]:
        """The arguments before the run's writes: the job, the slot, the plan and the fields it sets."""
        owner, run, plan = self.owner, self.run, self.plan
        rq_key = run.rq_key if run is not None else ""
        rq_id = run.rq_id if run is not None else ""
        prefix = rq_key[: len(rq_key) - len(rq_id)] if self.on_overlap or self._skips_overlap else ""
        return (
            owner.id,
            owner.key,
            self.revision,
            self.score,
            self.next_score,
            rq_key,
            rq_id,
            owner.history,
            prefix,
            "1" if plan.final else "0",
            "" if plan.run is None else plan.run,
            0 if plan.drop is None else plan.drop.slots,
            *(self._fields if self._fields is not None else self._field_lists()),
        )

    def _field_lists(self) -> tuple[Any, ...]:
        """The four field lists of the script's arguments (count, then name/value pairs)."""
        return (*_pairs(self.always), *_pairs(self.on_run), *_pairs(self.on_overlap), *_pairs(self.on_failed))

    def compact(self, shared: dict[tuple[Any, ...], tuple[Any, ...]] | None = None) -> None:
        """Keep only what the fire and its accounting need (a run built ahead waits in memory): the fields
        the slot sets, laid out, and the run (a template's, filled in at the fire); the rest of the
        script's arguments is made at the fire from what the slot holds anyway. A run rq built keeps its
        writes laid out instead of rq's job and commands.

        ``shared``: field lists kept by other slots, taken instead of an equal one (the jobs of a slot
        often set the same fields to the same values).
        """
        if isinstance(self.run, Run):
            self._args = self.script_args()
            self.run = Run(self.run.rq_id, self.run.rq_key, _NOTHING_RUN)
        else:
            fields = self._field_lists()
            self._fields = fields if shared is None else shared.setdefault(fields, fields)
            self._skips_overlap = bool(self.on_overlap)
        self.rq_job = self.job = None
        self.always = self.on_run = self.on_overlap = self.on_failed = _NOTHING


#: The commands of a compacted run rq built (laid out in its script's arguments): never written.
_NOTHING_RUN: list[list[Any]] = []
#: The field lists of a compacted slot (they are in its script's arguments): one empty dict, never written.
_NOTHING: dict[str, str] = {}


def indexed_slot(job: RedisCronJob, score: str) -> int:
    """The slot behind an index score: ``next_enqueue_time`` when its jitter explains the score."""
    floor = math.floor(float(score))
    stored = slot_of(job.next_enqueue_time)
    if stored is not None and job.score(stored) == floor:
        return stored
    return floor


def prepare(
    connection: Redis,
    queue: Queue,
    job: RedisCronJob,
    score: str,
    revision: bytes | str,
    now: float,
    templates: Templates | None = None,
) -> Slot:
    """Plan the due job indexed at ``score`` and build the run of the slot it runs, if any: through
    ``templates`` for a job read by the scheduler (`Dispatch.read_due`), else by rq.

    Everything that can fail for one job (a slot out of range, rq refusing an option, a
    callback that does not import) fails here, so the caller can quarantine that job alone.
    """
    slot = indexed_slot(job, score)
    planned = catchup.plan(job, slot, now)
    rq_job: Job | None = None
    run: Run | FilledRun | None = None
    key = getattr(job, "_definition_key", None)
    if planned.run is not None and templates is not None and key is not None:
        rq_job, run = templates.build(connection, queue, job, key, planned.run, _stamp(now))
    elif planned.run is not None:
        rq_job, run = build_run(connection, queue, job, planned.run)
    next_slot = planned.next_slot
    always: dict[str, str] = {}
    if next_slot is not None:
        always["next_enqueue_time"] = _stamp(next_slot)
    log = list(job.drop_log)
    if planned.drop is not None:
        log = ([*log, planned.drop.record(now)])[-DROP_LOG_LENGTH:]
        always["missed_count"] = str(job.missed_count + planned.drop.slots)
        always["drop_log"] = _json(log)
    on_run = {"run_count": str(job.run_count + 1)}
    on_overlap: dict[str, str] = {}
    if run is not None and planned.run is not None and job.overlap == "skip":
        skipped = catchup.Drop(
            planned.run, planned.run, 1, True, "overlap: the previous run was still queued or running"
        )
        on_overlap = {
            "overlap_count": str(job.overlap_count + 1),
            "drop_log": _json(([*log, skipped.record(now)])[-DROP_LOG_LENGTH:]),
        }
    on_failed: dict[str, str] = {}
    if run is not None and planned.run is not None and job.max_consecutive_failures is not None:
        failures = job.consecutive_failures + 1
        why = f"disabled: {failures} runs in a row failed (max_consecutive_failures={job.max_consecutive_failures})"
        disabled = catchup.Drop(planned.run, planned.run, 1, True, why)
        on_failed = {"drop_log": _json(([*log, disabled.record(now)])[-DROP_LOG_LENGTH:])}
    next_score = "" if next_slot is None else job.score(next_slot)
    return Slot(
        job,
        Owner.of(job),
        slot,
        score,
        revision,
        planned,
        next_score,
        run,
        rq_job,
        always,
        on_run,
        on_overlap,
        on_failed,
        _valid_until(job, planned, next_score, now),
    )


@lru_cache(maxsize=64)
def _stamp(moment: float) -> str:
    """RQ's time format of an epoch time: the runs of one pass share their times (and often their next slot)."""
    return format_time(from_epoch(moment))


def _valid_until(job: RedisCronJob, planned: Plan, next_score: int | str, now: float) -> float:
    """Until when the plan made at ``now`` stays what `catchup.plan()` would say.

    It changes once the next slot is due too, or once the slot run is later than the job's
    misfire grace time (or than ON_TIME, for ``catchup="skip"``).
    """
    if planned.run is None or planned.drop is not None:
        return now
    grace = math.inf if job.misfire_grace_time is None else float(job.misfire_grace_time)
    tolerance = min(grace, catchup.ON_TIME) if job.catchup == "skip" else grace
    return min(math.inf if next_score == "" else float(next_score), job.score(planned.run) + tolerance)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _pairs(fields: dict[str, str]) -> list[str]:
    return [len(fields), *[x for pair in fields.items() for x in pair]]  # type: ignore[list-item]


def fire_batches(
    connection: Redis,
    lock_value: str,
    batches: Iterable[list[Slot]],
    now: float,
    per_send: int = 5,
    wait: tuple[int, int] | None = None,
) -> tuple[list[tuple[list[Slot], Fired]], int | None]:
    """Run each batch of planned slots atomically (its own fire script) if ``lock_value`` still holds
    the lock, all in one round trip.

    A slot whose job changed since it was read is STALE and left for the next pass; one
    whose RQ job already exists is only advanced; one whose enqueue Redis refused (a key of
    another type where rq writes) is REFUSED, with nothing of it kept.

    ``batches`` is taken as the scripts are sent (``per_send`` at a time): a generator that
    prepares each batch when asked has it prepared while Redis runs the scripts sent before.
    ``wait``: (replicas, ms) to ``WAIT`` for after the scripts, on their connection; how many
    replicas acknowledged them comes second (None without ``wait``).
    """
    fire_keys = _fire_keys()
    sent: list[list[Slot]] = []

    def calls() -> Iterator[tuple[list[str], list[Any]]]:
        for batch in batches:
            sent.append(batch)
            yield fire_keys, _fire_args(lock_value, batch, now)

    then = ("WAIT", *wait) if wait is not None else None
    results = scripts.run_streamed("fire", connection, calls(), per_send, then)
    acked = int(results.pop()) if then is not None else None
    return [(batch, _outcome(result, len(batch))) for result, batch in zip(results, sent, strict=True)], acked


def _fire_keys() -> list[str]:
    return [
        keys.lock(),
        keys.schedule(),
        keys.revision(),
        keys.fires(),
        keys.stats(),
        keys.failing(),
        keys.paused(),
        keys.audit(),
    ]


def _outcome(result: list[Any], slots: int) -> Fired:
    if not int(result[0]):
        return Fired(False, [], [])
    if int(result[0]) == PAUSED_REPLY:
        return Fired(True, [], [], paused=True)
    return Fired(
        True,
        [Outcome(int(x)) for x in result[1 : slots + 1]],
        [x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in result[slots + 1 :]],
    )


def _fire_args(lock_value: str, slots: list[Slot], now: float) -> list[Any]:
    templates: dict[RunTemplate, int] = {}
    runs: list[Any] = []
    for s in slots:
        runs += s.script_args(templates)
    args: list[Any] = [lock_value, len(slots), repr(now), HISTORY_LENGTH, FIRES_KEPT, format_time(from_epoch(now))]
    args += [keys.events(), AUDIT_LENGTH, len(templates)]
    for template in templates:
        args += template.script_part()
    return args + runs
