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
import zlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from redis import Redis
from rq.job import Job
from rq.queue import Queue
from rq.utils import utcformat

from .runs import RunSource, build_rq_job, rq_job_id

log = logging.getLogger("rediscron.template")

#: Two slots to capture a template with (any two slots do; these read well in a debugger: 2001-09-09).
CAPTURE_SLOTS = (1_000_000_000, 1_000_000_001)
#: Argument types redis-py sends without complaint (it refuses bool and None); the rest are checked.
_SENT_AS_IS = frozenset({bytes, str, int, float})


@dataclass(frozen=True, slots=True)
class Run:
    """One run built by rq, ready for the fire script: its RQ job's id and key, and rq's writes for it."""

    rq_id: str
    rq_key: str
    commands: list[list[Any]]

    def laid_out(self) -> tuple[int, int, list[Any]]:
        """rq's writes as the fire script takes them (`lay_out`)."""
        return lay_out(self.commands, self.rq_key)


@dataclass(frozen=True, slots=True)
class FilledRun:
    """One run of a template: what its writes are filled in from (the template, the slot, the time and the
    job's `Parts`), only when the fire script's arguments are made (`laid_out`). A run built ahead of its
    slot holds these few references, not its writes, nor its RQ job's id and key (made when asked for)."""

    template: RunTemplate
    slot: int
    #: Its RQ job's ``created_at`` and ``enqueued_at``, as rq writes them.
    stamps: tuple[str, str]
    parts: Parts

    @property
    def rq_id(self) -> str:
        return self.parts.rq_id(self.slot)

    @property
    def rq_key(self) -> str:
        return self.template.key_prefix + self.rq_id

    def laid_out(self) -> tuple[int, int, list[Any]]:
        """rq's writes as the fire script takes them (`lay_out`): what the script fills in itself, from
        `filled_in` and its template, when the run is fired."""
        return self.template.laid_out(self.slot, self.stamps, self.parts)

    def filled_in(self) -> tuple[Any, ...]:
        """What the fire script fills its template in with (`RunTemplate.script_part`): its RQ job id,
        its times, its call, description and meta."""
        return self.template.values(self.slot, self.stamps, self.parts)


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


@dataclass(frozen=True, slots=True)
class Parts:
    """What a run's writes take from its own job rather than from its shape's template: the start of
    its RQ job ids, its call as rq stores it (``data``), its ``description``, and for its ``meta`` its
    id and its own meta (None if none)."""

    prefix: str
    data: bytes
    description: str
    job_id: str
    own_meta: dict[str, Any] | None

    def rq_id(self, slot: int) -> str:
        """The RQ job id of its run of ``slot`` (`runs.rq_job_id`)."""
        return f"{self.prefix}-{slot}"

    def meta(self, slot: int) -> dict[str, Any]:
        """The ``meta`` of its run of ``slot``, as `runs.run_meta` makes it."""
        return {**(self.own_meta or {}), "rediscron_id": self.job_id, "rediscron_slot": slot}

    @classmethod
    def of(cls, job: RunSource, serializer: Any) -> Parts:
        """``job``'s parts, computed as rq computes them in ``Job.create`` and ``Job.to_dict``
        (a template proves it on two jobs before filling in any other: `RunTemplate.matches`)."""
        args, kwargs = list(job.args), dict(job.kwargs)
        data = zlib.compress(serializer.dumps((job.func_name, None, args, kwargs)))
        call = _Call(job.func_name, args, kwargs)
        description = job.description or Job.get_call_string(call)  # type: ignore[arg-type] # rq's own wording
        own_meta = dict(job.meta) if job.meta else None
        return cls(rq_job_id(job.id, 0).rsplit("-", 1)[0], data, description or "", job.id, own_meta)


@dataclass(frozen=True)
class _Call:
    """What rq's ``Job.get_call_string`` reads of a job."""

    func_name: str
    args: list[Any]
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class Sample:
    """One run built by rq: its cron job, its RQ job and rq's writes for it."""

    job: RunSource
    rq_job: Job
    run: Run


