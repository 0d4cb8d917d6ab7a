"""The audit log: every change to the registry, who made it and what it changed, in a capped Redis stream.

Each entry is appended by the script that makes the change, in the same atomic step (lua/save.lua,
set_enabled.lua, delete.lua; `Registry.pause`/`resume` in their transaction), so the log holds
exactly the changes that happened. An entry says when (the stream id), the job (``id``), the
``action`` (created, updated, enabled, disabled, deleted, paused, resumed; ``source`` says
``file`` for `rqrcron apply`), the ``actor`` (`actor()`), the job's ``revision`` after the change,
and ``changes``: each definition field changed, from what to what, as stored. An upsert that
changes nothing is not recorded. The stream keeps about the newest `AUDIT_LENGTH` entries.

What is read back is data: an entry that is not ours (hand-written, truncated) is shown as far as
it can be read, never trusted further.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, cast

from redis import Redis
from redis.exceptions import ResponseError
from rq.utils import as_text

from . import keys
from .errors import RediscronError

#: About how many entries the audit log keeps (Redis trims it in whole blocks: a few more may stay).
AUDIT_LENGTH = 10_000
#: Where who makes changes is named for a whole process (``REDISCRON_ACTOR=deploy-bot``).
ACTOR_VARIABLE = "REDISCRON_ACTOR"

_acting: ContextVar[str | None] = ContextVar("rediscron_actor", default=None)


@functools.cache
def process_actor() -> str:
    """``user@host`` of this process (read once: every write names it)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment (a container's uid)
        user = "?"
    return f"{user}@{socket.gethostname()}"


def actor() -> str:
    """Who the changes made now are recorded as: `acting_as`, else ``$REDISCRON_ACTOR``, else ``user@host``
    (text Redis can store: bytes that are not UTF-8 are escaped; at most 200 characters)."""
    name = _acting.get() or os.environ.get(ACTOR_VARIABLE) or process_actor()
    return name.encode("utf-8", "backslashreplace").decode("utf-8")[:MAX_ACTOR]


@contextmanager
def acting_as(name: str) -> Iterator[None]:
    """Record the changes made inside the block (in this thread or task) as made by ``name``.

    ```python
    with acting_as("alice via the admin page"):
        RedisCronJob.fetch("metric:pm25", redis).disable()
    ```
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"an actor must be a non-empty string, not {name!r}")
    token = _acting.set(name)
    try:
        yield
    finally:
        _acting.reset(token)


@dataclass(frozen=True)
class AuditEntry:
    """One change, as the audit log holds it."""

    #: The stream entry's id (``<milliseconds>-<n>``): its order, and when.
    entry_id: str
    at: datetime
    action: str
    actor: str
    #: The job changed (None for a registry-wide change: pause, resume).
    job_id: str | None = None
    #: The job's revision after the change (before it, for a delete); None if not recorded.
    revision: int | None = None
    #: Each definition field changed: (old, new) as stored; None for absent.
    changes: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    #: ``file`` for a change made by `rqrcron apply`; a pause's reason.
    source: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "at": self.at.isoformat(),
            "action": self.action,
            "actor": self.actor,
            "id": self.job_id,
            "revision": self.revision,
            "source": self.source,
            "detail": self.detail,
            "changes": {name: {"old": old, "new": new} for name, (old, new) in sorted(self.changes.items())},
        }


def entry_fields(action: str, *, detail: str = "") -> dict[str, str]:
    """The fields of a registry-wide entry (pause, resume), for ``XADD``."""
    return {"action": action, "actor": actor(), "detail": detail}


def append(pipe: Any, fields: dict[str, str]) -> None:
    """Queue one entry on ``pipe`` (part of the transaction making the change)."""
    pipe.xadd(keys.audit(), fields, maxlen=AUDIT_LENGTH, approximate=True)


def read(connection: Redis, job_id: str | None = None, count: int = 50) -> list[AuditEntry]:
    """The newest ``count`` entries (of ``job_id`` only, if given), newest first."""
    found: list[AuditEntry] = []
    for entry in _newest_first(connection):
        if job_id is None or entry.job_id == job_id:
            found.append(entry)
            if len(found) >= count:
                break
    return found


def _newest_first(connection: Redis, page: int = 500) -> Iterator[AuditEntry]:
    end = "+"
    while True:
        try:
            reply = connection.xrevrange(keys.audit(), max=end, min="-", count=page)
        except ResponseError as exc:
            if "WRONGTYPE" not in str(exc):
                raise
            raise RediscronError(
                f"{keys.audit()} is not a stream (the audit log): something else wrote that key; "
                "delete it to start the log again"
            ) from None
        batch = cast(list[tuple[Any, dict[Any, Any]]], reply)
        for raw_id, raw_fields in batch:
            yield _entry(as_text(raw_id), raw_fields)
        if len(batch) < page:
            return
        end = "(" + as_text(batch[-1][0])


def _entry(entry_id: str, raw: dict[Any, Any]) -> AuditEntry:
    text = {_text(k): _text(v) for k, v in raw.items()}
    try:
        at = datetime.fromtimestamp(int(entry_id.split("-")[0]) / 1000, timezone.utc)
    except ValueError:
        at = datetime.fromtimestamp(0, timezone.utc)
    revision = text.get("revision", "")
    return AuditEntry(
        entry_id=entry_id,
        at=at,
        action=text.get("action", "?"),
        actor=text.get("actor", "?"),
        job_id=text.get("id"),
        revision=int(revision) if _REVISION.fullmatch(revision) else None,
        changes=_changes(text.get("changes", "")),
        source=text.get("source", ""),
        detail=text.get("detail", ""),
    )


#: A revision as rediscron writes it (ASCII digits: ``"²".isdigit()`` is true too).
_REVISION = re.compile(r"[0-9]{1,18}")
#: Longest actor recorded.
MAX_ACTOR = 200


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _changes(raw: str) -> dict[str, tuple[str | None, str | None]]:
    """The ``changes`` field: {field: [old, new]}, false for absent; what is not that is left out."""
    try:
        decoded = json.loads(raw) if raw else {}
    except (ValueError, RecursionError):
        return {}
    if not isinstance(decoded, dict):
        return {}
    changes: dict[str, tuple[str | None, str | None]] = {}
    for name, pair in decoded.items():
        if isinstance(pair, list) and len(pair) == 2 and all(v is False or isinstance(v, str) for v in pair):
            old, new = (None if v is False else v for v in pair)
            changes[str(name)] = (old, new)
    return changes
