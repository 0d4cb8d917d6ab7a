"""``rqrcron web``: the web page on an embedded server."""

from __future__ import annotations

import contextlib
import logging
import os

import click

from ..text import printable
from .base import CONTEXT, Settings, fail, main, operation

#: Where the token comes from when ``--token`` is not given.
TOKEN_VARIABLE = "RQRCRON_WEB_TOKEN"
#: Shorter tokens get a warning.
MIN_TOKEN = 16
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@main.command(context_settings=CONTEXT)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port to listen on [default: 9183].")
@click.option(
    "--token",
    envvar=TOKEN_VARIABLE,
    default=None,
    show_envvar=True,
    help="Grants write access (enable, disable, run now, edit, delete) to whoever signs in with it. "
    "Without it the page is read-only.",
)
@click.option(
    "--job-url",
    default=None,
    metavar="PATTERN",
    help="Link each RQ job of the history to another page; {id} stands for the RQ job id "
    "(rq-dashboard: http://localhost:9181/0/view/job/{id}).",
)
@click.option("--root-path", default="", metavar="PREFIX", help="The path prefix a proxy serves the page under.")
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="A host name the page answers to (repeatable). Default: 127.0.0.1 and localhost when it listens "
    "on a loopback address, else any.",
)
@click.pass_obj
def web(
    settings: Settings,
    host: str,
    port: int | None,
    token: str | None,
    job_url: str | None,
    root_path: str,
    allowed_hosts: tuple[str, ...],
) -> None:
    """Serve the web page: every job, live; enable, disable, run now, edit, delete.

    \b
      rqrcron web                       # read-only, http://127.0.0.1:9183/
      RQRCRON_WEB_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe(24))') rqrcron web
    """
    try:
        import uvicorn

        from ..web import DEFAULT_PORT, create_app
    except ImportError as exc:
        fail(f"rqrcron web needs the 'web' extra: pip install 'rediscron[web]' ({exc.name} is missing)")
    if token is not None and not token.strip():
        fail("--token is empty; give a token, or leave it out for a read-only page")
    if token is not None and len(token) < MIN_TOKEN:
        click.echo(
            f"Warning: the token is {len(token)} characters long; one of {MIN_TOKEN} or more is much harder to guess "
            "(python -c 'import secrets; print(secrets.token_urlsafe(24))' makes one)",
            err=True,
        )
    if not allowed_hosts and host in LOOPBACK:
        # A page on a loopback address answers only to its own names: a DNS-rebinding page cannot read it.
        allowed_hosts = ("127.0.0.1", "localhost")
    connection = settings.connection
    with operation():
        connection.ping()  # a wrong URL or password says so now, not on the first page load
    app = create_app(connection, token=token, job_url=job_url, allowed_hosts=list(allowed_hosts) or None)
    port = DEFAULT_PORT if port is None else port
    mode = "writable with the token" if token else "read-only: give --token to change jobs"
    url = f"http://{printable(host)}:{port}/"
    behind = f", served under {printable(root_path)} by your proxy" if root_path else ""
    click.echo(f"rediscron web page on {url}{behind} ({mode}); Ctrl-C stops it")
    web_log = logging.getLogger("rediscron.web")
    web_log.setLevel(logging.INFO)
    if not web_log.handlers:
        # Every change made from the page is logged, with who signed in from where.
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        web_log.addHandler(handler)
    os.environ.pop(TOKEN_VARIABLE, None)  # not handed down to anything this process starts
    # Some uvicorn releases hand Ctrl-C back once shut down: the stop was asked for, not an error.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(app, host=host, port=port, root_path=root_path, log_level="warning", access_log=False)
    click.echo("rediscron web page stopped")
