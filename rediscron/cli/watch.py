"""``rqrcron status``, ``info``, ``show`` and ``history``: watching the registry and the scheduler."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NoReturn, cast
from zoneinfo import ZoneInfo

import click
from redis import Redis
from redis.exceptions import RedisError
from rich.text import Text

from .. import keys, limits
from ..clock import epoch_of_time_reply, from_epoch
from ..errors import CorruptJobError
from ..fields import OPTIONS
from ..preview import runs
from ..status import MAX_OVERDUE, read_status, render_status
from ..store import SortedIds
from ..text import json_stream, printable, relative, shorten, to_json
from ..view import header, pages, render_info, snapshot, stream_info
from .base import (
    CONTEXT,
    Settings,
    finite_seconds,
    label_option,
    main,
    operation,
    text_id,
)
from .preview import echo_runs


@main.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable.")
@click.option(
    "--max-overdue",
    type=click.FloatRange(min=0),
    default=MAX_OVERDUE,
    show_default=True,
    metavar="SECONDS",
    callback=finite_seconds,
    help="A due slot waiting longer than this is a problem.",
)
@click.pass_obj
def status(settings: Settings, as_json: bool, max_overdue: float) -> None:
    """Show the scheduler's health: leader, lock, heartbeat, fires/min, lag, job counts, failing jobs.

    Exits 1 when something is wrong, so it can serve as a health check: no scheduler holds
    the lock, the leader is dead (its process is gone from this host) or its heartbeat is
    stale, a due slot waits longer than --max-overdue, or the registry came back empty
    after having had jobs. Each problem is a 'problem' line.

    \b
    Examples:
      rqrcron status
      rqrcron status --max-overdue 300 --json
    """
    with operation():
        report = read_status(settings.connection, max_overdue=max_overdue)
    if as_json:
        click.echo(to_json(report.as_json(), indent=2))
    else:
        click.echo(render_status(report))
    if report.problems:
        raise SystemExit(1)


@main.command(context_settings=CONTEXT)
@click.argument("queues", nargs=-1)
@click.option("-R", "--by-queue", is_flag=True, help="Group the jobs by queue.")
@click.option(
    "-i",
    "--interval",
    type=click.FloatRange(min=0.1),
    default=None,
    metavar="SECONDS",
    callback=finite_seconds,
    help="Redraw every SECONDS until Ctrl-C.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable rows (one JSON document per poll).")
@label_option("Only the jobs with this label (repeatable: all of them).")
@click.pass_obj
def info(
    settings: Settings,
    queues: tuple[str, ...],
    by_queue: bool,
    interval: float | None,
    as_json: bool,
    labels: dict[str, str] | None,
) -> None:
    """Show the registered cron jobs (enabled or not) and which scheduler runs them.

    \b
    Examples:
      rqrcron info
      rqrcron info -R metrics maintenance
      rqrcron info -i 1
      rqrcron info --json
      rqrcron info --label team=billing
    """
    connection = settings.connection

    def render(limit: int | None = None) -> Any:
        # Watching: an outage is shown and waited out, not fatal.
        try:
            snap = snapshot(connection, queues, limit, labels)
        except RedisError as exc:
            message = f"Redis unreachable ({exc}); retrying every {interval:g}s. Updated: {datetime.now()}"
            return to_json({"error": message}) if as_json else Text(message, style="red")
        if as_json:
            return to_json(snap.as_json(), indent=None)
        return render_info(snap, by_queue)

    if interval is None:
        with operation():
            _stream(connection, queues, by_queue, as_json, labels=labels)
        return
    if as_json or not sys.stdout.isatty():
        try:
            while True:
                try:
                    _stream(connection, queues, by_queue, as_json, indent=None, labels=labels)
                except RedisError:
                    _print(render(), as_json)
                time.sleep(interval)
        except KeyboardInterrupt:
            return
    from rich.console import Console
    from rich.live import Live

    console = Console()
    # A live view shows one screen: the first jobs by id, however many there are.
    screen = max(10, console.height - 8)
    try:
        with Live(render(screen), console=console, auto_refresh=False, screen=False, vertical_overflow="crop") as live:
            while True:
                time.sleep(interval)
                live.update(render(screen), refresh=True)
    except KeyboardInterrupt:
        return


def _stream(
    connection: Redis,
    queues: tuple[str, ...],
    by_queue: bool,
    as_json: bool,
    indent: int | None = 2,
    labels: Mapping[str, str] | None = None,
) -> None:
    """Print the whole listing a page at a time (see `view.stream_info`)."""
    if as_json:
        ids = SortedIds(connection)
        now = epoch_of_time_reply(connection.time())
        rows = ([row.as_json() for row in page] for page in pages(connection, ids, ids.bad, queues, now, labels=labels))

        def tail() -> dict[str, Any]:
            return {k: v for k, v in header(connection).as_json().items() if k != "jobs"}

        for chunk in json_stream({}, "jobs", rows, tail, indent=indent):
            click.echo(chunk, nl=False)
        click.echo()
        return
    if not sys.stdout.isatty():
        # Plain text as a terminal-less console prints it, without rich laying out a thousand lines a page.
        for lines in stream_info(connection, queues, by_queue, labels=labels):
            if lines:
                click.echo("\n".join(line.plain for line in lines))
        return
    from rich.console import Console, Group

    console = Console(highlight=False, soft_wrap=True)
    for lines in stream_info(connection, queues, by_queue, labels=labels):
        console.print(Group(*lines))


def _print(rendered: Any, as_json: bool) -> None:
    if as_json:
        click.echo(rendered)
        return
    from rich.console import Console

    Console(highlight=False, soft_wrap=True).print(rendered)


@main.command(context_settings=CONTEXT)
@click.argument("job_id", metavar="ID", callback=lambda ctx, param, value: text_id(value))
@click.option("--json", "as_json", is_flag=True, help="Print the stored fields as JSON.")
@click.option(
    "-n", "--next", "count", type=click.IntRange(0, 1000), default=0, help="Also list its next N runs (DST noted)."
)
@click.pass_obj
def show(settings: Settings, job_id: str, as_json: bool, count: int) -> None:
    """Show one cron job: its definition, schedule, state and recent runs.

    \b
    Example:
      rqrcron show metric:pm25 --next 5
    """
    with operation():
        try:
            job = settings.registry.fetch(job_id)
        except CorruptJobError as exc:
            _show_raw(settings.connection, job_id, exc, as_json)
        history = job.get_history(limit=5)
        stats = job.get_stats()
        now = epoch_of_time_reply(settings.connection.time())
    after = None if job.enabled else from_epoch(now)  # a disabled job: the runs it would have if enabled now
    upcoming_runs = runs([int(at.timestamp()) for at in job.next_runs(count, after=after)], job.timezone)
    fields = job.to_dict()
    if as_json:
        if "last_error" in fields:
            fields["last_error"] = shorten(str(fields["last_error"]), limits.MAX_ERROR_CHARS)
        click.echo(
            to_json(
                {
                    **fields,
                    "state": shorten(job.state(), 400),
                    "last_status": stats.last_status,
                    "consecutive_failures": stats.consecutive_failures,
                    "drops": stats.drops,
                    "history": [
                        {
                            "rq_job_id": e.rq_job_id,
                            "slot": e.slot,
                            "enqueued_at": e.enqueued_at.isoformat(),
                            "status": e.status,
                        }
                        for e in history
                    ],
                    "next_runs": [
                        {"at": run.at.isoformat(), "local": run.local.isoformat(), "note": run.note or None}
                        for run in upcoming_runs
                    ],
                },
                indent=2,
                default=str,
            )
        )
        return
    rows = [
        ("id", job.id),
        ("function", job.func_name),
        ("queue", job.queue_name),
        ("schedule", job.describe_schedule()),
        ("state", shorten(job.state(), 400)),
        ("next run", _when(job.next_enqueue_time, now, job.timezone) if job.enabled else "-"),
        ("last run", _when(job.latest_enqueue_time, now, job.timezone)),
        ("last status", stats.last_status or "-"),
        ("runs", f"{stats.runs} scheduled, {stats.consecutive_failures} consecutive failure(s)"),
        ("not run", f"{stats.missed} missed slot(s), {stats.overlap_skipped} skipped for overlap"),
        ("args", fields["args"]),
        ("kwargs", fields["kwargs"]),
    ]
    for option in ("meta", "job_timeout", "result_ttl", "ttl", "failure_ttl", *OPTIONS):
        if option in fields:
            rows.append((option, str(fields[option])))
    rows += [
        ("created", _when(job.created_at)),
        ("updated", _when(job.updated_at)),
        ("revision", f"{job.revision} (from a counter shared by all jobs; it grows on every write)"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        click.echo(f"{name.ljust(width)}  {printable(str(value))}")
    if history:
        click.echo("recent runs:")
        for entry in history:
            click.echo(f"  {_moment(entry.enqueued_at)}  {entry.status:9}  {printable(entry.rq_job_id)}")
    _echo_drops(stats.drops[-5:])
    if count:
        click.echo(f"next {count} runs{'' if job.enabled else ' (if it were enabled now)'}:")
        echo_runs(upcoming_runs, job.timezone, as_json=False)


def _moment(when: datetime) -> str:
    """A UTC time to the second, or to the millisecond when it has a fraction (one format for all output)."""
    if when.microsecond:
        return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z"
    return f"{when:%Y-%m-%dT%H:%M:%S}Z"


def _when(moment: datetime | None, now: float | None = None, zone: str = "UTC") -> str:
    """A time as `_moment()` shows it, then in the job's zone and relative to now ('-' for none).

    ``2026-11-24T08:00:00Z (09:00 CET in Europe/Berlin, in 13 h)``
    """
    if moment is None:
        return "-"
    notes = []
    if zone != "UTC":
        local = moment.astimezone(ZoneInfo(zone))
        notes.append(f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()} in {zone}")
    if now is not None:
        notes.append(relative(moment.timestamp() - now))
    return _moment(moment) + (f" ({', '.join(notes)})" if notes else "")


def _show_raw(connection: Redis, job_id: str, error: CorruptJobError, as_json: bool) -> NoReturn:
    """A record that cannot be read: its fields as stored, and why (exit 1)."""
    raw = cast(dict[bytes, bytes], connection.hgetall(keys.job(job_id)))
    fields = {
        key.decode("utf-8", "backslashreplace"): value.decode("utf-8", "backslashreplace")
        for key, value in sorted(raw.items())
    }
    if as_json:
        click.echo(to_json({"id": job_id, "error": error.message, "raw": fields}, indent=2))
    else:
        click.echo(f"{printable(job_id)}: this record cannot be read: {printable(shorten(error.message, 400))}")
        click.echo("stored fields:")
        width = max((len(printable(key)) for key in fields), default=0)
        for key, value in fields.items():
            click.echo(f"  {printable(key).ljust(width)}  {printable(shorten(value, 400))}")
        click.echo("Fix the field (the scheduler retries it every minute), register the job again, or `rqrcron rm` it.")
    sys.exit(1)


def _echo_drops(drops: list[dict[str, Any]]) -> None:
    if drops:
        click.echo("slots not run:")
    for drop in drops:
        count = f"{drop.get('slots')}{'' if drop.get('exact', True) else '+'}"
        span = drop.get("from") if drop.get("from") == drop.get("to") else f"{drop.get('from')} .. {drop.get('to')}"
        click.echo(printable(f"  {drop.get('at')}  {count} slot(s) {span}: {drop.get('reason')}"))


@main.command(context_settings=CONTEXT)
@click.argument("job_id", metavar="ID", callback=lambda ctx, param, value: text_id(value))
@click.option("-n", "--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.pass_obj
def history(settings: Settings, job_id: str, limit: int) -> None:
    """List the recent RQ jobs a cron job spawned, newest first, with their status.

    \b
    Example:
      rqrcron history metric:pm25 -n 5
    """
    with operation():
        job = settings.registry.fetch(job_id)
        entries = job.get_history(limit)
        stats = job.get_stats()
    if not entries:
        click.echo(f"{printable(job_id)}: no runs recorded yet")
    for entry in entries:
        slot = _moment(from_epoch(entry.slot)) if entry.slot else "- (manual)"
        click.echo(f"{_moment(entry.enqueued_at):24}  slot {slot:20}  {entry.status:9}  {printable(entry.rq_job_id)}")
    if entries:
        last = stats.last_fire_time.strftime("%Y-%m-%dT%H:%M:%SZ") if stats.last_fire_time else "-"
        click.echo(
            f"last fire {last}, last status {stats.last_status}, {stats.consecutive_failures} consecutive failure(s)"
        )
    _echo_drops(stats.drops[-limit:])
