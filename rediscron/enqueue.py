"""Turn due slots into RQ jobs: rq's own enqueue writes, run in one atomic, fenced script."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from redis import Redis
from rq.job import Job
from rq.queue import Queue

from . import keys, scripts
from .clock import format_time, from_epoch
from .job import HISTORY_LENGTH, RedisCronJob

#: Per-slot outcome of :func:`fire`.
STALE, ENQUEUED, ALREADY_ENQUEUED = 0, 1, 2


@dataclass
class Slot:
    """One scheduled time of one job, ready to fire."""

    job: RedisCronJob
    slot: int
    slot_time: str
    score: str
    revision: bytes | str
    next_slot: int | None
    next_time: str
    rq_job: Job
    commands: list[list[bytes]]


def record_enqueue(connection: Redis, queue: Queue, rq_job: Job) -> list[list[bytes]]:
    """The Redis commands rq's ``Queue.enqueue_job`` issues for ``rq_job``, without running them.

    Replaying rq's own writes keeps the RQ job format exactly rq's, whatever its version,
    while the replay itself happens inside the fenced fire script.
    """
    pipe = connection.pipeline(transaction=False)
    try:
        queue.enqueue_job(rq_job, pipeline=pipe)
        encoder = connection.get_encoder()
        return [[encoder.encode(arg) for arg in args] for args, _options in pipe.command_stack]  # type: ignore[no-untyped-call]
    finally:
        pipe.reset()


def prepare(connection: Redis, queue: Queue, job: RedisCronJob, score: str, revision: bytes | str,
            now: float) -> Slot:
    """Build the RQ job of the slot indexed at ``score`` and compute the slot after it.

    Everything that can fail for one job (a slot out of range, rq refusing an option)
    fails here, so the caller can quarantine that job alone.
    """
    slot = math.floor(float(score))
    slot_time = format_time(from_epoch(slot))
    next_slot = job.schedule.next_after_fire(slot, now)
    rq_job = job.build_rq_job(queue, slot)
    return Slot(job, slot, slot_time, score, revision, next_slot, format_time(from_epoch(next_slot)), rq_job,
                record_enqueue(connection, queue, rq_job))


def fire(connection: Redis, lock_value: str, slots: list[Slot], now: float) -> tuple[bool, list[int]]:
    """Enqueue ``slots`` atomically if ``lock_value`` still holds the lock.

    Returns (lock held, per-slot outcome). A slot whose job changed since it was read
    is STALE and left for the next pass; one whose RQ job already exists is only advanced.
    """
    latest = format_time(from_epoch(now))
    args: list[Any] = [lock_value, len(slots), repr(now), HISTORY_LENGTH]
    for s in slots:
        args += [
            s.job.id, s.job.key, s.revision, s.score,
            "" if s.next_slot is None else s.next_slot,
            s.next_time,
            latest, s.rq_job.key, s.rq_job.id, keys.history(s.job.id), len(s.commands),
        ]
        for command in s.commands:
            args.append(len(command))
            args.extend(command)
    result = scripts.run("fire", connection, [keys.lock(), keys.schedule(), keys.revision()], args)
    if not int(result[0]):
        return False, []
    return True, [int(x) for x in result[1:]]
