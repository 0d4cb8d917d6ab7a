"""What ``rqrcron info`` shows: a snapshot of the registry and its plain-text rendering."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from redis import Redis
from rich.cells import cell_len
from rich.console import Group
from rich.text import Text
from rq import cron_scheduler_registry

from . import keys, limits
from .clock import epoch_of_time_reply, format_time
from .job import RedisCronJob
from .lock import LockHolder, SchedulerLock
from .options import labelled
from .registry import load_jobs, read_pause
from .status import describe_pause
from .store import SortedIds, batched_ids
from .text import printable, relative, shorten

_STATE_WIDTH = len("disabled")
_GAP = "  "


@dataclass
class Row:
    """One line of the listing."""

    id: str
    schedule: str
    state: str  # enabled, disabled, ended, invalid
    next_run: str
    queue: str
    error: str | None = None
    func_name: str | None = None
    #: Runs failed in a row, as the scheduler counted them when it enqueued the next run.
    failures: int = 0
    #: Seconds from the snapshot to the next run (negative: overdue), or None.
    next_in: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "schedule": self.schedule,
            "enabled": self.state in ("enabled", "ended"),
            "state": self.state,
            "next_enqueue_time": self.next_run if self.next_run != "-" else None,
            "queue": self.queue,
            "func_name": self.func_name,
            "error": shorten(self.error, limits.MAX_ERROR_CHARS) if self.error else None,
            "consecutive_failures": self.failures,
            "next_in_seconds": None if self.next_in is None else round(self.next_in, 3),
        }


@dataclass
class Snapshot:
    """The registry as one listing sees it."""

    rows: list[Row]
    holder: LockHolder | None
    heartbeat_age: float | None
    taken_at: datetime = field(default_factory=datetime.now)
    #: While every fire is paused: when, by whom, why.
    paused: dict[str, Any] | None = None
    #: How many ids are registered (every job, whatever its queue), and whether ``rows`` holds every
    #: row asked for (a first screen does not).
    registered: int = 0
    complete: bool = True

    def as_json(self) -> dict[str, Any]:
        scheduler = None
        if self.holder is not None:
            scheduler = {
                "name": self.holder.name,
                "fencing_epoch": self.holder.epoch,
                "lock_ttl_ms": self.holder.ttl_ms,
                "heartbeat_age_seconds": self.heartbeat_age,
            }
        return {
            "jobs": [row.as_json() for row in self.rows],
            "scheduler": scheduler,
            "updated": self.taken_at.isoformat(),
            "paused": self.paused,
        }


def _row(job: RedisCronJob, now: float) -> Row:
    state = "enabled" if job.enabled else "disabled"
    if job.enabled and job.state().startswith("ended"):
        state = "ended"
    next_run = format_time(job.next_enqueue_time) if job.enabled and job.next_enqueue_time else "-"
    error = job.last_error
    if error:
        state = "invalid"
    next_in = job.next_enqueue_time.timestamp() - now if next_run != "-" and job.next_enqueue_time else None
    return Row(
        job.id,
        job.describe_schedule(),
        state,
        next_run,
        job.queue_name,
        error,
        job.func_name,
        job.consecutive_failures,
        next_in,
    )


#: Jobs read (and printed) per page by the listings.
PAGE = 1000


def snapshot(
    connection: Redis, queues: tuple[str, ...] = (), limit: int | None = None, labels: Mapping[str, str] | None = None
) -> Snapshot:
    """Read the jobs (pipelined, a page at a time), the lock holder and its last heartbeat.

    ``limit``: read only until that many rows are found (the first by id): a first screen of a
    registry of any size.
    """
    ids = SortedIds(connection)
    now = epoch_of_time_reply(connection.time())
    rows: list[Row] = []
    for page in pages(connection, ids, ids.bad, queues, now, labels=labels):
        rows += page
        if limit is not None and len(rows) > limit:
            break
    snap = header(connection)
    snap.rows = rows if limit is None else rows[:limit]
    snap.registered = len(ids) + len(ids.bad)
    snap.complete = len(snap.rows) == len(rows)
    return snap


def header(connection: Redis) -> Snapshot:
    """A snapshot without rows: the lock holder, its last heartbeat, the pause."""
    holder = SchedulerLock.holder(connection)
    age = None
    if holder is not None:
        seen = connection.zscore(cron_scheduler_registry.get_registry_key(), holder.name)
        if seen is not None and math.isfinite(float(seen)):
            age = max(0.0, time.time() - float(seen))
    return Snapshot([], holder, age, paused=read_pause(connection.get(keys.paused())))


def pages(
    connection: Redis,
    ids: Iterable[bytes],
    bad: list[str],
    queues: tuple[str, ...],
    now: float,
    size: int = PAGE,
    labels: Mapping[str, str] | None = None,
) -> Iterator[list[Row]]:
    """The rows of ``ids`` (in id order, see `SortedIds`) a page at a time, each page sorted by id; the
    ids that are not UTF-8 text (``bad``) in the first page. With ``labels``, only the jobs that have
    them (a record that cannot be read has none)."""
    extra = [] if labels else [Row(job_id, "?", "invalid", "-", "?", "the id is not UTF-8 text") for job_id in bad]
    for part in batched_ids(ids, size, at_least_one=True):
        page = rows_of(connection, [each.decode() for each in part], queues, now, labels) + extra
        if extra:
            page = [row for row in page if not queues or row.queue in queues]
            page.sort(key=lambda row: row.id)
            extra = []
        yield page


def rows_of(
    connection: Redis, ids: list[str], queues: tuple[str, ...], now: float, labels: Mapping[str, str] | None = None
) -> list[Row]:
    """The rows of some jobs, read in one pipelined round trip (two if some cannot be read)."""
    jobs, invalid, _missing = load_jobs(connection, ids)
    rows = [_row(job, now) for job in jobs if labelled(job.labels, labels)]
    if labels:
        invalid = {}  # its labels cannot be read: it has none
    rows += [
        Row(job_id, "?", "invalid", "-", queue, error)
        for (job_id, error), queue in zip(invalid.items(), _stored_queues(connection, list(invalid)), strict=True)
    ]
    if queues:
        rows = [row for row in rows if row.queue in queues]
    rows.sort(key=lambda row: row.id)
    return rows


def queue_groups(connection: Redis, ids: Iterable[bytes], size: int = PAGE) -> dict[str, list[bytes]]:
    """Ids by the queue their record names ('?' if it cannot be read), for ``info -R``; ids whose
    record is gone are left out."""
    groups: dict[str, list[bytes]] = {}
    for part in batched_ids(ids, size):
        with connection.pipeline(transaction=False) as pipe:
            for each in part:
                pipe.hget(keys.job(each.decode()), "queue_name")
            found = pipe.execute(raise_on_error=False)
        for each, raw in zip(part, found, strict=True):
            if raw is None:
                continue
            queue = "?" if isinstance(raw, Exception) or not raw else _text(raw)
            groups.setdefault(queue, []).append(each)
    return groups


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _stored_queues(connection: Redis, ids: list[str]) -> list[str]:
    """The queue each unreadable record names, as stored ('?' if none can be read): filtering by queue
    must not hide the jobs that need attention."""
    if not ids:
        return []
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(keys.job(job_id), "queue_name")
        found = pipe.execute(raise_on_error=False)
    return [raw.decode("utf-8", "replace") if isinstance(raw, bytes) and raw else "?" for raw in found]


_STYLES = {"enabled": "green", "disabled": "yellow", "invalid": "bold red"}


def _pad(text: str, width: int) -> str:
    """``text`` padded to ``width`` terminal cells (a CJK character or an emoji takes two)."""
    return text + " " * max(0, width - cell_len(text))


def _table(rows: list[Row], indent: str, with_queue: bool, widths: list[int] | None = None) -> list[Text]:
    """The lines of ``rows``; ``widths`` (id, schedule, queue) carries the column widths across the pages
    of one table, widened as needed."""
    # Whatever Redis holds is shown escaped: an id or error could carry terminal escape sequences.
    ids = [printable(r.id) for r in rows]
    schedules = [printable(r.schedule) for r in rows]
    if widths is None:
        widths = [0, 0, 0]
    widths[0] = max([widths[0], *(cell_len(i) for i in ids)])
    widths[1] = max([widths[1], *(cell_len(s) for s in schedules)])
    widths[2] = max([widths[2], *(cell_len(printable(r.queue)) for r in rows)])
    id_width, schedule_width, queue_width = widths
    lines = []
    for r, shown_id, schedule in zip(rows, ids, schedules, strict=True):
        line = Text(indent)
        line.append(_pad(shown_id, id_width) + _GAP)
        line.append(_pad(schedule, schedule_width) + _GAP)
        line.append(r.state.ljust(_STATE_WIDTH), style=_STYLES.get(r.state))
        line.append(_GAP)
        queue = printable(r.queue)
        if r.error:
            line.append(f"error: {printable(shorten(r.error, limits.MAX_ERROR_CHARS))}", style="red")
            if with_queue and r.queue != "?":
                line.append(_GAP + queue)
        else:
            line.append(r.next_run.ljust(27) if with_queue else r.next_run)
            if with_queue:
                line.append(_GAP + _pad(queue, queue_width))
        if r.next_in is not None:
            line.append(_GAP + relative(r.next_in), style="dim")
        if r.failures:
            line.append(_GAP + ("1 failure" if r.failures == 1 else f"{r.failures} failures in a row"), style="red")
        line.rstrip()
        lines.append(line)
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _scheduler_line(snap: Snapshot) -> Text:
    if snap.holder is None:
        return Text("Scheduler: none running (the lock is free)", style="yellow")
    # Short enough for an 80-column terminal with a typical scheduler name.
    parts = [f"Scheduler: {printable(snap.holder.name)} (epoch {snap.holder.epoch})"]
    if snap.holder.ttl_ms >= 0:
        parts.append(f"lock expires in {snap.holder.ttl_ms / 1000:.0f}s")
    if snap.heartbeat_age is not None:
        parts.append(f"heartbeat {snap.heartbeat_age:.0f}s ago")
    return Text(", ".join(parts))


def render_info(snap: Snapshot, by_queue: bool) -> Group:
    """The listing in the specification's layout, as rich text (plain when not a terminal)."""
    lines: list[Text] = []
    if by_queue:
        groups: dict[str, list[Row]] = {}
        for row in snap.rows:
            groups.setdefault(row.queue, []).append(row)
        for queue in sorted(groups):
            lines.append(Text(f"{printable(queue)}:"))
            lines += _table(groups[queue], "  ", with_queue=False)
            lines.append(Text(""))
        lines.append(_total(snap, len(groups), len(snap.rows)))
    else:
        lines += _table(snap.rows, "", with_queue=True)
        lines.append(_total(snap, None, len(snap.rows)))
    lines += _footer(snap)
    return Group(*lines)


