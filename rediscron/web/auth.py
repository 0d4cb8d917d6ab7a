"""Who may change jobs from the web page: the token's sessions, an app's own ``auth`` callable, and the
checks every write passes (same-origin, CSRF, a bounded body, throttled sign-ins).

A session is a signed cookie (``nonce.issued.signature``, HMAC of the token): no server state but
the nonces signed out before they expire. A browser write needs its Origin (or Referer) to be the
page's own and a CSRF value derived from its session (or, with an ``auth`` callable, the double-submit
cookie). A write with ``Authorization: Bearer <token>`` needs neither: browsers never add that header
to a cross-site request.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import cast
from urllib.parse import parse_qs, urlsplit

from redis import Redis
from redis.exceptions import RedisError
from starlette.requests import Request

from .. import keys

log = logging.getLogger("rediscron.web")

SESSION_COOKIE = "rqrcron_session"
CSRF_COOKIE = "rqrcron_csrf"
#: A session lasts this long (seconds); signing in again starts a new one.
SESSION_SECONDS = 12 * 3600
#: The largest form the page accepts (its edit form holds at most 64 KiB of arguments, escaped).
MAX_FORM_BYTES = 512 * 1024
#: Wrong tokens tolerated from one address within THROTTLE_WINDOW seconds before sign-in is refused a while.
THROTTLE_FAILURES = 5
THROTTLE_WINDOW = 60.0

STALE_FORM = "The form's security check failed (it is stale, or came from another site); reload the page and try again."
READ_ONLY = (
    "This page is read-only: start it with `rqrcron web --token ...` (or RQRCRON_WEB_TOKEN), "
    "or pass token= or auth= to create_app(), to change jobs from it."
)

_UNCHECKED = object()
SIGN_IN = "Sign in with the page's token to change jobs."

#: Says whether a request may write: given the request, True to allow (for an app's own login).
Auth = Callable[[Request], bool]


class Refused(Exception):
    """A request refused, with why (shown on the page) and its HTTP status."""

    def __init__(self, status: int, why: str) -> None:
        self.status = status
        self.why = why
        super().__init__(why)


def same(given: str, expected: str) -> bool:
    """Constant-time equality of two texts, whatever characters they hold."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


