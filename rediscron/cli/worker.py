"""``rqrcron worker``: an rq worker that also hosts the cron scheduler (rq's own ``worker`` command)."""

from __future__ import annotations

import os
import sys

import click

from ..worker import LOCK_TTL_VARIABLE
from .base import CONTEXT, Settings, fail, main


@main.command(
    context_settings={**CONTEXT, "ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.option(
    "--lock-ttl",
    type=click.IntRange(min=3),
    default=None,
    metavar="SECONDS",
    help="How long the lock outlives a leading worker that is killed or paused [default: 30].",
)
@click.argument("rq_arguments", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def worker(settings: Settings, lock_ttl: int | None, rq_arguments: tuple[str, ...]) -> None:
    """Run `rq worker` with rediscron.CronWorker: it works jobs and stands by to lead the cron scheduler.

    Every option but --lock-ttl is rq worker's own (`rqrcron worker --help` shows them); -u/-c given
    to rqrcron are passed on.

    \b
      rqrcron -u redis://localhost:6379/0 worker high default low
    """
    try:
        from rq.cli.cli import main as rq_main
    except ImportError as exc:  # pragma: no cover - rq is a dependency
        fail(f"rq's command line cannot be loaded: {exc}")
    arguments = ["worker", "--worker-class", "rediscron.CronWorker"]
    if settings.url and "--url" not in rq_arguments and "-u" not in rq_arguments:
        arguments += ["--url", settings.url]
    if settings.config and "--config" not in rq_arguments and "-c" not in rq_arguments:
        arguments += ["--config", settings.config]
    if lock_ttl is not None:
        os.environ[LOCK_TTL_VARIABLE] = str(lock_ttl)
    sys.argv[0] = "rqrcron worker"
    rq_main.main(args=[*arguments, *rq_arguments], prog_name="rqrcron", standalone_mode=True)