class RunTemplate:
    """rq's writes for the runs of one shape of job (`shape_of`), with the places that vary from run to
    run (its RQ job id, its times, the slot in its ``meta``) and from job to job (`Parts`)."""

    def __init__(
        self,
        commands: list[list[Any]],
        rq_id: str,
        job_id: str,
        places: dict[str, Any],
        serializer: Any,
        key_prefix: str,
    ) -> None:
        self._commands = commands
        self._rq_id = rq_id
        #: The cron job whose run the template was captured from.
        self.job_id = job_id
        #: (command, argument) of each text holding the RQ job id (``"ids"``), of each time (``"times"``,
        #: with 0 for created_at / 1 for enqueued_at), and of ``"meta"``, ``"data"`` and ``"description"``.
        self._places = places
        self._serializer = serializer
        self._key_prefix = key_prefix
        #: Whether the template can be filled in for another job of its shape: its call and description
        #: were found where rq writes them, as `Parts` computes them.
        self.shareable = places["data"] is not None and places["description"] is not None
        self._script_part: tuple[Any, ...] | None = None
        self._lay_out()

    def _lay_out(self) -> None:
        """The commands as the fire script takes them (`lay_out`), and where in that layout the values a
        run fills in are."""
        self._stamp_at, self._ncmd, self._flat, starts = _laid_out(self._commands, self._key_prefix + self._rq_id)

        def at(place: tuple[int, int] | None) -> int | None:
            return None if place is None or place[0] not in starts else starts[place[0]] + place[1]

        places = self._places
        self._flat_ids = [i for place in places["ids"] if (i := at(place)) is not None]
        self._flat_times = [(i, which) for c, a, which in places["times"] if (i := at((c, a))) is not None]
        self._flat_meta, self._flat_data, self._flat_description = (
            at(places[name]) for name in ("meta", "data", "description")
        )

    @classmethod
    def capture(cls, connection: Redis, queue: Queue, job: RunSource) -> RunTemplate | None:
        """A template from two runs of ``job`` built by rq, or None if its writes vary in other ways."""
        first = Sample(job, *build_run(connection, queue, job, CAPTURE_SLOTS[0]))
        template = cls.candidate(first)
        second = Sample(job, *build_run(connection, queue, job, CAPTURE_SLOTS[1]))
        return template if template is not None and template.matches(second) else None

    @classmethod
    def candidate(cls, sample: Sample) -> RunTemplate | None:
        """A template from one run rq built, to be proven by another (`matches`); None if that run's
        writes hold its id or times where they cannot be filled in."""
        rq_job, run = sample.rq_job, sample.run
        stamps = _stamps(rq_job)
        if stamps is None or not run.rq_key.endswith(run.rq_id) or not rq_job.meta:
            return None
        parts = Parts.of(sample.job, rq_job.serializer)
        meta_text: Any = rq_job.serializer.dumps(rq_job.meta)
        rq_id_bytes = run.rq_id.encode()
        places: dict[str, Any] = {"ids": [], "times": [], "meta": None, "data": None, "description": None}
        found = {"meta": meta_text, "data": parts.data, "description": parts.description}
        for c, command in enumerate(run.commands):
            for a, arg in enumerate(command):
                name = command[a - 1] if a > 0 and command[a - 1] in found else None
                if name is not None and arg == found[name] and places[name] is None:
                    places[name] = (c, a)
                elif type(arg) is str and run.rq_id in arg:
                    places["ids"].append((c, a))
                elif type(arg) is str and arg in stamps:
                    places["times"].append((c, a, stamps.index(arg)))
                elif type(arg) is bytes and rq_id_bytes in arg:
                    return None  # the id inside serialized data: not something to patch
        if places["meta"] is None:
            return None
        key_prefix = run.rq_key[: len(run.rq_key) - len(run.rq_id)]
        return cls(run.commands, run.rq_id, sample.job.id, places, rq_job.serializer, key_prefix)

    def parts(self, job: RunSource) -> Parts:
        """``job``'s parts, with this template's serializer."""
        return Parts.of(job, self._serializer)

    def matches(self, sample: Sample) -> bool:
        """Whether the template, filled in for the run rq built in ``sample``, gives exactly rq's writes."""
        stamps = _stamps(sample.rq_job)
        slot = sample.rq_job.meta.get("rediscron_slot")
        if stamps is None or not isinstance(slot, int):
            return False
        if sample.job.id != self.job_id and not self.shareable:
            return False
        filled = self.run(slot, stamps, self.parts(sample.job))
        if filled.commands != sample.run.commands:
            log.debug("%s: runs differ in more than id, times, slot and call; each is built by rq", sample.run.rq_id)
            return False
        return True

    def run(self, slot: int, stamps: tuple[str, str], parts: Parts) -> Run:
        """The run of ``slot`` of the job of ``parts``: the template with its RQ job id, its times
        (``created_at``, ``enqueued_at``, as rq writes them), its call and its ``meta`` filled in."""
        rq_id = parts.rq_id(slot)
        commands = [list(command) for command in self._commands]
        places = self._places
        for c, a in places["ids"]:
            commands[c][a] = commands[c][a].replace(self._rq_id, rq_id)
        for c, a, which in places["times"]:
            commands[c][a] = stamps[which]
        for name, value in (("data", parts.data), ("description", parts.description)):
            if places[name] is not None:
                commands[places[name][0]][places[name][1]] = value
        c, a = places["meta"]
        commands[c][a] = self._serializer.dumps(parts.meta(slot))
        return Run(rq_id, self._key_prefix + rq_id, commands)

    def fill(self, slot: int, stamps: tuple[str, str], parts: Parts) -> FilledRun:
        """The run of ``slot`` of the job of ``parts``, its writes filled in when laid out."""
        return FilledRun(self, slot, stamps, parts)

    @property
    def key_prefix(self) -> str:
        """What its RQ job keys start with (the RQ job id follows)."""
        return self._key_prefix

    def script_part(self) -> tuple[Any, ...]:
        """The template as the fire script takes it (lua/fire.lua's header), once for the runs filled in from
        it in one script: its writes laid out, and the places (counted from 1) of what each run fills in."""
        if self._script_part is None:
            ids = [i + 1 for i in self._flat_ids]
            times = [x for i, which in self._flat_times for x in (i + 1, which)]
            self._script_part = (
                self._ncmd,
                len(self._flat),
                *self._flat,
                len(ids),
                *ids,
                len(self._flat_times),
                *times,
                *[0 if i is None else i + 1 for i in (self._flat_data, self._flat_description, self._flat_meta)],
                max(self._stamp_at, 0),
                self._rq_id,
            )
        return self._script_part

    def values(self, slot: int, stamps: tuple[str, str], parts: Parts) -> tuple[Any, ...]:
        """What the fire script fills this template in with for the run of ``slot`` of the job of ``parts``."""
        meta = self._serializer.dumps(parts.meta(slot))
        return (parts.rq_id(slot), stamps[0], stamps[1], parts.data, parts.description, meta)

    def laid_out(self, slot: int, stamps: tuple[str, str], parts: Parts) -> tuple[int, int, list[Any]]:
        """`run()` laid out as the fire script takes it (`lay_out`): one list copied and patched."""
        rq_id = parts.rq_id(slot)
        flat = list(self._flat)
        for i in self._flat_ids:
            flat[i] = flat[i].replace(self._rq_id, rq_id)
        for i, which in self._flat_times:
            flat[i] = stamps[which]
        if self._flat_data is not None:
            flat[self._flat_data] = parts.data
        if self._flat_description is not None:
            flat[self._flat_description] = parts.description
        if self._flat_meta is not None:
            flat[self._flat_meta] = self._serializer.dumps(parts.meta(slot))
        return self._stamp_at, self._ncmd, flat


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


