"""The registry's keys in Redis, through its Lua scripts: one typed wrapper per script.

Each wrapper mirrors the header of its script in ``lua/`` (keys, arguments, reply) and packs
the arguments itself, so no caller counts ARGV positions. Scripts run on a connection, or are
queued on a pipeline (the wrapper then returns nothing: the reply comes with the pipeline's).
The fire script has its wrapper in `enqueue`, the lock's in `lock`.
"""

from __future__ import annotations

import heapq
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import IO, Any, Literal, NamedTuple, cast

from redis import Redis
from redis.client import Pipeline
from rq.utils import as_text

from . import audit, keys, scripts
from .audit import AUDIT_LENGTH
from .clock import format_time, from_epoch
from .fields import FIELDS
from .text import encodable

#: What a write does when the id exists: "replace" its definition, "ignore" (keep it) or "raise"; and
#: "update": write only if it exists (the save script then reports MISSING when it does not).
Conflict = Literal["replace", "ignore", "raise", "update"]
#: Where a written definition comes from: a schedules file (``rqrcron apply``), anything else, or
#: "" for a write that is not an edit (the file ownership is kept).
Source = Literal["file", "hand", ""]


class IndexEntry(NamedTuple):
    """A job's place in the schedule index: its score and its ``next_enqueue_time`` ('' and '': none, it has ended)."""

    score: int | str
    next_time: str

    @classmethod
    def of(cls, score: int | None, slot: int | None) -> IndexEntry:
        """The entry of ``slot`` indexed at ``score`` (its jittered score), or NONE."""
        if slot is None or score is None:
            return NO_ENTRY
        return cls(score, format_time(from_epoch(slot)))


NO_ENTRY = IndexEntry("", "")


# -- lua/save.lua ---------------------------------------------------------------------------------


class SaveStatus(IntEnum):
    """What the save script did (its reply's first element)."""

    #: The id exists and ``conflict="raise"``: nothing written.
    EXISTS = -1
    #: The id exists and ``conflict="ignore"``: left alone.
    IGNORED = 0
    WRITTEN = 1
    #: The record changed since the caller read it (a fire, an edit): nothing written; read again.
    CHANGED = 2
    #: ``conflict="update"`` and there is no such job: nothing written.
    MISSING = 3


class Saved(NamedTuple):
    """The save script's reply: its status, and the record as it now is (as stored, when not WRITTEN)."""

    status: SaveStatus
    revision: str
    created_at: str
    next_time: str
    enabled: str
    #: A write expecting no record (``expected="-"``) that found one: that record's timing fields
    #: (`record.TIMING_FIELDS`), to place its next slot from.
    found: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class Save:
    """One call of the save script: a job's definition fields and what to do with its timing."""

    job_id: str
    #: The definition's hash fields (schedule, function, arguments, options) to set, and those to delete.
    fields: dict[str, str]
    removed: Sequence[str]
    #: The fields whose change moves the next run (else the stored next run is kept).
    schedule_fields: Sequence[str]
    #: When the write happens (the server's clock, or the injected one), epoch seconds.
    now: float
    #: The next slot to index if the schedule changed (or the job is new, re-enabled, quarantined).
    entry: IndexEntry
    #: "1", "0", or "" to keep the stored state (a new job is enabled).
    enabled: str = ""
    conflict: Conflict = "replace"
    #: The revision the caller read ('' writes whatever is stored; '-' writes only if there is no record).
    expected: str = ""
    source: Source = "hand"
    event: str = "updated"
    #: A ``latest_enqueue_time`` to store (RQ time format), whose next slot ``entry`` is taken even
    #: when the schedule is unchanged; '' keeps the stored one.
    latest: str = ""
    #: Who makes the change, for the audit log (`audit.actor`).
    actor: str = field(default_factory=audit.actor)

    def keys(self) -> list[str]:
        return [
            keys.job(self.job_id),
            keys.schedule(),
            keys.ids(),
            keys.last_update(),
            keys.revision(),
            keys.applied(),
            keys.audit(),
        ]

    def args(self) -> list[Any]:
        return [
            self.job_id,
            self.event,
            keys.events(),
            format_time(from_epoch(self.now)),
            *self.entry,
            self.enabled,
            "1" if self.latest else "0",
            self.latest,
            self.conflict,
            self.expected,
            self.source,
            len(self.schedule_fields),
            *self.schedule_fields,
            len(self.fields),
            *[x for pair in self.fields.items() for x in pair],
            len(self.removed),
            *self.removed,
            self.actor,
            AUDIT_LENGTH,
        ]


def _saved(reply: list[Any]) -> Saved:
    status, revision, created_at, next_time, enabled = reply[:5]
    found = tuple(reply[5:]) if len(reply) > 5 else None
    return Saved(
        SaveStatus(int(status)), as_text(revision), as_text(created_at), as_text(next_time), as_text(enabled), found
    )


def save(connection: Redis, call: Save) -> Saved:
    """Run one save: create or update a definition, keeping what the scheduler owns."""
    return _saved(scripts.run("save", connection, call.keys(), call.args()))


