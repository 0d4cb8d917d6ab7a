"""The web page's routes: listing, a job's page, actions, live state; auth and CSRF.

Every action goes through [Registry][rediscron.Registry], as the API and the CLI do, so every
guarantee of theirs holds here. Nothing here imports job code or unpickles an RQ job.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..clock import from_epoch
from ..definition import MAX_NESTING
from ..errors import EditConflict, InvalidJobError, JobNotFound, RediscronError
from ..registry import Registry
from ..schedule import zone
from ..text import nested_deeper_than, printable, relative, shorten, to_json
from ..words import schedule_words
from . import data
from .auth import CSRF_COOKIE, SESSION_COOKIE, SESSION_SECONDS, Auth, Guard, Refused, read_form

log = logging.getLogger("rediscron.web")


ACTIONS = ("enable", "disable", "trigger", "delete")
STATIC = Path(__file__).parent / "static"
#: What a finished action says on the page it leads to (a fixed text: nothing from the URL is shown).
DONE = {
    "enable": "Enabled: it runs from its next slot.",
    "disable": "Disabled: no run is enqueued until it is enabled.",
    "trigger": "Triggered: one run was enqueued now; the schedule is unchanged.",
    "delete": "Deleted.",
    "edit": "Saved.",
    "login": "Signed in: you can change jobs.",
    "logout": "Signed out.",
}


#: How long the scheduler panel is reused for every open page (seconds).
PANEL_REFRESH = 0.8


class Fresh:
    """One value, reused until it is ``ttl`` seconds old (thread-safe enough: a race reads twice)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._value: str | None = None
        self._at = 0.0

    def get(self) -> str | None:
        return self._value if time.monotonic() - self._at < self.ttl else None

    def put(self, value: str) -> None:
        self._value, self._at = value, time.monotonic()


class Site:
    """What every route needs: the registry, the templates, and who may write."""

    def __init__(
        self,
        connection: Redis,
        token: str | None,
        auth: Auth | None,
        job_url: str | None,
        title: str,
    ) -> None:
        self.registry = Registry(connection)
        self.connection = connection
        self.guard = Guard(token, auth, connection)
        self.job_url = job_url
        self.title = title
        self.env = Environment(
            loader=PackageLoader("rediscron.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.panel_cache = Fresh(PANEL_REFRESH)
        self.env.filters["clean"] = lambda text: printable(str(text)) if text is not None else ""
        self.env.globals.update(
            when=when,
            ago=ago,
            relative=relative,
            to_json=lambda value: to_json(value, default=str),
            at=_moment,
            words=schedule_words,
            seconds=_duration,
            label=_label,
        )

    # -- rendering -------------------------------------------------------------------------------

    def render(self, request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        cookie = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        csrf = self.guard.csrf_for(request, cookie)
        root = request.scope.get("root_path", "").rstrip("/")
        page = self.env.get_template(template).render(
            request=request,
            root=root,
            title=self.title,
            csrf=csrf,
            writable=self.guard.writable,
            can_write=self.guard.may_write(request),
            token_login=self.guard.token is not None,
            job_url=self.job_url_of,
            **values,
        )
        response = HTMLResponse(page, status_code=status)
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
            "frame-ancestors 'self'; form-action 'self'; base-uri 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        if CSRF_COOKIE not in request.cookies:
            set_cookie(response, request, CSRF_COOKIE, cookie, http_only=False)
        return response

    def job_url_of(self, rq_job_id: str) -> str | None:
        if not self.job_url:
            return None
        return self.job_url.replace("{id}", quote(rq_job_id, safe=""))


def set_cookie(
    response: Response, request: Request, name: str, value: str, http_only: bool = True, max_age: int | None = None
) -> None:
    root = request.scope.get("root_path", "") or "/"
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=root,
        httponly=http_only,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def when(moment: datetime | None, zone_name: str = "UTC") -> str:
    """A moment in a zone, with UTC beside it when the zone is another."""
    if moment is None:
        return "-"
    utc = moment.astimezone(timezone.utc)
    if zone_name in ("", "UTC"):
        return utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    local = moment.astimezone(zone(zone_name))
    return f"{local.strftime('%Y-%m-%d %H:%M:%S %Z')} ({utc.strftime('%H:%M:%S UTC')})"


def _duration(value: float) -> str:
    """``7.2 ms``, ``1.3 s``: a lag at a glance."""
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.1f} s"


#: How a job's page names its stored fields.
LABELS = {
    "func_name": "Function",
    "queue_name": "Queue",
    "id": "Id",
    "args": "Arguments",
    "kwargs": "Keyword arguments",
    "meta": "Meta",
    "timezone": "Time zone",
    "job_timeout": "Job timeout (s)",
    "result_ttl": "Result TTL (s)",
    "ttl": "Queue TTL (s)",
    "failure_ttl": "Failure TTL (s)",
    "misfire_grace_time": "Misfire grace (s)",
    "catchup": "After missed slots",
    "overlap": "If still running",
    "max_runs": "Runs at most",
    "start_time": "Starts",
    "end_time": "Ends",
    "at_front": "At the queue's front",
    "on_success": "On success",
    "on_failure": "On failure",
    "on_stopped": "On stopped",
}


def _label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " ").capitalize())