def _total(snap: Snapshot, queues: int | None, rows: int) -> Text:
    total = f"{_count(rows, 'scheduled job')} total"
    if queues is not None:
        total = f"{_count(queues, 'queue')}, {total}"
    if not snap.complete:
        total = f"the first {rows:,} by id of {_count(snap.registered, 'registered job')} (rqrcron info lists them all)"
    return Text(total)


def _footer(snap: Snapshot) -> list[Text]:
    lines = [_scheduler_line(snap)]
    if snap.paused is not None:
        now = snap.taken_at.timestamp()
        lines.append(Text(f"PAUSED: {printable(describe_pause(snap.paused, now))}", style="bold yellow"))
    lines.append(Text(""))
    lines.append(Text(f"Updated: {snap.taken_at}"))
    return lines


def stream_info(
    connection: Redis,
    queues: tuple[str, ...],
    by_queue: bool,
    page_size: int = PAGE,
    labels: Mapping[str, str] | None = None,
) -> Iterator[list[Text]]:
    """`render_info`'s lines for the whole registry, a page at a time: a million jobs are never held
    at once (their ids are sorted in bounded memory, see `SortedIds`), and the first screen comes
    after one page is read."""
    ids = SortedIds(connection)
    bad = ids.bad
    now = epoch_of_time_reply(connection.time())
    shown = 0
    if by_queue:
        groups = queue_groups(connection, ids, page_size)
        if bad:
            groups.setdefault("?", [])
        named = 0
        for queue in sorted(groups):
            if queues and queue not in queues:
                continue
            widths = [0, 0, 0]
            header_done = False
            for page in pages(connection, groups[queue], bad if queue == "?" else [], queues, now, page_size, labels):
                if not page:
                    continue
                if not header_done:
                    yield [Text(f"{printable(queue)}:")]
                    header_done = True
                    named += 1
                shown += len(page)
                yield _table(page, "  ", with_queue=False, widths=widths)
            if header_done:
                yield [Text("")]
        total = Text(f"{_count(named, 'queue')}, {_count(shown, 'scheduled job')} total")
    else:
        widths = [0, 0, 0]
        for page in pages(connection, ids, bad, queues, now, page_size, labels):
            shown += len(page)
            yield _table(page, "", with_queue=True, widths=widths)
        total = Text(f"{_count(shown, 'scheduled job')} total")
    yield [total, *_footer(header(connection))]