def queue_save(pipeline: Pipeline, call: Save) -> None:
    """Queue one save on ``pipeline`` (its reply comes with the pipeline's)."""
    scripts.run("save", pipeline, call.keys(), call.args())


def save_all(connection: Redis, calls: Iterable[Save], per_send: int) -> list[Saved]:
    """Run many saves, each atomic, ``per_send`` to a round trip, the round trips in a stream (each call
    made as its round trip is packed); their replies in order.

    A lost connection is retried and what was not answered is sent again: a save that ran already
    then finds its record changed, or taken (``expected``), and says so rather than writing twice.
    """
    calls_made = ((call.keys(), call.args()) for call in calls)
    replies = scripts.run_streamed("save", connection, calls_made, per_send, retry=True, window=2)
    return [_saved(reply) for reply in replies]


# -- lua/set_enabled.lua ----------------------------------------------------------------------------


def set_enabled(client: Redis | Pipeline, job_id: str, enabled: bool, now: float, entry: IndexEntry) -> int:
    """Enable (indexing it at ``entry`` if it was not indexed, or was quarantined) or disable a job.

    Returns the new revision, 0 if there is no such job (always 0 when queued on a pipeline).
    """
    reply = scripts.run(
        "set_enabled",
        client,
        [keys.job(job_id), keys.schedule(), keys.last_update(), keys.revision(), keys.audit()],
        [
            job_id,
            "1" if enabled else "0",
            keys.events(),
            format_time(from_epoch(now)),
            *entry,
            audit.actor(),
            AUDIT_LENGTH,
        ],
    )
    return 0 if isinstance(client, Pipeline) else int(reply)


# -- lua/delete.lua -----------------------------------------------------------------------------


def delete(client: Redis | Pipeline, job_id: str) -> bool:
    """Delete a job by id, even one whose record is unreadable: hash, index entries and history.

    Returns whether anything existed (always True when queued on a pipeline). An id ending
    in ``:jobs`` can name no job (its key is another job's history): only stray index entries
    of it are removed, and no key is deleted.
    """
    if job_id.endswith(":jobs"):
        pipe = client if isinstance(client, Pipeline) else client.pipeline(transaction=True)
        pipe.zrem(keys.schedule(), job_id)
        pipe.srem(keys.ids(), job_id)
        pipe.srem(keys.applied(), job_id)
        pipe.zrem(keys.failing(), job_id)
        if isinstance(client, Pipeline):
            return True
        return any(int(n) for n in pipe.execute())
    # An id that is not valid text (as a shell passes stray bytes) still names its keys byte for byte.
    raw: str | bytes = job_id if encodable(job_id) else job_id.encode("utf-8", "surrogateescape")
    keys_: list[Any] = [
        keys.job(raw),
        keys.schedule(),
        keys.ids(),
        keys.last_update(),
        keys.history(raw),
        keys.applied(),
        keys.failing(),
        keys.audit(),
        keys.backfilled(raw),
    ]
    args = [raw, keys.events(), audit.actor(), AUDIT_LENGTH, *FIELDS]
    existed = scripts.run("delete", client, keys_, args)
    return True if isinstance(client, Pipeline) else bool(int(existed))


# -- lua/quarantine.lua, lua/lift.lua ---------------------------------------------------------------


def quarantine(connection: Redis, job_id: str, revision: bytes | str, message: str) -> bool:
    """Move a job out of the due range (score +inf) and record why; False if its record changed since read."""
    done = scripts.run(
        "quarantine",
        connection,
        [keys.job(job_id), keys.schedule(), keys.revision()],
        [job_id, revision, message],
    )
    return bool(int(done))


def lift(connection: Redis, job_id: str, revision: bytes | str, entry: IndexEntry) -> int:
    """Lift a quarantine, indexing the job at ``entry``; the new revision, or 0 if the record changed."""
    return int(
        scripts.run(
            "lift",
            connection,
            [keys.job(job_id), keys.schedule(), keys.revision(), keys.last_update()],
            [job_id, revision, *entry, keys.events()],
        )
    )


# -- lua/prune.lua --------------------------------------------------------------------------------


def prune(connection: Redis, ids: list[str]) -> int:
    """Drop those of ``ids`` whose hash is gone from the index and the id set; return how many."""
    if not ids:
        return 0
    return int(scripts.run("prune", connection, [keys.schedule(), keys.ids()], [keys.job(""), *ids]))


# -- lua/tick.lua ---------------------------------------------------------------------------------


class Due(NamedTuple):
    """One index entry due by a tick's horizon, as tick.lua returns it."""

    #: The id as stored (bytes: it may not be text).
    id: bytes | str
    score: str
    #: The job hash's fields and values, flat; [] if there is no hash; or the type of the key found
    #: where the hash should be (as text).
    record: list[Any] | str

    @property
    def revision(self) -> bytes | str | None:
        """The record's ``revision`` field as stored, None if the record has none (or is no hash)."""
        fields = self.record
        if not isinstance(fields, list):
            return None
        for i in range(0, len(fields) - 1, 2):
            if fields[i] in (b"revision", "revision"):
                return cast(bytes | str, fields[i + 1])
        return None