def _moment(epoch: float) -> datetime | None:
    """The moment of an epoch time, or None for one no date can hold (a hostile history entry)."""
    try:
        return from_epoch(epoch)
    except (OverflowError, OSError, ValueError):
        return None


def ago(moment: datetime | None, now: float) -> str:
    return relative(moment.timestamp() - now) if moment is not None else ""


def _listing_query(request: Request) -> dict[str, str]:
    params = request.query_params
    return {
        "state": params.get("state", "all") if params.get("state", "all") in data.STATES else "all",
        "queue": params.get("queue", "")[:200],
        "q": params.get("q", "")[:200],
        "cursor": params.get("cursor", "")[:1200],
    }


def build(
    connection: Redis,
    token: str | None = None,
    auth: Auth | None = None,
    job_url: str | None = None,
    title: str = "rediscron",
    allowed_hosts: Sequence[str] | None = None,
) -> Starlette:
    """The ASGI app (see [create_app()][rediscron.web.create_app])."""
    site = Site(connection, token, auth, job_url, title)

    def rows(request: Request) -> dict[str, Any]:
        """One page of the listing the request's filters ask for, and what its links need."""
        query = _listing_query(request)
        listing = data.list_jobs(
            site.registry, state=query["state"], queue=query["queue"], search=query["q"], cursor=query["cursor"]
        )
        return {
            "listing": listing,
            "query": query,
            "more_url": lambda cursor: "?" + urlencode({**query, "cursor": cursor}),
        }

    def jobs_page(request: Request) -> Response:
        return site.render(
            request,
            "jobs.html",
            queues=_queues(connection),
            done=DONE.get(request.query_params.get("done", "")),
            panel=data.panel(connection),
            marker=data.marker(connection),
            **rows(request),
        )

    def rows_fragment(request: Request) -> Response:
        return site.render(request, "_rows.html", **rows(request))

    def state(request: Request) -> Response:
        # The panel reads the recent fires (up to 5,000): read once for all the open pages, at most
        # every PANEL_REFRESH seconds. The marker is read for each (it is what makes a page refresh).
        panel = site.panel_cache.get()
        if panel is None:
            panel = site.env.get_template("_panel.html").render(panel=data.panel(connection))
            site.panel_cache.put(panel)
        return JSONResponse(
            {
                "marker": data.marker(connection, request.query_params.get("id", "")),
                "now": data._now(connection),
                "panel": panel,
            },
            headers={"Cache-Control": "no-store"},
        )

    def job_page(request: Request) -> Response:
        job_id = request.query_params.get("id", "")
        detail = data.job_detail(site.registry, job_id)
        return site.render(
            request,
            "job.html",
            detail=detail,
            done=DONE.get(request.query_params.get("done", "")),
            panel=data.panel(connection),
            marker=data.marker(connection, job_id),
            job_id=job_id,
        )

    def job_fragment(request: Request) -> Response:
        detail = data.job_detail(site.registry, request.query_params.get("id", ""))
        return site.render(request, "_job_live.html", detail=detail)

    def confirm_delete(request: Request) -> Response:
        detail = data.job_detail(site.registry, request.query_params.get("id", ""))
        return site.render(request, "delete.html", detail=detail)

    async def action(request: Request) -> Response:
        site.guard.check_writer(request)
        form = await read_form(request)
        site.guard.check_write(request, form)
        job_id, verb = form.get("id", ""), form.get("action", "")
        if verb not in ACTIONS:
            raise Refused(400, f"Unknown action {verb!r}.")
        await run_in_threadpool(_act, site.registry, verb, job_id)
        log.info("web: %s %s (%s)", verb, printable(job_id), _who(request))
        if verb == "delete":
            return RedirectResponse(f"{_root(request)}/?done=delete", status_code=303)
        return RedirectResponse(f"{_root(request)}/job?{urlencode({'id': job_id, 'done': verb})}", status_code=303)

    def edit_page(request: Request) -> Response:
        detail = data.job_detail(site.registry, request.query_params.get("id", ""))
        if detail.job is None:
            why = f"The record of {detail.id!r} cannot be read ({detail.error}); delete it, or fix it with the API."
            raise Refused(409, why)
        return site.render(request, "edit.html", detail=detail, values=form_values(detail), error=None, conflict=None)

    async def edit(request: Request) -> Response:
        site.guard.check_writer(request)
        form = await read_form(request)
        site.guard.check_write(request, form)
        job_id = form.get("id", "")
        try:
            changes = parse_edit(job_id, form)
            await run_in_threadpool(lambda: site.registry.update(job_id, seen=form.get("seen") or None, **changes))
        except (InvalidJobError, EditConflict) as exc:
            detail = await run_in_threadpool(data.job_detail, site.registry, job_id)
            conflict = isinstance(exc, EditConflict)
            return site.render(
                request,
                "edit.html",
                status=409 if conflict else 400,
                detail=detail,
                values=form,
                error=str(exc),
                conflict=form_values(detail) if conflict else None,
            )
        log.info("web: edit %s (%s)", printable(job_id), _who(request))
        return RedirectResponse(f"{_root(request)}/job?{urlencode({'id': job_id, 'done': 'edit'})}", status_code=303)

    def login_page(request: Request) -> Response:
        return site.render(request, "login.html", error=None)

    async def login(request: Request) -> Response:
        if site.guard.token is None:
            raise Refused(403, "This page has no token to sign in with.")
        form = await read_form(request)
        site.guard.check_form(request, form)
        if not site.guard.sign_in(request, form.get("token", "")):
            wrong = "That is not the token this page was started with."
            return site.render(request, "login.html", status=403, error=wrong)
        log.info("web: signed in from %s", request.client.host if request.client else "?")
        response = RedirectResponse(f"{_root(request)}/?done=login", status_code=303)
        set_cookie(response, request, SESSION_COOKIE, site.guard.new_session(), max_age=SESSION_SECONDS)
        return response

    async def logout(request: Request) -> Response:
        form = await read_form(request)
        site.guard.check_form(request, form)
        site.guard.end_session(request)
        response = RedirectResponse(f"{_root(request)}/?done=logout", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=request.scope.get("root_path", "") or "/")
        return response

    async def on_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        if request.method == "POST":
            log.warning("web: refused %s from %s: %s", request.url.path, _who(request), exc.why)
        return site.render(request, "error.html", status=exc.status, why=exc.why)

    async def on_not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, JobNotFound)
        why = f"There is no cron job {exc.job_id!r} (it may have been deleted)."
        return site.render(request, "error.html", status=404, why=why)

    async def on_redis(request: Request, exc: Exception) -> Response:
        unreachable = isinstance(exc, (RedisConnectionError, RedisTimeoutError))
        if isinstance(exc, NoPermissionError):
            why = f"Redis refused a command to this page's user: {exc}"
        elif unreachable and request.method == "POST":
            why = "Redis is unreachable: nothing was changed. Try again once it is back."
        elif unreachable:
            why = "Redis is unreachable; this page reloads by itself once it is back."
        else:
            why = f"Redis answered with an error: {shorten(printable(str(exc)), 300)}"
        if request.url.path.endswith(("/api/state", "/rows", "/job/live")):
            return JSONResponse({"error": why}, status_code=503)
        return site.render(request, "error.html", status=503, why=why, retry=unreachable and request.method == "GET")

    async def on_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RediscronError)
        return site.render(request, "error.html", status=400, why=str(exc))

    routes = [
        Route("/", jobs_page, name="jobs"),
        Route("/rows", rows_fragment),
        Route("/api/state", state),
        Route("/job", job_page, name="job"),
        Route("/job/live", job_fragment),
        Route("/delete", confirm_delete),
        Route("/edit", edit_page),
        Route("/edit", edit, methods=["POST"]),
        Route("/action", action, methods=["POST"]),
        Route("/login", login_page),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))] if allowed_hosts else [],
        exception_handlers={
            Refused: on_refused,
            JobNotFound: on_not_found,
            RedisError: on_redis,
            RediscronError: on_error,
        },
    )


