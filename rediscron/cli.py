"""The ``rqrcron`` command line: watch, operate and run rediscron's cron jobs.

Conventions follow rq's own CLI: ``-u/--url``, ``-c/--config`` (an rq settings module),
``-P/--path``; exit status 0 on success, 1 when Redis is unreachable or an operation
fails (one line on stderr, never a traceback), 2 on a usage error.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, cast
from zoneinfo import ZoneInfo

import click
from redis import Redis
from redis.exceptions import NoPermissionError, RedisError
from rich.text import Text
from rq.cli.helpers import get_redis_from_config, read_config_file

from . import keys, limits, sync
from .__version__ import __version__
from .clock import epoch_of_time_reply, from_epoch
from .connection import from_url, mask, redact
from .errors import CorruptJobError, InvalidJobError, RediscronError
from .fields import FIELDS, OPTIONS
from .imports import DEFAULT_ALLOWED_IMPORTS, ImportAllowlist, checked_where_importable
from .logs import JsonFormatter
from .metrics import MetricsServer
from .options import CATCHUP_MODES, OVERLAP_MODES
from .registry import Registry
from .scheduler import RedisCronScheduler
from .status import MAX_OVERDUE, read_status, render_status
from .sync import SyncError
from .text import printable, relative, shorten, to_json
from .view import render_info, snapshot

DEFAULT_URL = "redis://localhost:6379/0"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Settings:
    """What the group options resolve to; the connection is made on first use."""

    def __init__(self, url: str | None, config: str | None) -> None:
        self.url = url
        self.config = config
        self._connection: Redis | None = None

    def describe(self) -> str:
        return self.url or (f"the Redis of config {self.config}" if self.config else "")

    @property
    def connection(self) -> Redis:
        if self._connection is None:
            self._connection = connect(self.url, self.config)
        return self._connection

    @property
    def registry(self) -> Registry:
        return Registry(self.connection)


def fail(message: str) -> NoReturn:
    """Exit 1 with a one-line message on stderr."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def connect(url: str | None, config: str | None) -> Redis:
    """A checked connection: ``--url``, else the config's settings, else the environment."""
    try:
        if url is None and config:
            try:
                settings: dict[str, Any] = read_config_file(config)  # type: ignore[no-untyped-call]
            except (Exception, SystemExit) as exc:
                fail(f"cannot import config module {config}: {exc!r}")
            if (
                settings.get("REDIS_URL") is None
                and settings.get("SENTINEL") is None
                and not any(k.startswith("REDIS_") for k in settings)
            ):
                fail(f"config {config} sets neither REDIS_URL, SENTINEL nor REDIS_HOST/PORT/...")
            try:
                connection = cast(Redis, get_redis_from_config(settings))  # type: ignore[no-untyped-call]
            except (RedisError, OSError):
                raise
            except Exception as exc:
                fail(f"config {config} has unusable Redis settings: {exc!r}")
            # rq's helper sets no timeouts; a Redis that stalls must be an error, not a hang.
            kwargs = connection.connection_pool.connection_kwargs
            if kwargs.get("socket_timeout") is None:
                kwargs["socket_timeout"] = 10
            if kwargs.get("socket_connect_timeout") is None:
                kwargs["socket_connect_timeout"] = 5
        else:
            url = url or os.environ.get("RQ_REDIS_URL") or os.environ.get("REDIS_URL") or DEFAULT_URL
            if "/" in url.partition("://")[2].partition("?")[0].rpartition("@")[0]:
                # Parsed as is, part of the password would be taken for the host, and shown in errors.
                raise click.UsageError(
                    f"the Redis URL {redact(url)} has a '/' before its host: percent-encode "
                    "a '/' in the user name or password as %2F (and '@' as %40)"
                )
            try:
                connection = from_url(url)
            except ValueError as exc:
                # Never tried: a malformed URL is a usage error, not an unreachable server.
                if "://" not in url or "scheme" in str(exc):
                    raise click.UsageError(
                        f"the Redis URL {redact(url)} needs a scheme: redis://, rediss://, unix://, redis+sentinel:// "
                        "or rediss+sentinel:// (e.g. redis://localhost:6379/0)"
                    ) from None
                raise click.UsageError(f"the Redis URL {redact(url)} is not usable: {mask(str(exc), url)}") from None
        connection.ping()
    except (RedisError, ValueError, OSError) as exc:
        where = redact(url) if url else f"the Redis of config {config}"
        hint = (
            " (is a Redis server running there? `python -m rediscron.testing 6379` starts a throwaway one)"
            if "refused" in str(exc).lower()
            else ""
        )
        fail(f"cannot reach Redis at {where}: {mask(str(exc), url) if url else exc}{hint}")
    return connection


