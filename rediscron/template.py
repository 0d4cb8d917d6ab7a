"""A job's runs from one template: rq's enqueue writes captured once per definition, filled in per run.

rq's writes for a run of a cron job are the same for every run but for the RQ job id (in its key
and its queue entry), its times (``created_at``, ``enqueued_at``) and the slot in its ``meta``.
`RunTemplate.capture` records them with rq itself, so the format stays rq's, whatever its version,
job class or serializer; `RunTemplate.run` fills in those few values, in microseconds instead of
rq's tens. A capture proves itself before it is used: a second run captured with rq must equal the
template filled in for it, field for field and byte for byte; a job whose writes vary in any other
way gets no template, and its runs are built by rq each time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis import Redis
from rq.job import Job
from rq.queue import Queue
from rq.utils import utcformat

from .runs import RunSource, build_rq_job

log = logging.getLogger("rediscron.template")

#: Two slots to capture a template with (any two slots do; these read well in a debugger: 2001-09-09).
CAPTURE_SLOTS = (1_000_000_000, 1_000_000_001)
#: Argument types redis-py sends without complaint (it refuses bool and None); the rest are checked.
_SENT_AS_IS = frozenset({bytes, str, int, float})


@dataclass(frozen=True)
class Run:
    """One run ready for the fire script: its RQ job's id and key, and rq's writes for it.

    A run filled in from a template carries its writes laid out as the fire script takes them
    (``flat``: each command's length, then its arguments; ``ncmd`` commands; its ``enqueued_at``
    value at ``stamp_at``, counted from the command count) instead of ``commands``.
    """

    rq_id: str
    rq_key: str
    commands: list[list[Any]]
    flat: tuple[Any, ...] | None = None
    ncmd: int = 0
    stamp_at: int = 0


def record_enqueue(connection: Redis, queue: Queue, rq_job: Job, at_front: bool = False) -> list[list[Any]]:
    """The Redis commands rq's ``Queue.enqueue_job`` issues for ``rq_job``, without running them.

    Replaying rq's own writes keeps the RQ job format exactly rq's, whatever its version,
    while the replay itself happens inside the fenced fire script. The arguments are
    checked here, so a value Redis cannot take (a custom job class writing None, say) fails
    this job alone, not the pipelined fire of every job sharing its slot; redis-py encodes
    them once, when it sends the script.
    """
    pipe = connection.pipeline(transaction=False)
    try:
        queue.enqueue_job(rq_job, pipeline=pipe, at_front=at_front)
        commands = [list(args) for args, _options in pipe.command_stack]
    finally:
        pipe.reset()
    encoder = connection.get_encoder()
    for command in commands:
        for arg in command:
            if type(arg) not in _SENT_AS_IS:
                encoder.encode(arg)  # type: ignore[no-untyped-call] # raises DataError for what Redis cannot take
    return commands


def build_run(connection: Redis, queue: Queue, job: RunSource, slot: int) -> tuple[Job, Run]:
    """One run built by rq: its RQ job, and rq's writes for it."""
    rq_job = build_rq_job(job, queue, slot)
    commands = record_enqueue(connection, queue, rq_job, job.at_front)
    return rq_job, Run(rq_job.id, rq_job.key, commands)