class Guard:
    """The page's write access: configured by ``token`` and/or ``auth``; read-only without either."""

    def __init__(self, token: str | None, auth: Auth | None, connection: Redis | None = None) -> None:
        self.token = token or None
        self.auth = auth
        #: Where signed-out sessions are kept, so every process serving the page, and a restarted one,
        #: refuses them (None: in this process only).
        self.connection = connection
        self._lock = threading.Lock()
        #: Sessions signed out before they expire: nonce -> when they expire anyway.
        self._revoked: dict[str, float] = {}
        #: Wrong tokens by client address: the times of the recent ones.
        self._failures: dict[str, list[float]] = {}

    @property
    def writable(self) -> bool:
        """Whether write access is configured at all (else the page is read-only)."""
        return self.token is not None or self.auth is not None

    def _sign(self, purpose: str, text: str) -> str:
        assert self.token is not None
        return hmac.new(self.token.encode(), f"{purpose}:{text}".encode(), hashlib.sha256).hexdigest()

    # -- sessions --------------------------------------------------------------------------------

    def new_session(self) -> str:
        """A session cookie's value, for a correct token just given."""
        nonce, issued = secrets.token_urlsafe(16), str(int(time.time()))
        return f"{nonce}.{issued}.{self._sign('session', f'{nonce}.{issued}')}"

    def session(self, request: Request) -> str | None:
        """The nonce of the request's valid session, if it has one (checked once per request: a page asks
        for its CSRF value and its write access, a write for both again)."""
        known: object = getattr(request.state, "rqrcron_session", _UNCHECKED)
        if known is _UNCHECKED:
            known = request.state.rqrcron_session = self._check_session(request)
        return cast("str | None", known)

    def _check_session(self, request: Request) -> str | None:
        if self.token is None:
            return None
        nonce, _, rest = request.cookies.get(SESSION_COOKIE, "").partition(".")
        issued, _, signature = rest.partition(".")
        if not nonce or not issued.isascii() or not issued.isdigit() or len(issued) > 12:
            return None
        if not same(signature, self._sign("session", f"{nonce}.{issued}")):
            return None
        if time.time() - int(issued) > SESSION_SECONDS:
            return None
        with self._lock:
            if nonce in self._revoked:
                return None
        if self.connection is not None and self.connection.zscore(keys.signed_out(), nonce) is not None:
            return None
        return nonce

    def end_session(self, request: Request) -> None:
        """Sign the request's session out: its cookie no longer works, even if kept."""
        nonce = self.session(request)
        if nonce is None:
            return
        now = time.time()
        with self._lock:
            self._revoked = {n: until for n, until in self._revoked.items() if until > now}
            self._revoked[nonce] = now + SESSION_SECONDS
        if self.connection is not None:
            try:
                with self.connection.pipeline(transaction=False) as pipe:
                    pipe.zremrangebyscore(keys.signed_out(), "-inf", now)
                    pipe.zadd(keys.signed_out(), {nonce: now + SESSION_SECONDS})
                    pipe.execute()
            except RedisError as exc:
                # A read-only user: signed out here; another process serving the page may still take it.
                log.warning("web: the sign-out could not be recorded in Redis (%s); it holds in this process", exc)

    def csrf_for(self, request: Request, cookie: str | None = None) -> str:
        """The CSRF value the request's forms carry: derived from its session, else the double-submit
        cookie (``cookie``: the one about to be set, when the request has none)."""
        nonce = self.session(request)
        if nonce is not None:
            return self._sign("csrf", nonce)
        return request.cookies.get(CSRF_COOKIE) or cookie or ""

    def _bearer(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        return header[7:].strip() if header[:7].lower() == "bearer " else None

    def may_write(self, request: Request) -> bool:
        if self.auth is not None and self.auth(request):
            return True
        bearer = self._bearer(request)
        if bearer is not None:
            return self.token is not None and same(bearer, self.token)
        return self.session(request) is not None

    # -- checks ----------------------------------------------------------------------------------

    def check_writer(self, request: Request) -> None:
        """What can be refused before the body is read: no write access configured, or none for this request."""
        if not self.writable:
            raise Refused(403, READ_ONLY)
        check_origin(request, required=self._bearer(request) is None)
        bearer = self._bearer(request)
        if bearer is not None and (self.auth is None or not self.auth(request)):
            if self.token is None or not self._attempt(request, bearer):
                raise Refused(403, "The token given is not the one this page was started with.")
        elif not self.may_write(request):
            raise Refused(403, SIGN_IN)

    def check_write(self, request: Request, form: dict[str, str]) -> None:
        """Refused unless write access is configured and granted to this request, from the page itself."""
        if not self.writable:
            raise Refused(403, READ_ONLY)
        if self._bearer(request) is not None:
            check_origin(request, required=False)
            if not self.may_write(request):
                raise Refused(403, "The token given is not the one this page was started with.")
            return
        check_origin(request, required=True)
        nonce = self.session(request)
        expected = self._sign("csrf", nonce) if nonce is not None else request.cookies.get(CSRF_COOKIE, "")
        if not expected or not same(form.get("csrf", ""), expected):
            raise Refused(403, STALE_FORM)
        if not self.may_write(request):
            raise Refused(403, SIGN_IN)

    def check_form(self, request: Request, form: dict[str, str]) -> None:
        """The checks of a form that needs no session (sign in, sign out): same origin, double-submit cookie."""
        check_origin(request, required=True)
        if not same(form.get("csrf", ""), self.csrf_for(request)):
            raise Refused(403, STALE_FORM)

    def sign_in(self, request: Request, token: str) -> bool:
        """Whether ``token`` is the page's; wrong ones are counted, and too many refused a while."""
        if self.token is None:
            raise Refused(403, "This page has no token to sign in with.")
        return self._attempt(request, token)

    def _attempt(self, request: Request, token: str) -> bool:
        """Whether ``token`` (signed in with, or sent as Bearer) is the page's; too many wrong ones from one
        address are refused a while, the right one included (the wait is short; guessing gets nowhere)."""
        assert self.token is not None
        client = request.client.host if request.client else "?"
        now = time.time()
        with self._lock:
            recent = [t for t in self._failures.get(client, []) if now - t < THROTTLE_WINDOW]
            if len(recent) >= THROTTLE_FAILURES:
                raise Refused(429, "Too many wrong tokens from this address; wait a minute and try again.")
        if same(token, self.token):
            return True
        with self._lock:
            self._failures[client] = [*recent, now]
            if len(self._failures) > 10_000:
                self._failures = {client: self._failures[client]}
        return False


def check_origin(request: Request, required: bool) -> None:
    """Refuse a write whose Origin (or Referer) is another site's, or, if ``required``, says none."""
    origin = request.headers.get("origin") or request.headers.get("referer") or ""
    if not origin or origin == "null":
        if required:
            raise Refused(403, "The request did not say which page it came from (no Origin); it was refused.")
        return
    hosts = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "").split(",")[0].strip()}
    if urlsplit(origin).netloc not in hosts - {""}:
        raise Refused(403, "The request came from another site; it was refused.")


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form of at most MAX_FORM_BYTES, each field's last value (no multipart: the page sends none)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise Refused(413, f"The form is larger than {MAX_FORM_BYTES // 1024} KiB; nothing was done.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise Refused(413, f"The form is larger than {MAX_FORM_BYTES // 1024} KiB; nothing was done.")
    text = body.decode("utf-8", "replace")
    return {name: values[-1] for name, values in parse_qs(text, keep_blank_values=True).items()}
