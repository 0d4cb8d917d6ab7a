"""``rqrcron log`` and ``rollback``: the audit log of changes, and a job's definition restored from it."""

from __future__ import annotations

import json

import click

from .. import audit
from ..audit import AuditEntry
from ..text import printable, shorten
from .base import CONTEXT, Settings, main, operation, text_id

#: Longest value shown in a change line (``--json`` shows them whole).
SHOWN = 60


@main.command(context_settings=CONTEXT)
@click.argument("job_id", metavar="[ID]", required=False, callback=lambda ctx, param, value: value and text_id(value))
@click.option("-n", "--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable: each entry with every change whole.")
@click.pass_obj
def log(settings: Settings, job_id: str | None, limit: int, as_json: bool) -> None:
    """Show the audit log, newest first: every change (create, edit, enable, disable, delete, apply,
    rollback, pause, resume), who made it and what it changed. With ID, that job's changes only.

    Who is `user@host` of the process that made the change, or the name it gave
    ($REDISCRON_ACTOR, `rediscron.audit.acting_as()`, `pause --by`).

    \b
    Examples:
      rqrcron log
      rqrcron log metric:pm25 -n 5
    """
    with operation():
        entries = audit.read(settings.connection, job_id, limit)
    if as_json:
        click.echo(json.dumps([entry.to_dict() for entry in entries], indent=2))
        return
    if not entries:
        click.echo(f"{printable(job_id)}: no changes recorded" if job_id else "No changes recorded")
        return
    for entry in entries:
        _echo(entry)


def _echo(entry: AuditEntry) -> None:
    revision = f"  revision {entry.revision}" if entry.revision is not None else ""
    source = " (apply)" if entry.source == "file" else ""
    what = printable(entry.job_id) if entry.job_id is not None else "(every job)"
    when = f"{entry.at:%Y-%m-%d %H:%M:%S}Z"
    click.echo(
        f"{when}  {printable(entry.action)}{source}  {what}{revision}  by {printable(shorten(entry.actor, SHOWN))}"
    )
    if entry.detail:
        click.echo(f"    {printable(shorten(entry.detail, 200))}")
    if entry.action == "deleted":
        click.echo(f"    (its definition, {len(entry.changes)} fields, is kept in the entry: --json)")
        return
    for name, (old, new) in sorted(entry.changes.items()):
        if old is None:
            click.echo(f"    {printable(name)}: {_shown(new)}")
        else:
            click.echo(f"    {printable(name)}: {_shown(old)} -> {_shown(new)}")


def _shown(value: str | None) -> str:
    return "(none)" if value is None else printable(shorten(value, SHOWN))


@main.command(context_settings=CONTEXT)
@click.argument("job_id", metavar="ID", callback=lambda ctx, param, value: text_id(value))
@click.option(
    "--to", "revision", type=int, required=True, help="The revision to go back to (`rqrcron log ID` lists them)."
)
@click.pass_obj
def rollback(settings: Settings, job_id: str, revision: int) -> None:
    """Restore a job's definition as it was at a revision, as a new revision (history is kept).

    The job's enabled state and its timing stay as they are.

    \b
    Example:
      rqrcron rollback metric:pm25 --to 1234
    """
    with operation():
        job = settings.registry.fetch(job_id)
        was = job.revision
        new = job.rollback(revision)
    if new == was:
        click.echo(f"{printable(job_id)}: already the definition of revision {revision}; nothing written")
    else:
        click.echo(f"{printable(job_id)}: definition of revision {revision} restored as revision {new}")