def _who(request: Request) -> str:
    """Where a request came from, and how it may write: for the log."""
    how = "bearer" if request.headers.get("authorization", "")[:7].lower() == "bearer " else "browser"
    return f"{how} from {request.client.host if request.client else '?'}"


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _queues(connection: Redis) -> list[str]:
    """rq's own set of known queue names (small), for the queue filter's suggestions."""
    from rq.queue import Queue

    try:
        raw = connection.srandmember(Queue.redis_queues_keys, 500) or []
    except (RedisConnectionError, RedisTimeoutError):
        raise
    except RedisError:
        return []  # rq's own key, of another type: only the suggestions go
    prefix = Queue.redis_queue_namespace_prefix
    names = sorted(data._text(name)[len(prefix) :] for name in raw)
    return names[:500]


def _act(registry: Registry, verb: str, job_id: str) -> None:
    if verb == "enable":
        registry.enable(job_id)
    elif verb == "disable":
        registry.disable(job_id)
    elif verb == "trigger":
        registry.trigger(job_id)
    elif not registry.delete(job_id):
        raise JobNotFound(job_id)


def form_values(detail: data.Detail) -> dict[str, str]:
    """An edit form's fields, filled from the job as stored."""
    job = detail.job
    assert job is not None
    return {
        "kind": "cron" if job.cron else "interval",
        "cron": job.cron or "",
        "interval": str(job.interval or ""),
        "timezone": job.timezone,
        # Escaped as \uXXXX where a character would be invisible or reorder the text; reads back the same.
        "args": to_json(list(job.args)),
        "kwargs": to_json(dict(job.kwargs)),
        "seen": detail.digest,
    }