class Tick(NamedTuple):
    """What tick.lua returns: one pass's view of the index."""

    #: The Redis server's time (or the injected clock's), epoch seconds.
    now: float
    #: The change marker (``rq:cron_jobs:last_update``): a new value means the registry changed.
    marker: str
    #: The score of the soonest entry after ``now``, if any.
    upcoming: float | None
    #: The entries due by now plus the look-ahead, soonest first.
    entries: list[Due]


def tick(
    connection: Redis,
    *,
    now: float | None,
    limit: int,
    offset: int = 0,
    lookahead: float = 0.0,
    horizon: float = 0.0,
) -> tuple[Tick, int]:
    """Read the time (``now``, else the server's), the change marker, the next score and the entries due;
    and how many entries are due within ``horizon`` seconds (0: not counted).

    At most ``limit`` entries, skipping the first ``offset``; due means a score up to now plus ``lookahead``.
    """
    reply = scripts.run(
        "tick",
        connection,
        [keys.schedule(), keys.last_update()],
        ["" if now is None else repr(float(now)), limit, keys.job(""), offset, repr(lookahead), repr(horizon)],
    )
    upcoming = as_text(reply[2])
    tick = Tick(
        float(as_text(reply[0])),
        as_text(reply[1]),
        float(upcoming) if upcoming else None,
        [
            Due(entry[0], as_text(entry[1]), entry[2] if isinstance(entry[2], list) else as_text(entry[2]))
            for entry in reply[4:]
        ],
    )
    return tick, int(reply[3])


# -- reading ids ----------------------------------------------------------------------------------


def decode_ids(raw_ids: Iterable[bytes | str]) -> tuple[list[str], list[str]]:
    """Ids as text in their order, and (escaped) the entries that are not UTF-8 text, which no job can have."""
    ids, bad = [], []
    for raw in raw_ids:
        try:
            ids.append(as_text(raw))
        except UnicodeDecodeError:
            bad.append(cast(bytes, raw).decode("utf-8", "backslashreplace"))
    return ids, bad


#: Ids read per SSCAN step by `SortedIds`.
SCAN_COUNT = 10_000
#: Ids sorted in memory at once by `SortedIds`; a larger registry is sorted in runs of this many,
#: kept in temporary files and merged (a million ids: about 6 MB at a time instead of 55).
RUN_SIZE = 100_000


class SortedIds:
    """Every registered id in id order, read once (``for id in ids``), in bounded memory.

    The ids are read with SSCAN and sorted in runs of ``run_size``; past one run, each sorted run
    is written to a temporary file and the runs are merged as they are read. Ids that are not
    UTF-8 text, which no job can have, are set apart in ``bad`` (escaped).
    """

    def __init__(self, connection: Redis, run_size: int = RUN_SIZE) -> None:
        self.bad: list[str] = []
        #: How many ids were read (a few may be read twice while the set is resized).
        self.count = 0
        self._memory: list[bytes] = []
        self._files: list[IO[bytes]] = []
        cursor = 0
        run: list[bytes] = []
        while True:
            cursor, chunk = cast(tuple[int, list[Any]], connection.sscan(keys.ids(), cursor, count=SCAN_COUNT))
            for each in chunk:
                raw = each.encode("utf-8", "surrogateescape") if isinstance(each, str) else each
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    self.bad.append(raw.decode("utf-8", "backslashreplace"))
                    continue
                run.append(raw)
            if len(run) >= run_size:
                self._spill(run)
                run = []
            if cursor == 0:
                break
        self.bad = sorted(set(self.bad))
        if self._files:
            self._spill(run)
        else:
            self._memory = sorted(set(run))  # SSCAN may return an id twice while the set is resized

    def _spill(self, run: list[bytes]) -> None:
        run.sort()
        self.count += len(run)
        out = tempfile.TemporaryFile()  # noqa: SIM115 - read by __iter__, which closes it
        out.write(b"".join(len(each).to_bytes(4, "big") + each for each in run))
        out.seek(0)
        self._files.append(out)

    def __iter__(self) -> Iterator[bytes]:
        previous = None
        for each in heapq.merge(*(_read_run(f) for f in self._files)) if self._files else iter(self._memory):
            if each != previous:  # SSCAN may return an id twice while the set is resized
                yield each
            previous = each
        for f in self._files:
            f.close()

    def __len__(self) -> int:
        return self.count if self._files else len(self._memory)


def batched_ids(ids: Iterable[bytes], size: int, at_least_one: bool = False) -> Iterator[list[bytes]]:
    """`scripts.batched` for ids; with ``at_least_one``, one empty list when there are none."""
    given = False
    for part in scripts.batched(ids, size):
        given = True
        yield part
    if at_least_one and not given:
        yield []


def _read_run(source: IO[bytes]) -> Iterator[bytes]:
    while size := source.read(4):
        yield source.read(int.from_bytes(size, "big"))


def all_ids(connection: Redis) -> tuple[list[str], list[str]]:
    """Every registered id, sorted, and (escaped) the entries that are not UTF-8 text (see `SortedIds`)."""
    ids = SortedIds(connection)
    return [each.decode() for each in ids], ids.bad