#: The fields of `RunSource` a run's writes take from its job rather than from its shape (`Parts`).
PER_JOB_FIELDS = frozenset({"id", "func", "args", "kwargs", "meta"})
#: The fields that make a job's shape: every other field building its runs reads.
SHAPE_FIELDS = tuple(name for name in RunSource.__annotations__ if name not in PER_JOB_FIELDS)


def shape_of(job: RunSource) -> tuple[str, ...] | None:
    """What a job's runs share with the runs of every job of the same shape: the same function, queue,
    classes and rq options (None for a job given its function in process: its runs are built by rq)."""
    if job.func is not None:
        return None
    return tuple(repr(getattr(job, name)) for name in SHAPE_FIELDS)


#: Most templates kept (by shape, or by job for a shape whose runs differ between jobs): a few KB each.
TEMPLATES_KEPT = 10_000


@dataclass
class _Learnt:
    template: RunTemplate | None = None
    #: The template of the first run rq built, until another run proves it.
    candidate: RunTemplate | None = None
    #: Whether the template holds for every job of its shape (proven on two), not only its own.
    shared: bool = False
    failed: bool = False
    #: A shape whose runs differ between jobs in more than `Parts`: each job learns a template of its own.
    per_job: bool = False

    def usable_for(self, job_id: str) -> bool:
        return self.template is not None and (self.shared or self.template.job_id == job_id)

    def learn(self, sample: Sample, by_shape: bool) -> None:
        """Learn from a run rq built: a first run gives a candidate, a second one proves or refutes it."""
        if self.failed or self.per_job:
            return
        other_job = self.candidate is not None and sample.job.id != self.candidate.job_id
        if self.template is not None:
            if not self.shared and sample.job.id != self.template.job_id:
                # Proven for its own job: another job of the shape may prove it for all.
                self.shared = self.template.matches(sample)
                self.per_job = not self.shared
        elif self.candidate is None:
            self.candidate = RunTemplate.candidate(sample)
            self.failed = self.candidate is None
        elif self.candidate.matches(sample):
            self.template, self.candidate, self.shared = self.candidate, None, other_job
        else:
            self.candidate = None
            self.per_job = by_shape and other_job
            self.failed = not self.per_job