def usage_error(message: str) -> NoReturn:
    """Exit 2 with a one-line message on stderr: the input was refused, nothing was tried."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


@contextmanager
def operation() -> Iterator[None]:
    """Turn library and Redis errors into one line on stderr, never a traceback.

    A refused input (a bad interval, cron, zone or file) exits 2, like any usage error;
    everything else (Redis, a missing job) exits 1.
    """
    try:
        yield
    except (InvalidJobError, SyncError) as exc:
        usage_error(printable(str(exc)))
    except RediscronError as exc:
        fail(printable(str(exc)))
    except NoPermissionError as exc:
        fail(
            f"Redis refused the command to this user (ACL): {exc}. docs/operations.md lists the rights "
            "each command needs"
        )
    except RedisError as exc:
        fail(f"Redis error: {exc}")


def read_argument(value: str, what: str) -> str:
    """``value`` itself, or the text of file ``@PATH``, or standard input for ``-``."""
    if value == "-":
        return sys.stdin.read()
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(
                f"cannot read {what} from {value[1:]}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
    return value


def json_option(name: str) -> Callable[[click.Context, click.Parameter, str | None], Any]:
    def parse(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        if value is None:
            return None
        value = read_argument(value, name)
        try:
            return json.loads(value)
        except RecursionError:
            raise click.BadParameter("nested too deeply") from None
        except ValueError as exc:
            raise click.BadParameter(f"not valid JSON ({exc}): {printable(shorten(value, 200))}") from None

    return parse


def finite_seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"must be a finite number of seconds, not {value}")
    return value


class _Group(click.Group):
    """Says where the connection options go when one is given after the command."""

    _BEFORE = ("-u", "--url", "-c", "--config", "-P", "--path")

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.NoSuchOption as exc:
            if exc.option_name not in self._BEFORE:
                raise
            raise click.NoSuchOption(
                exc.option_name,
                f"No such option: {exc.option_name} here; it goes before the command: "
                f"rqrcron {exc.option_name} ... COMMAND ...",
                ctx=exc.ctx,
            ) from None


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="rqrcron")
@click.option(
    "-u",
    "--url",
    default=None,
    metavar="URL",
    help=f"Redis URL: redis://, rediss://, unix:// or redis+sentinel://. "
    f"Default: $RQ_REDIS_URL, $REDIS_URL, {DEFAULT_URL}.",
)
@click.option(
    "-c",
    "--config",
    default=None,
    metavar="MODULE",
    help="An rq settings module (REDIS_URL, SENTINEL, REDIS_HOST/PORT/DB/PASSWORD/SSL...).",
)
@click.option(
    "-P",
    "--path",
    "paths",
    multiple=True,
    default=["."],
    show_default=True,
    metavar="DIR",
    help="Directory added to sys.path so job functions and config modules import (repeatable).",
)
@click.pass_context
def main(ctx: click.Context, url: str | None, config: str | None, paths: tuple[str, ...]) -> None:
    """Watch, operate and run rediscron's Redis-stored cron jobs.

    \b
    Examples:
      rqrcron info -R -i 1
      rqrcron add metric:pm25 myapp.tasks.rebuild_metric --queue metrics --interval 300 --args '["pm25"]'
      rqrcron -u redis://localhost:6379/0 scheduler
    """
    for path in reversed(paths):
        sys.path.insert(0, os.path.abspath(path))
    ctx.obj = Settings(url, config)


def text_id(value: str) -> str:
    """An ID argument as text; one that is not valid text (stray bytes) names no job `show` can read."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        shown = printable(value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))
        raise click.BadParameter(
            f"{shown!r} is not valid UTF-8 text, so no job has it; `rqrcron rm` removes such a stray entry"
        ) from None
    return value


