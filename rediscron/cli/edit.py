"""``rqrcron add``, ``rm``, ``enable``, ``disable``, ``trigger`` and ``backfill``: operating on jobs."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

import click

from ..backfill import ALREADY_ENQUEUED, BACKFILL_LIMIT, ENQUEUED, MAY_HAVE_RUN, WOULD_ENQUEUE
from ..errors import RediscronError
from ..fields import FIELDS
from ..imports import checked_where_importable
from ..options import CATCHUP_MODES, OVERLAP_MODES
from ..text import printable, shorten
from .base import (
    CONTEXT,
    Settings,
    allow_import_option,
    allowlist,
    fail,
    json_option,
    label_option,
    main,
    operation,
    text_id,
)


def _iso_time(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time, e.g. 2030-01-01T09:00:00+01:00") from None


def _second(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


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
    "max_consecutive_failures": _field_option("max_consecutive_failures", type=int, metavar="N"),
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
    "labels": label_option("A label to select the job by (repeatable): --label team=billing."),
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
@click.argument("job_id", metavar="[ID]", required=False)
@click.option("--quarantined", is_flag=True, help="Enable every quarantined job (each is tried again).")
@label_option("Enable every job with this label (repeatable: all of them), each in one atomic step.")
@click.option("--dry-run", is_flag=True, help="With --label: list the jobs, change nothing.")
@click.pass_obj
def enable(
    settings: Settings, job_id: str | None, quarantined: bool, labels: dict[str, str] | None, dry_run: bool
) -> None:
    """Enable a cron job: it resumes at its next slot, without catching up.

    A quarantined job is tried again; the scheduler quarantines it anew if its record
    still cannot be used. --quarantined does that for every quarantined job at once;
    --label for every job with the label.

    \b
    Examples:
      rqrcron enable metric:pm25
      rqrcron enable --quarantined
      rqrcron enable --label team=billing --dry-run
    """
    if [job_id is not None, quarantined, labels is not None].count(True) != 1:
        raise click.UsageError("give an ID, --quarantined or --label")
    if labels is not None:
        _each_labelled(settings, labels, dry_run, "enabled", lambda job: job.enable())
        return
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
@click.argument("job_id", metavar="[ID]", required=False, callback=lambda ctx, param, value: value and text_id(value))
@label_option("Disable every job with this label (repeatable: all of them), each in one atomic step.")
@click.option("--dry-run", is_flag=True, help="With --label: list the jobs, change nothing.")
@click.pass_obj
def disable(settings: Settings, job_id: str | None, labels: dict[str, str] | None, dry_run: bool) -> None:
    """Disable a cron job; no run of it is enqueued once this returns.

    \b
    Examples:
      rqrcron disable metric:pm25
      rqrcron disable --label team=billing
    """
    if (job_id is None) == (labels is None):
        raise click.UsageError("give an ID or --label")
    if labels is not None:
        _each_labelled(settings, labels, dry_run, "disabled", lambda job: job.disable())
        return
    assert job_id is not None
    _toggle(settings, job_id, False)


def _each_labelled(
    settings: Settings, labels: dict[str, str], dry_run: bool, done: str, act: Callable[[Any], object]
) -> None:
    """Act on every job with ``labels``, one at a time (each action is one atomic step); a job that
    cannot be acted on is said and counted, and the others go on."""
    selector = " ".join(f"{name}={value}" for name, value in labels.items())
    with operation():
        ids = settings.registry.select(labels)
    if dry_run:
        for job_id in ids:
            click.echo(f"{printable(job_id)}: would be {done}")
        click.echo(printable(f"{len(ids)} job(s) with {selector} would be {done}"))
        return
    failed = 0
    with operation():  # Redis failing stops it; a job that cannot be acted on is said, and the rest go on
        for job_id in ids:
            try:
                act(settings.registry.fetch(job_id))
            except RediscronError as exc:
                click.echo(printable(f"{job_id}: not {done}: {shorten(str(exc), 300)}"), err=True)
                failed += 1
                continue
            click.echo(f"{printable(job_id)}: {done}")
    click.echo(
        printable(f"{len(ids) - failed} job(s) with {selector} {done}" + (f", {failed} could not be" if failed else ""))
    )
    if failed:
        sys.exit(1)


@main.command(context_settings=CONTEXT)
@click.argument("job_id", metavar="[ID]", required=False, callback=lambda ctx, param, value: value and text_id(value))
@label_option("Trigger every job with this label (repeatable: all of them).")
@click.option("--dry-run", is_flag=True, help="With --label: list the jobs, enqueue nothing.")
@allow_import_option("this command")
@click.pass_obj
def trigger(
    settings: Settings, job_id: str | None, labels: dict[str, str] | None, dry_run: bool, allow_import: tuple[str, ...]
) -> None:
    """Enqueue one run of a cron job now, without moving its schedule.

    \b
    Examples:
      rqrcron trigger metric:pm25
      rqrcron trigger --label team=billing --dry-run
    """
    if (job_id is None) == (labels is None):
        raise click.UsageError("give an ID or --label")
    if labels is not None:
        allowed = allowlist(allow_import)
        _each_labelled(settings, labels, dry_run, "triggered", lambda job: job.trigger(allowed))
        return
    assert job_id is not None
    with operation():
        job = settings.registry.fetch(job_id)
        rq_job = job.trigger(allowlist(allow_import))
    note = " (the job is disabled: only this run was enqueued)" if not job.enabled else ""
    click.echo(f"{printable(job_id)}: enqueued {rq_job.id} on {job.queue_name}{note}")


@main.command(context_settings=CONTEXT)
@click.argument("job_id", metavar="ID", callback=lambda ctx, param, value: text_id(value))
@click.option(
    "--from", "start", required=True, callback=_iso_time, help="First time of the range (ISO 8601; UTC if no offset)."
)
@click.option("--to", "end", required=True, callback=_iso_time, help="Last time of the range; not in the future.")
@click.option(
    "--max",
    "max_slots",
    type=click.IntRange(min=1),
    default=BACKFILL_LIMIT,
    show_default=True,
    help="Refuse a range holding more slots than this.",
)
@click.option(
    "--scheduled",
    is_flag=True,
    help="Also take slots from the job's creation on that have no RQ job (one that ran and expired runs again).",
)
@click.option("--dry-run", is_flag=True, help="Enqueue nothing; list what would be.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable: each slot and its outcome.")
@allow_import_option("this command")
@click.pass_obj
def backfill(
    settings: Settings,
    job_id: str,
    start: datetime,
    end: datetime,
    max_slots: int,
    scheduled: bool,
    dry_run: bool,
    as_json: bool,
    allow_import: tuple[str, ...],
) -> None:
    """Enqueue the slots of a past range that have no run yet, without moving the job's schedule.

    Each slot is enqueued at most once, however often this runs (its RQ job id is fixed). The range
    may begin before the job was created. Slots from its creation on are taken only if its drop
    log records them as not run, or with --scheduled.

    \b
    Example:
      rqrcron backfill report:daily --from 2026-11-16 --to 2026-11-23T23:59 --dry-run
    """
    with operation():
        job = settings.registry.fetch(job_id)
        done = job.backfill(
            start, end, max_slots=max_slots, scheduled=scheduled, dry_run=dry_run, allow_import=allowlist(allow_import)
        )
    if as_json:
        click.echo(json.dumps(done.to_dict(), indent=2))
        return
    for s in done.slots if dry_run or len(done.slots) <= 50 else []:
        click.echo(f"  {_second(s.slot)}  {s.rq_job_id}  {s.outcome}")
    counts = ", ".join(
        f"{done.count(outcome)} {outcome}"
        for outcome in (ENQUEUED, WOULD_ENQUEUE, ALREADY_ENQUEUED, MAY_HAVE_RUN)
        if done.count(outcome)
    )
    span = f"{_second(done.start)} to {_second(done.end)}"
    click.echo(f"{printable(job_id)}: {len(done.slots)} slot(s) from {span}{': ' + counts if counts else ''}")
    if done.count(MAY_HAVE_RUN):
        click.echo("Slots from the job's creation on may have run already: pass --scheduled to take them too")
    if not job.enabled and (done.count(ENQUEUED) or done.count(WOULD_ENQUEUE)):
        click.echo("Note: the job is disabled; a backfill runs its past slots all the same, as trigger does")


@main.command(context_settings=CONTEXT)
@click.option("--reason", default="", help="Why, shown by `info`, `status` and the web page.")
@click.option("--by", "actor", default=None, help="Who pauses (default: user@host of this process).")
@click.pass_obj
def pause(settings: Settings, reason: str, actor: str | None) -> None:
    """Stop every fire registry-wide (a kill switch), leaving each job's enabled state alone.

    Slots that come while paused wait; after `rqrcron resume`, each job's catch-up policy decides
    what runs. Runs by hand (`trigger`) still work.
    """
    with operation():
        settings.registry.pause(reason=reason, actor=actor)
    click.echo("Paused: no scheduled run is enqueued until `rqrcron resume`")


@main.command(context_settings=CONTEXT)
@click.pass_obj
def resume(settings: Settings) -> None:
    """Let the schedulers fire again after `rqrcron pause`."""
    with operation():
        was = settings.registry.resume()
    click.echo("Resumed: due slots now follow each job's catch-up policy" if was else "Not paused: nothing to do")