class Templates:
    """Run templates learnt from the runs rq builds, by shape (`shape_of`): the first run of a shape is
    remembered, another run (of any job of the shape) proves the template (`RunTemplate.matches`), and
    the runs after that, of every job of the shape, are filled in. So no run is built by rq only to make
    a template, and a job's first run is filled in once a job of its shape has proven the template. A
    template proven by two runs of one job only is used for that job until another job of the shape
    proves it for all; a shape whose runs differ between jobs has a template per job. At most ``limit``
    templates (and parts) are kept, oldest out first.
    """

    def __init__(self, limit: int = TEMPLATES_KEPT) -> None:
        self.limit = limit
        self._learnt: dict[Any, _Learnt] = {}
        #: Each job's definition key, shape and (once a template is used for it) parts, by job id.
        self._jobs: dict[str, _Job] = {}

    def __len__(self) -> int:
        return sum(1 for learnt in self._learnt.values() if learnt.template is not None)

    def clear(self) -> None:
        self._learnt.clear()
        self._jobs.clear()

    def build(
        self, connection: Redis, queue: Queue, job: RunSource, key: Any, slot: int, stamp: str
    ) -> tuple[Job | None, Run | FilledRun]:
        """The run of ``slot`` for the definition ``key`` of ``job``: from its shape's template once that
        is proven (no RQ job object then), else built by rq (and learnt from)."""
        known = self._job(job, key)
        learnt = by_shape = None if known.shape is None else self._entry(("shape", *known.shape))
        if learnt is not None and learnt.per_job:
            learnt = self._entry(("job", job.id, key))
        if learnt is not None and learnt.template is not None and learnt.usable_for(job.id):
            if known.parts is None:
                known.parts = learnt.template.parts(job)
            return None, learnt.template.fill(slot, _both(stamp), known.parts)
        built = build_run(connection, queue, job, slot)
        if learnt is not None:
            learnt.learn(Sample(job, *built), by_shape=learnt is by_shape)
        return built

    def _job(self, job: RunSource, key: Any) -> _Job:
        known = self._jobs.get(job.id)
        if known is None or known.key != key:
            _make_room(self._jobs, self.limit)
            known = self._jobs[job.id] = _Job(key, shape_of(job))
        return known

    def _entry(self, key: tuple[Any, ...]) -> _Learnt:
        learnt = self._learnt.get(key)
        if learnt is None:
            _make_room(self._learnt, self.limit)
            learnt = self._learnt[key] = _Learnt()
        return learnt


@lru_cache(maxsize=64)
def _both(stamp: str) -> tuple[str, str]:
    """A run's ``created_at`` and ``enqueued_at`` when built at ``stamp``: one tuple for the runs of a time."""
    return (stamp, stamp)


@dataclass(slots=True)
class _Job:
    key: Any
    shape: tuple[str, ...] | None
    parts: Parts | None = None


def _make_room(kept: dict[Any, Any], limit: int) -> None:
    """Drop the oldest entries of ``kept`` until one more fits within ``limit``."""
    while kept and len(kept) >= limit:
        del kept[next(iter(kept))]