def _check_name(value: str) -> str:
    if value and (len(value) > 200 or re.search(r"[\s\x00-\x1f\x7f|]", value)):
        raise click.BadParameter("must be at most 200 characters, without spaces, control characters or '|'")
    return value


# -- watching -------------------------------------------------------------------------------------


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
@click.pass_obj
def info(settings: Settings, queues: tuple[str, ...], by_queue: bool, interval: float | None, as_json: bool) -> None:
    """Show the registered cron jobs (enabled or not) and which scheduler runs them.

    \b
    Examples:
      rqrcron info
      rqrcron info -R metrics maintenance
      rqrcron info -i 1
      rqrcron info --json
    """
    connection = settings.connection

    def render() -> Any:
        if interval is not None:
            # Watching: an outage is shown and waited out, not fatal.
            try:
                snap = snapshot(connection, queues)
            except RedisError as exc:
                message = f"Redis unreachable ({exc}); retrying every {interval:g}s. Updated: {datetime.now()}"
                return to_json({"error": message}) if as_json else Text(message, style="red")
        else:
            with operation():
                snap = snapshot(connection, queues)
        if as_json:
            return to_json(snap.as_json(), indent=None if interval else 2)
        return render_info(snap, by_queue)

    if interval is None:
        _print(render(), as_json)
        return
    if as_json or not sys.stdout.isatty():
        try:
            while True:
                _print(render(), as_json)
                time.sleep(interval)
        except KeyboardInterrupt:
            return
    from rich.console import Console
    from rich.live import Live

    console = Console()
    try:
        with Live(render(), console=console, auto_refresh=False, screen=False, vertical_overflow="crop") as live:
            while True:
                time.sleep(interval)
                live.update(render(), refresh=True)
    except KeyboardInterrupt:
        return


def _print(rendered: Any, as_json: bool) -> None:
    if as_json:
        click.echo(rendered)
        return
    from rich.console import Console

    Console(highlight=False, soft_wrap=True).print(rendered)


@main.command(context_settings=CONTEXT)
@click.argument("job_id", metavar="ID", callback=lambda ctx, param, value: text_id(value))
@click.option("--json", "as_json", is_flag=True, help="Print the stored fields as JSON.")
@click.pass_obj
def show(settings: Settings, job_id: str, as_json: bool) -> None:
    """Show one cron job: its definition, schedule, state and recent runs.

    \b
    Example:
      rqrcron show metric:pm25
    """
    with operation():
        try:
            job = settings.registry.fetch(job_id)
        except CorruptJobError as exc:
            _show_raw(settings.connection, job_id, exc, as_json)
        history = job.get_history(limit=5)
        stats = job.get_stats()
        now = epoch_of_time_reply(settings.connection.time())
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


# -- operating ------------------------------------------------------------------------------------


