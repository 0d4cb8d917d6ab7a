"""``rqrcron export`` and ``apply``: schedules as code."""

from __future__ import annotations

from pathlib import Path

import click

from .. import sync
from ..imports import checked_where_importable
from ..text import printable
from .base import (
    CONTEXT,
    Settings,
    fail,
    label_option,
    main,
    operation,
)


@main.command(context_settings=CONTEXT)
@click.option("-f", "--format", "fmt", type=click.Choice(["json", "yaml"]), default="json", show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write to this file instead of standard output.",
)
@label_option("Only the jobs with this label (repeatable: all of them).")
@click.pass_obj
def export(settings: Settings, fmt: str, output: str | None, labels: dict[str, str] | None) -> None:
    """Print every cron job's definition, for version control and `rqrcron apply`.

    Only what defines a job is exported (function, queue, schedule, arguments, options,
    enabled), not the scheduler's timing.

    \b
    Examples:
      rqrcron export > schedules.json
      rqrcron export --format yaml -o schedules.yaml
      rqrcron export --label team=billing
    """
    skipped: dict[str, str] = {}
    with operation():
        if fmt == "yaml":
            sync.dump({}, fmt)  # PyYAML missing: say so before anything is written
        chunks = sync.dump_stream(settings.connection, fmt, skipped, labels=labels)
        if output:
            # Written beside, then moved in place: a failed export never leaves half a file.
            target = Path(output)
            partial = target.with_name(f".{target.name}.partial")
            try:
                with partial.open("w", encoding="utf-8") as out:
                    for chunk in chunks:
                        out.write(chunk)
                partial.replace(target)
            except OSError as exc:
                partial.unlink(missing_ok=True)
                fail(f"cannot write {output}: {exc.strerror or exc}")
        else:
            for chunk in chunks:
                click.echo(chunk, nl=False)
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
