"""Change events: listen on the Pub/Sub channel in a background thread and wake the loop."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import keys

log = logging.getLogger("rediscron.events")

_MAX_BACKOFF = 5.0
#: A refusal (ACL) does not go away by itself soon: retry it rarely.
_MAX_REFUSED_BACKOFF = 60.0


class EventListener:
    """Calls ``on_event(event_dict)`` for every change event published by any process.

    It reconnects on its own after a connection error (with capped back-off) and
    reports ``{"event": "subscribed"}`` after every (re)subscription, because
    events may have been missed while it was away.
    """

    def __init__(self, connection: Redis, on_event: Callable[[dict[str, Any]], None]) -> None:
        self.connection = connection
        self.on_event = on_event
        self._stop = threading.Event()
        self._resubscribe = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = False

    def start(self) -> None:
        """Start listening in a daemon thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="rediscron-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and wait (briefly) for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def resubscribe(self) -> None:
        """Subscribe again on a fresh connection (e.g. after a Sentinel failover), from any thread."""
        self._resubscribe.set()

    def _run(self) -> None:
        backoff = 0.1
        failing = False
        while not self._stop.is_set():
            pubsub = self.connection.pubsub()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis-py 8.2
            try:
                self._resubscribe.clear()
                pubsub.subscribe(keys.events())
                while not self._stop.is_set() and not self._resubscribe.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    kind = message.get("type") if message else None
                    if kind == "subscribe":  # confirmed (a refusal arrives as an error instead)
                        self.connected = True
                        if failing:
                            log.info("event channel: reconnected")
                        failing, backoff = False, 0.1
                        self.on_event({"event": "subscribed"})
                    elif kind == "message" and message is not None:
                        self.on_event(_decode(message.get("data")))
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self.connected = False
                if not failing:
                    log.warning("event channel: connection lost (%s); falling back to polling, retrying", exc)
                failing = True
                self._stop.wait(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
            except ResponseError as exc:  # NOPERM: the ACL user may not subscribe to the channel
                self.connected = False
                if not failing:
                    log.warning(
                        "event channel %s refused (%s): edits reach the scheduler only through the "
                        "last-update marker, within max_sleep_interval. To have them at once, grant the "
                        "ACL user +subscribe and &%s.",
                        keys.events(),
                        exc,
                        keys.events(),
                    )
                failing = True
                self._stop.wait(backoff)
                backoff = min(backoff * 2, _MAX_REFUSED_BACKOFF)
            except Exception:  # never let the listener die: the loop depends on it to wake
                log.exception("event channel: unexpected error; restarting the listener")
                self._stop.wait(1.0)
            finally:
                try:
                    pubsub.close()
                except Exception:
                    log.debug("event channel: error while closing", exc_info=True)
        self.connected = False


def _decode(data: Any) -> dict[str, Any]:
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else str(data)
        event = json.loads(text)
        return event if isinstance(event, dict) else {"event": "unknown"}
    except (ValueError, UnicodeDecodeError):
        return {"event": "unknown"}
