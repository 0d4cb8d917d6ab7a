"""What every ``rqrcron`` command shares: the group and its options, the connection, error handling.

Conventions follow rq's own CLI: ``-u/--url``, ``-c/--config`` (an rq settings module),
``-P/--path``; exit status 0 on success, 1 when Redis is unreachable or an operation
fails (one line on stderr, never a traceback), 2 on a usage error.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, cast

import click
from redis import Redis
from redis.exceptions import NoPermissionError, RedisError
from rq.cli.helpers import get_redis_from_config, read_config_file

from ..__version__ import __version__
from ..connection import from_url, mask, redact
from ..definition import MAX_NESTING
from ..errors import InvalidJobError, RediscronError
from ..imports import DEFAULT_ALLOWED_IMPORTS, ImportAllowlist
from ..registry import Registry
from ..sync import SyncError
from ..text import nested_deeper_than, printable, shorten

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
        if nested_deeper_than(value, 2 * MAX_NESTING):  # refused by validation anyway, past MAX_NESTING
            raise click.BadParameter("nested too deeply")
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


def check_name(value: str) -> str:
    if value and (len(value) > 200 or re.search(r"[\s\x00-\x1f\x7f|]", value)):
        raise click.BadParameter("must be at most 200 characters, without spaces, control characters or '|'")
    return value


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


def allowlist(prefixes: tuple[str, ...]) -> ImportAllowlist:
    try:
        return ImportAllowlist((*DEFAULT_ALLOWED_IMPORTS, *prefixes))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--allow-import") from None


def _labels(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, str] | None:
    """``--label NAME=VALUE`` options as a dict (None when none is given)."""
    labels: dict[str, str] = {}
    for given in value:
        name, sep, text = given.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{given!r} is not NAME=VALUE (e.g. team=billing)")
        if name in labels and labels[name] != text:
            raise click.BadParameter(f"{name} is given twice ({labels[name]!r} and {text!r})")
        labels[name] = text
    return labels or None


def label_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--label NAME=VALUE``, repeatable: parsed into ``labels`` (a dict, or None)."""
    return click.option("--label", "labels", multiple=True, metavar="NAME=VALUE", callback=_labels, help=help_text)