class RunTemplate:
    """rq's writes for the runs of one definition, with the places that vary from run to run."""

    def __init__(
        self,
        commands: list[list[Any]],
        rq_id: str,
        ids: list[tuple[int, int]],
        times: list[tuple[int, int, int]],
        meta: tuple[int, int, dict[str, Any], Any] | None,
        key_prefix: str,
    ) -> None:
        self._commands = commands
        self._rq_id = rq_id
        #: (command, argument) of each text holding the RQ job id.
        self._ids = ids
        #: (command, argument, 0 for created_at / 1 for enqueued_at) of each time.
        self._times = times
        #: (command, argument, the meta dict, the serializer) of the meta field, if any.
        self._meta = meta
        self._key_prefix = key_prefix
        self._lay_out()

    def _lay_out(self) -> None:
        """The commands as the fire script takes them (`lay_out`), and where in that layout the values a
        run fills in are."""
        self._stamp_at, self._ncmd, self._flat, starts = _laid_out(self._commands, self._key_prefix + self._rq_id)

        def at(c: int, a: int) -> int | None:
            return None if c not in starts else starts[c] + a

        self._flat_ids = [i for c, a in self._ids if (i := at(c, a)) is not None]
        self._flat_times = [(i, which) for c, a, which in self._times if (i := at(c, a)) is not None]
        meta = self._meta
        meta_at = at(meta[0], meta[1]) if meta else None
        self._flat_meta = (meta_at, meta[2], meta[3]) if meta and meta_at is not None else None

    @classmethod
    def capture(cls, connection: Redis, queue: Queue, job: RunSource) -> RunTemplate | None:
        """A template from two runs built by rq, or None if this job's writes vary in other ways."""
        first = build_run(connection, queue, job, CAPTURE_SLOTS[0])
        return cls.verified(first, build_run(connection, queue, job, CAPTURE_SLOTS[1]))

    @classmethod
    def verified(cls, first: tuple[Job, Run], second: tuple[Job, Run]) -> RunTemplate | None:
        """A template from the first run, if filling it in for the second gives exactly the second."""
        template = cls._from(*first)
        stamps = _stamps(second[0])
        slot = second[0].meta.get("rediscron_slot")
        if template is None or stamps is None or not isinstance(slot, int):
            return None
        if template.run(slot, stamps).commands != second[1].commands:
            log.debug("%s: runs differ in more than id, times and slot; each is built by rq", second[1].rq_id)
            return None
        return template

    @classmethod
    def _from(cls, rq_job: Job, run: Run) -> RunTemplate | None:
        stamps = _stamps(rq_job)
        if stamps is None or not run.rq_key.endswith(run.rq_id):
            return None
        meta_text: Any = rq_job.serializer.dumps(rq_job.meta) if rq_job.meta else None
        rq_id_bytes = run.rq_id.encode()
        ids: list[tuple[int, int]] = []
        times: list[tuple[int, int, int]] = []
        meta: tuple[int, int, dict[str, Any], Any] | None = None
        for c, command in enumerate(run.commands):
            for a, arg in enumerate(command):
                if a > 0 and command[a - 1] == "meta" and arg == meta_text and meta is None:
                    meta = (c, a, dict(rq_job.meta), rq_job.serializer)
                elif type(arg) is str and run.rq_id in arg:
                    ids.append((c, a))
                elif type(arg) is str and arg in stamps:
                    times.append((c, a, stamps.index(arg)))
                elif type(arg) is bytes and rq_id_bytes in arg:
                    return None  # the id inside serialized data: not something to patch
        return cls(run.commands, run.rq_id, ids, times, meta, run.rq_key[: len(run.rq_key) - len(run.rq_id)])

    def run(self, slot: int, stamps: tuple[str, str]) -> Run:
        """The run of ``slot``: the template with its RQ job id, its times (``created_at``,
        ``enqueued_at``, as rq writes them) and its slot in ``meta`` filled in."""
        rq_id = f"{self._rq_id.rsplit('-', 1)[0]}-{slot}"
        commands = [list(command) for command in self._commands]
        for c, a in self._ids:
            commands[c][a] = commands[c][a].replace(self._rq_id, rq_id)
        for c, a, which in self._times:
            commands[c][a] = stamps[which]
        if self._meta is not None:
            c, a, meta, serializer = self._meta
            commands[c][a] = serializer.dumps({**meta, "rediscron_slot": slot})
        return Run(rq_id, self._key_prefix + rq_id, commands)

    def fill(self, slot: int, stamps: tuple[str, str]) -> Run:
        """`run()`, laid out as the fire script takes it (`Run.flat`): one list copied and patched."""
        rq_id = f"{self._rq_id.rsplit('-', 1)[0]}-{slot}"
        flat = list(self._flat)
        for i in self._flat_ids:
            flat[i] = flat[i].replace(self._rq_id, rq_id)
        for i, which in self._flat_times:
            flat[i] = stamps[which]
        if self._flat_meta is not None:
            i, meta, serializer = self._flat_meta
            flat[i] = serializer.dumps({**meta, "rediscron_slot": slot})
        return Run(rq_id, self._key_prefix + rq_id, [], tuple(flat), self._ncmd, self._stamp_at)


