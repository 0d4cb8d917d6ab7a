"""``rqrcron scheduler`` (and its alias ``run``): running the scheduler."""

from __future__ import annotations

import logging

import click

from ..alerts import notifier
from ..logs import JsonFormatter
from ..metrics import MetricsServer
from ..scheduler import RedisCronScheduler
from ..text import printable
from .base import (
    CONTEXT,
    Settings,
    allow_import_option,
    allowlist,
    check_name,
    fail,
    finite_seconds,
    main,
    operation,
)


def _webhook(url: str | None) -> str | None:
    try:
        notifier(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return url


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
    callback=lambda ctx, param, value: check_name(value),
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
@click.option(
    "--on-disable",
    default=None,
    metavar="URL",
    callback=lambda ctx, param, value: _webhook(value),
    help="POST a JSON event to this http(s) URL when a job is disabled for failing (max_consecutive_failures).",
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
    on_disable: str | None,
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
        allow_import=allowlist(allow_import).prefixes,
        on_disable=on_disable,
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
