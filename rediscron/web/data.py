"""What the web page shows, read from Redis a page at a time: never the whole registry.

A listing walks the index (enabled jobs by next run, quarantined ones last) and then the id
set for the rest, in chunks, reading only the few fields it filters on, until a page is full
or a scan budget is spent; a cursor says where the next page starts. Jobs are built (without
importing anything) only for the rows shown.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import cron_scheduler_registry

from .. import keys, store
from ..clock import epoch_of_time_reply
from ..errors import CorruptJobError, JobNotFound
from ..fields import DEFINITION_FIELDS
from ..history import HistoryEntry
from ..job import RedisCronJob
from ..registry import Registry
from ..status import Status, read_status
from ..text import printable, shorten

#: The states a listing filters on.
STATES = ("all", "enabled", "disabled", "quarantined", "ended")
PAGE_SIZE = 50
#: At most this many ids are looked at to fill one page of a filtered listing, and of a search.
SCAN_BUDGET = 5000
SEARCH_BUDGET = 100_000
_CHUNK = 500
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
#: A set-scan cursor: SSCAN's position, and the last id shown of the chunk it returns (to skip up to).
_SET_CURSOR = re.compile(r"([0-9]{1,20})(?:/(.*))?$", re.DOTALL)
_OFFSET = re.compile(r"[0-9]{1,12}$")
#: Standbys the panel names (the others are counted).
STANDBYS_SHOWN = 10


@dataclass
class Counts:
    """How many jobs there are, by state (cheap counts, no scan)."""

    total: int
    scheduled: int
    quarantined: int

    @property
    def enabled(self) -> int:
        return self.scheduled - self.quarantined

    @property
    def other(self) -> int:
        """Disabled or ended."""
        return max(0, self.total - self.scheduled)


@dataclass
class JobRow:
    """One line of the jobs table."""

    job: RedisCronJob | None
    id: str
    state: str
    queue: str
    #: Why its record cannot be read, or why it was quarantined.
    error: str | None = None
    last: HistoryEntry | None = None

    @property
    def next_epoch(self) -> float | None:
        if self.job is None or self.state != "enabled" or self.job.next_enqueue_time is None:
            return None
        return self.job.next_enqueue_time.timestamp()


@dataclass
class Listing:
    rows: list[JobRow]
    #: Where the next page starts ("" when this is the last page).
    next_cursor: str
    counts: Counts
    #: Ids looked at for this page (the scan budget bounds it).
    scanned: int
    now: float


def counts(connection: Redis) -> Counts:
    with connection.pipeline(transaction=False) as pipe:
        pipe.scard(keys.ids())
        pipe.zcard(keys.schedule())
        pipe.zcount(keys.schedule(), "+inf", "+inf")
        total, scheduled, quarantined = pipe.execute()
    return Counts(int(total), int(scheduled), int(quarantined))


def marker(connection: Redis, job_id: str = "") -> str:
    """What moves on any change of any job: an edit, a delete (the change counter) or a fire (the
    revision counter every record write draws from); with ``job_id``, also a run of that job
    triggered by hand (its newest history entry)."""
    with connection.pipeline(transaction=False) as pipe:
        pipe.mget([keys.last_update(), keys.revision()])
        if job_id:
            pipe.zrevrange(keys.history(job_id), 0, 0)
        replies = pipe.execute(raise_on_error=False)
    if isinstance(replies[0], Exception):
        raise replies[0]
    changes, revision = replies[0]
    # A history of another type reads as none: the page still follows edits and fires.
    newest = _text(replies[1][0]) if job_id and isinstance(replies[1], list) and replies[1] else ""
    return f"{_text(changes) or 0}.{_text(revision) or 0}.{newest}"


def _state(enabled: Any, error: Any, score: Any) -> str:
    if error:
        return "quarantined"
    if enabled == b"0":
        return "disabled"
    if score is None:
        return "ended"
    return "enabled"


def _classify(connection: Redis, ids: list[str]) -> list[tuple[str, str, str]]:
    """(id, state, queue) of each id whose record exists, in one round trip."""
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hmget(keys.job(job_id), "queue_name", "enabled", "last_error", "id")
            pipe.zscore(keys.schedule(), job_id)
        replies = pipe.execute(raise_on_error=False)
    out = []
    for i, job_id in enumerate(ids):
        fields, score = replies[2 * i], replies[2 * i + 1]
        if isinstance(fields, Exception):
            out.append((job_id, "quarantined", "?"))  # a key of another type: the row says why
            continue
        queue, enabled, error, stored_id = fields
        if stored_id is None and queue is None:
            continue  # gone meanwhile
        score = None if isinstance(score, Exception) else score
        out.append((job_id, _state(enabled, error, score), _text(queue)))
    return out


def _text(raw: Any) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")


def _glob(search: str) -> str:
    return "*" + _GLOB_SPECIAL.sub(r"\\\1", search) + "*"


def list_jobs(
    registry: Registry,
    *,
    state: str = "all",
    queue: str = "",
    search: str = "",
    cursor: str = "",
    limit: int = PAGE_SIZE,
    budget: int | None = None,
) -> Listing:
    """One page of jobs matching the filters, and where the next page starts.

    Without a search, enabled and quarantined jobs come first, soonest first (the index),
    then disabled and ended ones (the id set). A search matches ids containing the text.
    """
    connection = registry.connection
    state = state if state in STATES else "all"
    if not cursor:
        cursor = "s:0" if search or state in ("disabled", "ended") else "z:0"
    picked: list[tuple[str, str, str]] = []
    totals = counts(connection)
    scanned = 0
    if budget is None:
        # A search is matched by Redis (SSCAN MATCH): examining an id costs far less than reading its fields.
        budget = SEARCH_BUDGET if search else SCAN_BUDGET
    while cursor and len(picked) < limit and scanned < budget:
        phase, _, position = cursor.partition(":")
        if phase == "z":
            offset = _offset(position)
            lo, hi = ("+inf", "+inf") if state == "quarantined" else ("-inf", "+inf")
            raw = connection.zrangebyscore(keys.schedule(), lo, hi, start=offset, num=_CHUNK)
            ids = store.decode_ids(cast(list[Any], raw))[0]
            scanned += len(raw)
            if len(raw) == _CHUNK:
                cursor = f"z:{offset + len(raw)}"
            else:
                # Past the index's end; the rest (disabled, ended) are only in the id set, if any.
                rest = state == "all" and totals.other > 0
                cursor = "s:0" if rest else ""
            in_index = True
        else:
            match = _SET_CURSOR.match(position)
            at, skip_to = (int(match.group(1)), match.group(2)) if match else (0, None)
            at = at if at < 2**64 else 0
            next_position, raw_ids = connection.sscan(
                keys.ids(), at, match=_glob(search) if search else None, count=_CHUNK
            )
            ids = store.decode_ids(list(raw_ids))[0]
            if skip_to is not None and skip_to in ids:
                ids = ids[ids.index(skip_to) + 1 :]  # shown on the page before
            scanned += _CHUNK  # SSCAN examines about COUNT entries, whatever MATCH keeps
            cursor = f"s:{next_position}" if int(next_position) else ""
            in_index = False
        for job_id, job_state, job_queue in _classify(connection, ids):
            if queue and job_queue != queue:
                continue
            if state != "all" and job_state != state:
                continue
            if state == "all" and not search and not in_index and job_state in ("enabled", "quarantined"):
                continue  # listed from the index already
            picked.append((job_id, job_state, job_queue))
        if len(picked) > limit:
            # The cursor points past a chunk that overflowed the page: keep its rest for the next page
            # by restarting from the first id not shown (ids in one chunk are few).
            picked = picked[:limit]
            cursor = _resume(phase, position, picked[-1][0], ids)
    if search:
        picked.sort(key=lambda item: item[0])
    return Listing(_rows(registry, picked, state), cursor, totals, scanned, _now(connection))


def _offset(position: str) -> int:
    """An index offset from a cursor; anything but a plain small number starts at the first page."""
    return int(position) if _OFFSET.match(position) else 0


def _resume(phase: str, position: str, last_shown: str, chunk: list[str]) -> str:
    """A cursor that starts right after ``last_shown`` in the chunk that began at ``phase:position``."""
    if phase == "z":
        start = _offset(position)
        return f"z:{start + chunk.index(last_shown) + 1}"
    # A set scan cannot restart in the middle of a chunk: the chunk is read again from its start and
    # what was shown is skipped, up to the last id shown.
    match = _SET_CURSOR.match(position)
    return f"s:{match.group(1) if match else 0}/{last_shown}"


def _rows(registry: Registry, picked: list[tuple[str, str, str]], wanted: str = "all") -> list[JobRow]:
    ids = [job_id for job_id, _state, _queue in picked]
    jobs, invalid, _missing = registry.load(ids, prune=False)
    by_id = {job.id: job for job in jobs}
    last = registry.history([job.id for job in jobs], limit=1)
    rows = []
    for job_id, job_state, job_queue in picked:
        job = by_id.get(job_id)
        if job is None and job_id not in invalid:
            continue
        error = invalid.get(job_id) or (job.last_error if job is not None else None)
        entries = last.get(job_id) or []
        # A record that cannot be read is what the scheduler quarantines when it comes due: say so now.
        state = job_state if job is not None else "quarantined"
        if wanted not in ("all", state):
            continue  # unreadable: its state is known only now
        rows.append(JobRow(job, job_id, state, job_queue, error, entries[0] if entries else None))
    return rows


def _now(connection: Redis) -> float:
    return epoch_of_time_reply(connection.time())


@dataclass
class Detail:
    """Everything a job's page shows."""

    id: str
    job: RedisCronJob | None
    #: Why the record cannot be read (then ``job`` is None), or why it was quarantined.
    error: str | None
    state: str
    definition: dict[str, Any] = field(default_factory=dict)
    next_runs: list[datetime] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    drops: list[dict[str, Any]] = field(default_factory=list)
    digest: str = ""
    now: float = 0.0


