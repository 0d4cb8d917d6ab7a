"""What ``rqrcron info`` shows: a snapshot of the registry and its plain-text rendering."""

from __future__ import annotations

import math
import time
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
from .registry import load_jobs, read_pause
from .status import describe_pause
from .store import all_ids
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


def snapshot(connection: Redis, queues: tuple[str, ...] = ()) -> Snapshot:
    """Read every job (pipelined), the lock holder and its last heartbeat."""
    ids, bad = all_ids(connection)
    jobs, invalid, _missing = load_jobs(connection, ids)
    invalid.update({job_id: "the id is not UTF-8 text" for job_id in bad})
    now = epoch_of_time_reply(connection.time())
    rows = [_row(job, now) for job in jobs]
    rows += [
        Row(job_id, "?", "invalid", "-", queue, error)
        for (job_id, error), queue in zip(invalid.items(), _stored_queues(connection, list(invalid)), strict=True)
    ]
    if queues:
        rows = [row for row in rows if row.queue in queues]
    rows.sort(key=lambda row: row.id)
    holder = SchedulerLock.holder(connection)
    age = None
    if holder is not None:
        seen = connection.zscore(cron_scheduler_registry.get_registry_key(), holder.name)
        if seen is not None and math.isfinite(float(seen)):
            age = max(0.0, time.time() - float(seen))
    return Snapshot(rows, holder, age, paused=read_pause(connection.get(keys.paused())))


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


def _table(rows: list[Row], indent: str, with_queue: bool) -> list[Text]:
    # Whatever Redis holds is shown escaped: an id or error could carry terminal escape sequences.
    ids = [printable(r.id) for r in rows]
    schedules = [printable(r.schedule) for r in rows]
    id_width = max((cell_len(i) for i in ids), default=0)
    schedule_width = max((cell_len(s) for s in schedules), default=0)
    queue_width = max((cell_len(printable(r.queue)) for r in rows), default=0)
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
        lines.append(Text(f"{_count(len(groups), 'queue')}, {_count(len(snap.rows), 'scheduled job')} total"))
    else:
        lines += _table(snap.rows, "", with_queue=True)
        lines.append(Text(f"{_count(len(snap.rows), 'scheduled job')} total"))
    lines.append(_scheduler_line(snap))
    if snap.paused is not None:
        now = snap.taken_at.timestamp()
        lines.append(Text(f"PAUSED: {printable(describe_pause(snap.paused, now))}", style="bold yellow"))
    lines.append(Text(""))
    lines.append(Text(f"Updated: {snap.taken_at}"))
    return Group(*lines)