def lay_out(commands: list[list[Any]], rq_key: str) -> tuple[int, int, list[Any]]:
    """rq's writes for the RQ job ``rq_key`` as the fire script takes them: where its ``enqueued_at``
    value is (counted from the command count; 0: nowhere), how many commands, and each command's
    length followed by its arguments (`without_repeats`)."""
    stamp_at, ncmd, flat, _starts = _laid_out(commands, rq_key)
    return stamp_at, ncmd, flat


def _laid_out(commands: list[list[Any]], rq_key: str) -> tuple[int, int, list[Any], dict[int, int]]:
    """`lay_out()`, and where in ``flat`` each kept command's arguments start, by its index in ``commands``."""
    kept = {id(command) for command in without_repeats(commands, rq_key)}
    flat: list[Any] = []
    starts: dict[int, int] = {}
    stamp_at = 0
    for c, command in enumerate(commands):
        if id(command) not in kept:
            continue
        flat.append(len(command))
        starts[c] = len(flat)
        value = value_of(command, "enqueued_at") if command[:2] == ["HSET", rq_key] else 0
        if value and not stamp_at:
            stamp_at = len(flat) + value + 1
        flat.extend(command)
    return stamp_at, len(starts), flat, starts


def without_repeats(commands: list[list[Any]], rq_key: str) -> list[list[Any]]:
    """rq's writes without an ``HSET`` of the RQ job's status that a later ``HSET`` of it repeats."""
    kept: list[list[Any]] = []
    for i, command in enumerate(commands):
        if len(command) == 4 and command[:2] == ["HSET", rq_key] and command[2] == "status":
            later = commands[i + 1 :]
            if any(
                c[:2] == ["HSET", rq_key] and value_of(c, "status") and c[value_of(c, "status")] == command[3]
                for c in later
            ):
                continue
        kept.append(command)
    return kept


def value_of(command: list[Any], field: str) -> int:
    """Where the value of ``field`` is in an ``HSET key field value ...`` command (0: not there)."""
    for at in range(2, len(command) - 1, 2):
        if command[at] == field:
            return at + 1
    return 0


def _stamps(rq_job: Job) -> tuple[str, str] | None:
    """The texts of an RQ job's ``created_at`` and ``enqueued_at`` as rq writes them."""
    created: datetime | None = rq_job.created_at
    enqueued: datetime | None = rq_job.enqueued_at
    if created is None or enqueued is None:
        return None
    return utcformat(created), utcformat(enqueued)


#: Most templates kept (one per cron job id, with its definition's key): a few KB each.
TEMPLATES_KEPT = 10_000


@dataclass
class _Learnt:
    key: Any
    template: RunTemplate | None = None
    #: The first run rq built for this definition, until a second one proves the template.
    first: tuple[Job, Run] | None = None
    failed: bool = False


class Templates:
    """Run templates by cron job id, learnt from the runs rq builds: the first run of a definition
    is remembered, the second proves the template (`RunTemplate.verified`), the rest are filled in.
    So no run is built by rq only to make a template. At most ``limit`` ids are kept, oldest out first.
    """

    def __init__(self, limit: int = TEMPLATES_KEPT) -> None:
        self.limit = limit
        self._by_id: dict[str, _Learnt] = {}

    def __len__(self) -> int:
        return sum(1 for learnt in self._by_id.values() if learnt.template is not None)

    def clear(self) -> None:
        self._by_id.clear()

    def build(
        self, connection: Redis, queue: Queue, job: RunSource, key: Any, slot: int, stamp: str
    ) -> tuple[Job | None, Run]:
        """The run of ``slot`` for the definition ``key`` of ``job``: from its template once it has
        one (no RQ job object then), else built by rq (and learnt from)."""
        learnt = self._by_id.get(job.id)
        if learnt is None or learnt.key != key:
            if learnt is None and len(self._by_id) >= self.limit:
                del self._by_id[next(iter(self._by_id))]
            learnt = self._by_id[job.id] = _Learnt(key)
        if learnt.template is not None:
            return None, learnt.template.fill(slot, (stamp, stamp))
        built = build_run(connection, queue, job, slot)
        if not learnt.failed:
            if learnt.first is None:
                learnt.first = built
            else:
                learnt.template = RunTemplate.verified(learnt.first, built)
                learnt.failed = learnt.template is None
                learnt.first = None
        return built
