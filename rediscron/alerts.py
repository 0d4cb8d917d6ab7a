"""Telling someone a job was disabled for failing (``max_consecutive_failures``): a callable, or a webhook.

The scheduler calls the hook after the fire that disabled the job (the disable itself, its drop
log entry and its audit entry are already written, in that fire's atomic step). A hook that raises
or a webhook that does not answer is logged, never allowed to stop the scheduler; a webhook is
posted from a thread of its own (5 s timeout), so a slow receiver never delays a fire.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("rediscron.scheduler")

#: Seconds a webhook receiver has to answer.
WEBHOOK_TIMEOUT = 5.0

#: What the scheduler takes as ``on_disable``: a callable given the event, or a webhook URL.
OnDisable = Callable[[dict[str, Any]], object] | str


def notifier(target: OnDisable | None) -> Callable[[dict[str, Any]], None] | None:
    """A function telling ``target`` of an event, never raising; None for no target."""
    if target is None:
        return None
    if isinstance(target, str):
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"on_disable must be a callable or an http(s) URL, not {target!r}")
        return lambda event: _post_soon(target, event)
    if not callable(target):
        raise ValueError(f"on_disable must be a callable or an http(s) URL, not {target!r}")
    return lambda event: _call(target, event)


def _call(target: Callable[[dict[str, Any]], object], event: dict[str, Any]) -> None:
    try:
        target(event)
    except Exception:
        log.exception("on_disable hook failed for cron job %s", event.get("id"))


def _post_soon(url: str, event: dict[str, Any]) -> None:
    threading.Thread(target=_post, args=(url, event), name="rediscron-on-disable", daemon=True).start()


def _post(url: str, event: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(event).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:
            response.read(1024)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.warning("on_disable webhook %s failed for cron job %s: %s", urlsplit(url).netloc, event.get("id"), exc)
