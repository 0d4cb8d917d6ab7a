"""The ``rqrcron`` command line."""

from __future__ import annotations

import logging
import os
import sys

import click
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .__version__ import __version__
from .errors import RediscronError
from .scheduler import RedisCronScheduler

DEFAULT_URL = "redis://localhost:6379/0"


def _default_url() -> str:
    return os.environ.get("RQ_REDIS_URL") or os.environ.get("REDIS_URL") or DEFAULT_URL


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rqrcron")
@click.option("-u", "--url", default=_default_url, show_default="$RQ_REDIS_URL, $REDIS_URL or " + DEFAULT_URL,
              help="Redis URL (redis://, rediss:// or unix://).")
@click.option("-P", "--path", "paths", multiple=True, default=["."], show_default=True,
              help="Directory added to sys.path so job functions import (repeatable).")
@click.pass_context
def main(ctx: click.Context, url: str, paths: tuple[str, ...]) -> None:
    """Watch and run rediscron's Redis-stored cron jobs.

    \b
    Example:
      rqrcron -u redis://localhost:6379/0 scheduler
    """
    for path in reversed(paths):
        sys.path.insert(0, os.path.abspath(path))
    ctx.obj = url


def _connect(url: str) -> Redis:
    try:
        # Timeouts, so a Redis that hangs (paused, partitioned) is an error the loop backs off from, not a hang.
        connection = Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=15)
        connection.ping()
    except (RedisConnectionError, RedisTimeoutError, ValueError) as exc:
        raise click.ClickException(f"cannot reach Redis at {url}: {exc}") from None
    return connection


@main.command("scheduler")
@click.option("--lock-ttl", type=click.IntRange(min=3), default=120, show_default=True,
              help="Seconds the scheduler lock lives without a heartbeat.")
@click.option("--max-sleep-interval", type=click.FloatRange(min=0, min_open=True), default=60.0,
              show_default=True, help="Longest wait between two passes, in seconds.")
@click.option("-l", "--logging-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.option("--name", default="", help="Scheduler name (default: host:pid:random).")
@click.option("--burst", is_flag=True, help="Enqueue what is due once, then exit.")
@click.pass_obj
def scheduler_command(url: str, lock_ttl: int, max_sleep_interval: float, logging_level: str, name: str,
                      burst: bool) -> None:
    """Run the scheduler: move due slots into their RQ queues until SIGINT/SIGTERM.

    \b
    Example:
      rqrcron scheduler --lock-ttl 60
    """
    logging.basicConfig(level=logging_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    connection = _connect(url)
    scheduler = RedisCronScheduler(connection, logging_level=logging_level.upper(), name=name,
                                   lock_ttl=lock_ttl, max_sleep_interval=max_sleep_interval)
    try:
        scheduler.start(burst=burst)
    except RediscronError as exc:
        raise click.ClickException(str(exc)) from None
    except (RedisConnectionError, RedisTimeoutError) as exc:
        raise click.ClickException(f"lost Redis at {url}: {exc}") from None


main.add_command(scheduler_command, "run")