def job_detail(registry: Registry, job_id: str, runs: int = 10) -> Detail:
    """A job's definition, next runs, history and drop log ([JobNotFound][rediscron.JobNotFound] if none)."""
    now = _now(registry.connection)
    try:
        job = registry.fetch(job_id)
    except CorruptJobError as exc:
        return Detail(job_id, None, exc.message if hasattr(exc, "message") else str(exc), "quarantined", now=now)
    state = _classify(registry.connection, [job_id])
    if not state:
        raise JobNotFound(job_id)
    stored = job.to_dict()
    definition = {name: stored.get(name) for name in ("func_name", "queue_name", *DEFINITION_FIELDS) if name in stored}
    definition = {name: value for name, value in definition.items() if value not in (None, "", [], {})}
    upcoming = job.next_runs(runs) if state[0][1] == "enabled" else []
    return Detail(
        job_id,
        job,
        job.last_error,
        state[0][1],
        definition,
        upcoming,
        job.get_history(),
        list(reversed(job.drop_log)),
        registry.digest(job),
        now,
    )


@dataclass
class Panel:
    """The scheduler panel: who leads, who stands by, how it is doing."""

    status: Status | None
    standbys: list[str]
    #: Why the panel could not be read (a key of another type...), else None.
    error: str | None = None
    #: Standbys beyond those named.
    more: int = 0


def panel(connection: Redis) -> Panel:
    """The scheduler panel; a key it reads that cannot be read (of another type...) is said, not raised."""
    try:
        status = read_status(connection)
        members = connection.zrevrangebyscore(
            cron_scheduler_registry.get_registry_key(), "+inf", time.time() - 180, start=0, num=STANDBYS_SHOWN + 1
        )
        seen = connection.zcount(cron_scheduler_registry.get_registry_key(), time.time() - 180, "+inf")
    except (RedisConnectionError, RedisTimeoutError):
        raise
    except RedisError as exc:
        return Panel(None, [], error=f"the scheduler's status cannot be read: {printable(str(exc))[:300]}")
    # Names are the schedulers' own; one made huge by hand must not make every poll huge.
    names = [shorten(_text(name), 200) for name in cast(list[Any], members) if _text(name) != status.leader]
    others = int(seen) - len(names) - (1 if status.leader else 0)
    return Panel(status, names[:STANDBYS_SHOWN], more=max(0, others))
