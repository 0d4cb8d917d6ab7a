"""A web page to see and steer every cron job: ``rqrcron web``, or mounted in your app.

Needs the ``web`` extra (``pip install 'rediscron[web]'``). The page is read-only unless a
``token`` (or an ``auth`` callable) is given; it never imports job code nor unpickles an RQ job.

Example (FastAPI or Starlette)::

    from rediscron.web import create_app
    app.mount("/cron", create_app(redis, token=os.environ["RQRCRON_WEB_TOKEN"]))

Example (Flask)::

    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from rediscron.web import create_wsgi_app
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/cron": create_wsgi_app(redis, token=token)})
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from redis import Redis

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request

#: The port ``rqrcron web`` listens on by default (rq-dashboard takes 9181).
DEFAULT_PORT = 9183

__all__ = ["DEFAULT_PORT", "create_app", "create_wsgi_app"]


def _missing(exc: ImportError) -> ImportError:
    return ImportError(
        f"rediscron's web page needs the 'web' extra: pip install 'rediscron[web]' ({exc.name} is missing)"
    )


def create_app(
    connection: Redis,
    token: str | None = None,
    *,
    auth: Callable[[Request], bool] | None = None,
    job_url: str | None = None,
    title: str = "rediscron",
    allowed_hosts: Sequence[str] | None = None,
) -> Starlette:
    """The web page as an ASGI app; mount it under any path.

    :param connection: The Redis client holding the registry. Its pool is shared with your app.
    :param token: Grants write access (enable, disable, trigger, delete, edit) to whoever signs in
        with it, or sends it as ``Authorization: Bearer <token>``. Without it (and ``auth``), the
        page is read-only.
    :param auth: Called with each write request (a Starlette ``Request``: headers, cookies, the
        client); True grants write access. For an app with its own login.
    :param job_url: A pattern linking each RQ job id of the history to another page, ``{id}`` standing
        for the id: for rq-dashboard, ``http://localhost:9181/0/view/job/{id}``.
    :param title: The page's title.
    :param allowed_hosts: The host names the page answers to (others get 400), against DNS rebinding;
        None: any (the app it is mounted in decides).
    :raises ImportError: The ``web`` extra is not installed.
    """
    try:
        from .app import build
    except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
        raise _missing(exc) from exc
    return build(connection, token=token, auth=auth, job_url=job_url, title=title, allowed_hosts=allowed_hosts)


def create_wsgi_app(
    connection: Redis,
    token: str | None = None,
    *,
    auth: Callable[[Request], bool] | None = None,
    job_url: str | None = None,
    title: str = "rediscron",
    allowed_hosts: Sequence[str] | None = None,
) -> Any:
    """The web page as a WSGI app (for Flask, Django or any WSGI server), with the same options as
    [create_app()][rediscron.web.create_app]."""
    try:
        from a2wsgi import ASGIMiddleware
    except ImportError as exc:  # pragma: no cover
        raise _missing(exc) from exc
    app = create_app(connection, token, auth=auth, job_url=job_url, title=title, allowed_hosts=allowed_hosts)
    return ASGIMiddleware(app)  # type: ignore[arg-type]