def _iso_time(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time, e.g. 2030-01-01T09:00:00+01:00") from None


def _field_option(name: str, *flags: str, **settings: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The option of ``rqrcron add`` that sets field ``name``: its help and default come from `fields.FIELDS`."""
    field = FIELDS[name]
    settings.setdefault("help", field.doc)
    if field.default is not None and not settings.get("is_flag"):
        settings.setdefault("default", field.default)
        settings.setdefault("show_default", True)
    return click.option(*(flags or (f"--{name.replace('_', '-')}",)), name, **settings)


def _callback_value(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """A dotted path, or a JSON object ``{"func": PATH, "timeout": SECONDS}``."""
    if value is None or not value.lstrip().startswith("{"):
        return value
    return json_option(param.name or "callback")(ctx, param, value)


def _json_field(name: str, what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return _field_option(name, callback=json_option(name), metavar="JSON", help=f"{what} (@FILE, - as for --args).")


#: How ``rqrcron add`` takes each field of `fields.FIELDS` but the id and the function (its arguments);
#: a test holds the two to each other.
ADD_OPTIONS = {
    "queue_name": _field_option("queue_name", "-q", "--queue", required=True),
    "cron": _field_option(
        "cron", metavar="EXPR", help="Cron expression, e.g. '*/5 * * * *' (a sixth field is seconds)."
    ),
    "interval": _field_option("interval", type=int, metavar="SECONDS", help="Run every SECONDS."),
    "args": _field_option(
        "args",
        callback=json_option("args"),
        metavar="JSON",
        help="Positional arguments, a JSON list; @FILE reads it from FILE, - from standard input.",
    ),
    "kwargs": _json_field("kwargs", "Keyword arguments, a JSON object"),
    "meta": _json_field("meta", "RQ job meta, a JSON object"),
    "job_timeout": _field_option("job_timeout", "--timeout", type=int, metavar="SECONDS"),
    "result_ttl": _field_option("result_ttl", type=int, metavar="SECONDS"),
    "ttl": _field_option("ttl", type=int, metavar="SECONDS"),
    "failure_ttl": _field_option(
        "failure_ttl", type=int, metavar="SECONDS", help="How long rq keeps a failed run (default: rq's, one year)."
    ),
    "enabled": _field_option(
        "enabled",
        "--disabled/--enabled",
        default=None,
        help="Store it disabled (or enabled); an existing job keeps its state unless one is given.",
    ),
    "timezone": _field_option("timezone", "--timezone", "--tz", metavar="ZONE"),
    "misfire_grace_time": _field_option("misfire_grace_time", type=int, metavar="SECONDS"),
    "catchup": _field_option("catchup", type=click.Choice(CATCHUP_MODES)),
    "overlap": _field_option("overlap", type=click.Choice(OVERLAP_MODES)),
    "jitter": _field_option("jitter", type=int, metavar="SECONDS"),
    "start_time": _field_option("start_time", callback=_iso_time, metavar="TIME"),
    "end_time": _field_option("end_time", callback=_iso_time, metavar="TIME"),
    "max_runs": _field_option("max_runs", type=int, metavar="N"),
    "description": _field_option("description", metavar="TEXT"),
    "retry": _json_field("retry", 'Retries of a failed run: a number, or {"max": n, "interval": [seconds...]}'),
    "at_front": _field_option("at_front", is_flag=True, default=None),
    "on_success": _field_option("on_success", metavar="PATH", callback=_callback_value),
    "on_failure": _field_option("on_failure", metavar="PATH", callback=_callback_value),
    "on_stopped": _field_option("on_stopped", metavar="PATH", callback=_callback_value),
    "queue_class": _field_option("queue_class", metavar="PATH"),
    "job_class": _field_option("job_class", metavar="PATH"),
    "serializer": _field_option("serializer", metavar="PATH"),
    "webhooks": _json_field("webhooks", "rq webhooks, a JSON list of Webhook.to_dict() forms"),
}


def _add_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(ADD_OPTIONS.values()):
        command = option(command)
    return command


@main.command(context_settings=CONTEXT)
@click.argument("job_id", metavar="ID", callback=lambda ctx, param, value: text_id(value))
@click.argument("func", metavar="FUNC")
@_add_options
@click.option(
    "--args-file",
    type=click.Path(dir_okay=False, allow_dash=True),
    default=None,
    metavar="FILE",
    help="Read --args from FILE (- for standard input).",
)
@click.option(
    "--kwargs-file",
    type=click.Path(dir_okay=False, allow_dash=True),
    default=None,
    metavar="FILE",
    help="Read --kwargs from FILE (- for standard input).",
)
@click.pass_obj
def add(
    settings: Settings, /, job_id: str, func: str, args_file: str | None, kwargs_file: str | None, **values: Any
) -> None:
    """Create or update (upsert) the cron job ID running FUNC (a dotted path).

    An existing job keeps its enabled state unless --disabled (or --enabled) is given, and
    its next run unless the schedule changed. FUNC, and the callbacks and classes given by
    dotted path, are checked where their package imports (use -P DIR); on a host without the
    app's code only their form is checked, and the output says so.

    \b
    Examples:
      rqrcron add metric:pm25 myapp.tasks.rebuild_metric -q metrics --interval 300 --args '["pm25"]'
      rqrcron add nightly myapp.tasks.vacuum -q maintenance --cron '0 3 * * *' --disabled
      rqrcron add report myapp.tasks.report -q reports --cron '0 9 * * 1-5' --tz Europe/Berlin
      rqrcron add bulk myapp.tasks.load -q etl --interval 3600 --kwargs-file params.json
      rqrcron add sync myapp.tasks.sync -q etl --interval 600 --retry 3 --on-failure myapp.alerts.page
    """
    if (values["cron"] is None) == (values["interval"] is None):
        raise click.UsageError("give exactly one of --cron and --interval")
    values["args"] = _from_file(values["args"], args_file, "args")
    values["kwargs"] = _from_file(values["kwargs"], kwargs_file, "kwargs")
    # An option not given is left to the field's default (and --disabled/--enabled to the stored state).
    given = {name: value for name, value in values.items() if value is not None or name == "enabled"}
    with operation(), checked_where_importable() as unchecked:
        job = settings.registry.register(func, id=job_id, **given)
    state = "enabled" if job.enabled else "disabled"
    nxt = job.to_dict().get("next_enqueue_time", "-") if job.enabled else "-"
    click.echo(f"{printable(job.id)}: {job.describe_schedule()} on {job.queue_name}, {state}, next run {nxt}")
    if unchecked:
        paths = ", ".join(sorted(unchecked))
        click.echo(
            f"Note: not checked here, as its package does not import on this host: {paths}. The worker "
            "imports it; `rqrcron -P DIR add ...` checks it where the code is.",
            err=True,
        )


def _from_file(value: Any, path: str | None, name: str) -> Any:
    """``--args``/``--kwargs`` given as ``--args-file`` instead: read and parsed here."""
    if path is None:
        return value
    if value is not None:
        raise click.UsageError(f"give --{name} or --{name}-file, not both")
    try:
        return json_option(f"{name}-file")(
            click.get_current_context(), cast(click.Parameter, None), "-" if path == "-" else f"@{path}"
        )
    except click.BadParameter as exc:
        raise click.BadParameter(f"{path}: {exc.message}", param_hint=f"--{name}-file") from None


@main.command(context_settings=CONTEXT)
@click.argument("job_id", metavar="ID")
@click.pass_obj
def rm(settings: Settings, job_id: str) -> None:
    """Delete a cron job; no run of it is enqueued once this returns.

    \b
    Example:
      rqrcron rm metric:pm25
    """
    shown = printable(job_id.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))
    with operation():
        existed = settings.registry.delete(job_id)
    if job_id.endswith(":jobs"):
        # No job can have such an id: its key would be another job's history, which is left alone.
        if not existed:
            fail(f"cron job {shown!r} does not exist (ids ending in ':jobs' name rq's history keys)")
        click.echo(f"{shown}: removed its stray index entries (no job can have this id; nothing else was touched)")
        return
    if not existed:
        fail(f"cron job {shown!r} does not exist")
    click.echo(f"{shown}: deleted")


def _toggle(settings: Settings, job_id: str, enable: bool) -> None:
    with operation():
        job = settings.registry.fetch(job_id)
        error = job.last_error
        (job.enable if enable else job.disable)()
    click.echo(f"{printable(job_id)}: {'enabled' if enable else 'disabled'}")
    if enable and error:
        click.echo(
            printable(f"  it was quarantined ({shorten(error, 300)}); the scheduler tries it again at its next slot")
        )


@main.command(context_settings=CONTEXT)
@click.argument("job_id", metavar="ID", required=False)
@click.option("--quarantined", is_flag=True, help="Enable every quarantined job (each is tried again).")
@click.pass_obj
def enable(settings: Settings, job_id: str | None, quarantined: bool) -> None:
    """Enable a cron job: it resumes at its next slot, without catching up.

    A quarantined job is tried again; the scheduler quarantines it anew if its record
    still cannot be used. --quarantined does that for every quarantined job at once.

    \b
    Examples:
      rqrcron enable metric:pm25
      rqrcron enable --quarantined
    """
    if quarantined == (job_id is not None):
        raise click.UsageError("give an ID or --quarantined")
    if job_id is not None:
        _toggle(settings, job_id, True)
        return
    with operation():
        lifted, failed = settings.registry.enable_quarantined()
    for found_id in lifted:
        click.echo(f"{printable(found_id)}: enabled (was quarantined)")
    for found_id, why in failed.items():
        click.echo(f"{printable(found_id)}: not enabled: {printable(shorten(why, 300))}", err=True)
    click.echo(f"{len(lifted)} quarantined job(s) enabled" + (f", {len(failed)} could not be" if failed else ""))
    if failed:
        sys.exit(1)


@main.command(context_settings=CONTEXT)
@click.argument("job_id", metavar="ID", callback=lambda ctx, param, value: text_id(value))
@click.pass_obj
def disable(settings: Settings, job_id: str) -> None:
    """Disable a cron job; no run of it is enqueued once this returns.

    \b
    Example:
      rqrcron disable metric:pm25
    """
    _toggle(settings, job_id, False)


def allow_import_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--allow-import",
        "allow_import",
        multiple=True,
        metavar="PREFIX",
        help=f"Dotted-path prefix (e.g. myapp.jobs) from which {what} may import the classes a job names "
        "(job_class, queue_class, serializer); repeatable. rq's own are always allowed. Job functions "
        "are never imported here: the worker imports them.",
    )


@main.command(context_settings=CONTEXT)
@click.argument("job_id", metavar="ID", callback=lambda ctx, param, value: text_id(value))
@allow_import_option("this command")
@click.pass_obj
def trigger(settings: Settings, job_id: str, allow_import: tuple[str, ...]) -> None:
    """Enqueue one run of a cron job now, without moving its schedule.

    \b
    Example:
      rqrcron trigger metric:pm25
    """
    with operation():
        job = settings.registry.fetch(job_id)
        rq_job = job.trigger(_allowlist(allow_import))
    note = " (the job is disabled: only this run was enqueued)" if not job.enabled else ""
    click.echo(f"{printable(job_id)}: enqueued {rq_job.id} on {job.queue_name}{note}")


def _allowlist(prefixes: tuple[str, ...]) -> ImportAllowlist:
    try:
        return ImportAllowlist((*DEFAULT_ALLOWED_IMPORTS, *prefixes))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--allow-import") from None


# -- schedules as code ---------------------------------------------------------------------------


@main.command(context_settings=CONTEXT)
@click.option("-f", "--format", "fmt", type=click.Choice(["json", "yaml"]), default="json", show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write to this file instead of standard output.",
)
@click.pass_obj
def export(settings: Settings, fmt: str, output: str | None) -> None:
    """Print every cron job's definition, for version control and `rqrcron apply`.

    Only what defines a job is exported (function, queue, schedule, arguments, options,
    enabled), not the scheduler's timing.

    \b
    Examples:
      rqrcron export > schedules.json
      rqrcron export --format yaml -o schedules.yaml
    """
    with operation():
        document = sync.export(settings.connection)
        text = sync.dump(document, fmt)
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror or exc}")
    else:
        click.echo(text, nl=False)
    skipped = document.get("unreadable", {})
    if skipped:
        click.echo(
            f"Warning: {len(skipped)} unreadable record(s) are listed under 'unreadable' and will not be "
            f"re-created by apply: {printable(', '.join(sorted(skipped)))}",
            err=True,
        )


@main.command(context_settings=CONTEXT)
@click.argument("file", metavar="FILE")
@click.option(
    "--prune",
    is_flag=True,
    help="Delete jobs an earlier apply created that FILE no longer lists (never jobs made otherwise).",
)
@click.option("--dry-run", is_flag=True, help="Print what would change, change nothing.")
@click.option(
    "--timezone",
    "--tz",
    "timezone_name",
    default=None,
    metavar="ZONE",
    help="For an rq cron config: the zone its cron is read in (default: as this rq reads it; "
    "rq 2: UTC, rq 3: this host's zone).",
)
@click.option(
    "--no-import-check",
    is_flag=True,
    help="Import no function or class to check it (only its dotted form): to restore an export as it "
    "is, even one naming code that no longer imports.",
)
@click.pass_obj
def apply(
    settings: Settings, file: str, prune: bool, dry_run: bool, timezone_name: str | None, no_import_check: bool
) -> None:
    """Make the registry match FILE: a .json/.yaml export, or an rq cron config (.py file or module).

    Every job in FILE is validated before anything is written. Jobs FILE does not
    mention are left alone unless --prune is given.

    \b
    Examples:
      rqrcron apply schedules.json --dry-run
      rqrcron apply schedules.yaml --prune
      rqrcron apply myapp/cron_config.py      # migrate from `rq cron`
      rqrcron apply myapp/cron_config.py --tz Europe/Berlin
    """
    with operation():
        entries = sync.load(file, timezone_name)
        with checked_where_importable(check=not no_import_check) as unchecked:
            todo = (
                sync.plan(settings.connection, entries, prune)
                if dry_run
                else sync.apply(settings.connection, entries, prune)
            )
    for line in todo.describe():
        click.echo(printable(line))
    if dry_run:
        click.echo("(dry run: nothing changed)")
    if unchecked and not no_import_check:
        click.echo(
            f"Note: {len(unchecked)} dotted path(s) not checked here, as their packages do not import on "
            f"this host: {', '.join(sorted(unchecked)[:5])}{' ...' if len(unchecked) > 5 else ''}. "
            "`rqrcron -P DIR apply ...` checks them where the code is.",
            err=True,
        )


# -- running --------------------------------------------------------------------------------------


@main.command("scheduler", context_settings=CONTEXT)
@click.option(
    "--lock-ttl",
    type=click.IntRange(min=3),
    default=120,
    show_default=True,
    metavar="SECONDS",
    help="How long the lock outlives a scheduler that stops heartbeating.",
)
@click.option(
    "--max-sleep-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    callback=finite_seconds,
    help="Longest wait between two passes.",
)
@click.option(
    "-l",
    "--logging-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.option(
    "--name",
    default="",
    callback=lambda ctx, param, value: _check_name(value),
    help="Scheduler name (default: host:pid:random).",
)
@click.option("--burst", is_flag=True, help="Enqueue what is due once, then exit (for running from system cron).")
@click.option("--standby", is_flag=True, help="Wait for the lock instead of exiting when another scheduler holds it.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one object per line, with each event's fields (event, job_id, slot, lag...).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    metavar="PORT",
    help="Serve Prometheus metrics on http://HOST:PORT/metrics.",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    metavar="HOST",
    help="Address the metrics endpoint listens on (0.0.0.0: every interface).",
)
@click.option(
    "--wait-replicas",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="N",
    help="After taking or extending the lock, WAIT (100 ms at most) until N replicas have it.",
)
@allow_import_option("the scheduler")
@click.pass_obj
def scheduler_command(
    settings: Settings,
    lock_ttl: int,
    max_sleep_interval: float,
    logging_level: str,
    name: str,
    burst: bool,
    standby: bool,
    log_format: str,
    metrics_port: int | None,
    metrics_host: str,
    wait_replicas: int,
    allow_import: tuple[str, ...],
) -> None:
    """Run the scheduler: move due slots into their RQ queues until SIGINT/SIGTERM.

    Logs one line per enqueued run. Exits 0 when stopped by a signal, 1 if another
    scheduler holds the lock (unless --standby) or Redis is unreachable at start.

    \b
    Examples:
      rqrcron scheduler --lock-ttl 60
      rqrcron scheduler --standby        # a hot spare on a second host
      rqrcron scheduler --burst          # from system cron, every minute
    """
    if burst and standby:
        raise click.UsageError("--burst and --standby exclude each other")
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=logging_level.upper(), handlers=[handler])
    scheduler = RedisCronScheduler(
        settings.connection,
        logging_level=logging_level.upper(),
        name=name,
        lock_ttl=lock_ttl,
        max_sleep_interval=max_sleep_interval,
        wait_replicas=wait_replicas,
        allow_import=_allowlist(allow_import).prefixes,
    )
    metrics = None
    if metrics_port is not None:
        try:
            metrics = MetricsServer(scheduler, metrics_port, metrics_host)
        except OSError as exc:
            raise click.ClickException(f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc}") from None
        metrics.start()
    try:
        with operation():
            scheduler.start(burst=burst, standby=standby)
    finally:
        if metrics is not None:
            metrics.stop()
    if scheduler.superseded_by is not None:
        # Not a requested stop: a service manager should restart it (it then stands by, or is refused).
        fail(
            f"another scheduler ({printable(scheduler.superseded_by)}) took the lock; this one stopped "
            "(--standby waits instead)"
        )


main.add_command(
    click.Command(
        "run",
        params=scheduler_command.params,
        callback=scheduler_command.callback,
        context_settings=scheduler_command.context_settings,
        help=f"The same as 'scheduler' (rq-scheduler's name for it).\n\n{scheduler_command.help}",
        short_help="The same as 'scheduler'.",
    )
)