def parse_edit(job_id: str, form: dict[str, str]) -> dict[str, Any]:
    """The changes an edit form asks for; InvalidJobError names the field of a bad value."""
    changes: dict[str, Any] = {}
    kind = form.get("kind", "cron")
    if kind == "cron":
        changes["cron"] = form.get("cron", "").strip()
        changes["interval"] = None
        if not changes["cron"]:
            raise InvalidJobError(job_id, "cron", "is empty; give a cron expression such as */5 * * * *")
    elif kind == "interval":
        text = form.get("interval", "").strip()
        if not (text.isascii() and text.isdigit()):
            shown = shorten(text, 40)
            raise InvalidJobError(job_id, "interval", f"must be a whole number of seconds, not {shown!r}")
        if len(text) > 12:
            raise InvalidJobError(job_id, "interval", f"must be at most 100 years of seconds, not {len(text)} digits")
        changes["interval"] = int(text)
        changes["cron"] = None
    else:
        raise InvalidJobError(job_id, "schedule", f"must be cron or interval, not {kind!r}")
    changes["timezone"] = form.get("timezone", "UTC").strip() or "UTC"
    for name, kind_of, empty in (("args", list, []), ("kwargs", dict, {})):
        text = form.get(name, "").strip()
        if not text:
            changes[name] = empty
            continue
        if nested_deeper_than(text, 2 * MAX_NESTING):  # refused by validation anyway, past MAX_NESTING
            raise InvalidJobError(job_id, name, "is nested too deeply")
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise InvalidJobError(job_id, name, f"is not valid JSON ({exc})") from None
        except RecursionError:
            raise InvalidJobError(job_id, name, "is nested too deeply") from None
        if not isinstance(value, kind_of):
            raise InvalidJobError(job_id, name, f"must be a JSON {'array' if kind_of is list else 'object'}")
        changes[name] = value
    return changes
