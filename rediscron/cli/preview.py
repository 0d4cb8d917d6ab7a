"""``rqrcron preview``: a schedule's next runs, saved or not, with what daylight saving time does to them."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import click

from ..errors import InvalidJobError
from ..preview import Run, runs, upcoming
from ..schedule import make_schedule, validate_cron, validate_interval, validate_timezone
from ..text import printable, to_json
from ..words import schedule_words
from .base import CONTEXT, main, operation

T = TypeVar("T")


def echo_runs(found: list[Run], zone_name: str, as_json: bool) -> None:
    """Print runs: UTC, in the zone, and a DST note where there is one."""
    if as_json:
        rows = [{"at": run.at.isoformat(), "local": run.local.isoformat(), "note": run.note or None} for run in found]
        click.echo(to_json(rows, indent=2))
        return
    for run in found:
        local = "" if zone_name == "UTC" else f"  {run.local:%Y-%m-%d %H:%M:%S %Z} in {zone_name}"
        note = f"  ({run.note})" if run.note else ""
        click.echo(f"{run.at:%Y-%m-%dT%H:%M:%SZ}{local}{note}")


def _checked(field: str, check: Callable[[Any], T], value: Any) -> T:
    try:
        return check(value)
    except ValueError as exc:
        raise InvalidJobError(None, field, str(exc)) from None


@main.command(context_settings=CONTEXT)
@click.argument("cron", required=False)
@click.option("--interval", type=str, default=None, metavar="SECONDS", help="An interval schedule instead of cron.")
@click.option("--timezone", "zone_name", default="UTC", show_default=True, help="IANA zone the cron is read in.")
@click.option("-n", "--next", "count", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--after", type=click.DateTime(), default=None, help="Start from this UTC time (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable.")
def preview(
    cron: str | None, interval: str | None, zone_name: str, count: int, after: datetime | None, as_json: bool
) -> None:
    """The next runs of a schedule not saved yet, in UTC and its zone, with DST gaps and folds noted.

    \b
      rqrcron preview "0 9 * * 1-5" --timezone Europe/Berlin --next 5
      rqrcron preview "30 2 * * *" --timezone Europe/Berlin --after 2026-03-27
    """
    with operation():
        if (cron is None) == (interval is None):
            raise InvalidJobError(None, "schedule", "give a cron expression or --interval SECONDS, one of them")
        zone_name = _checked("timezone", validate_timezone, zone_name)
        seconds = None
        if interval is not None:
            if not (interval.isascii() and interval.isdigit()):
                raise InvalidJobError(None, "interval", f"must be a whole number of seconds, not {interval!r}")
            seconds = _checked("interval", validate_interval, int(interval))
        expression = _checked("cron", validate_cron, cron) if cron is not None else None
        schedule = make_schedule(seconds, expression, zone_name)
        start = after.replace(tzinfo=timezone.utc).timestamp() if after is not None else time.time()
        found = runs(upcoming(schedule, start, count), zone_name)
    if not as_json:
        click.echo(printable(schedule_words(seconds, expression, zone_name)))
    echo_runs(found, zone_name, as_json)
