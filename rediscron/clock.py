"""Time helpers. Only the scheduler loop reads the clock; everything else takes time in."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from functools import lru_cache

from redis import Redis

#: A clock returns the current time as epoch seconds.
Clock = Callable[[], float]

RQ_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def redis_time(connection: Redis) -> float:
    """The Redis server's clock, so that hosts with skewed clocks agree."""
    return epoch_of_time_reply(connection.time())


class ServerClock:
    """The Redis server's time estimated without asking it: its last reading, carried forward by this
    host's monotonic clock (so a step of the wall clock cannot make a run early or place one wrong)."""

    def __init__(self) -> None:
        self._offset: float | None = None
        self._read_at = 0.0

    def note(self, server_now: float) -> None:
        """Remember a reading of the server's clock (epoch seconds) taken just now."""
        self._read_at = time.monotonic()
        self._offset = server_now - self._read_at

    def estimate(self, max_age: float = math.inf) -> float | None:
        """The server's time now, from a reading at most ``max_age`` seconds old; None if there is none."""
        if self._offset is None or time.monotonic() - self._read_at > max_age:
            return None
        return time.monotonic() + self._offset


def epoch_of_time_reply(reply: tuple[int, int]) -> float:
    """Epoch seconds of a ``TIME`` reply (seconds, microseconds)."""
    seconds, microseconds = reply
    return int(seconds) + int(microseconds) / 1_000_000


def from_epoch(epoch: float) -> datetime:
    """Aware UTC datetime of an epoch time."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def to_epoch(moment: datetime) -> float:
    """Epoch seconds of an aware datetime (a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def floor_epoch(epoch: float) -> int:
    """Whole epoch second at or before ``epoch``: slots are whole seconds."""
    return math.floor(epoch)


def format_time(moment: datetime) -> str:
    """RQ's UTC datetime format, as rq writes ``enqueued_at``."""
    return moment.astimezone(timezone.utc).strftime(RQ_DATETIME_FORMAT)


_RQ_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{6})?Z")


@lru_cache(maxsize=4096)
def parse_time(text: str) -> datetime:
    """Inverse of `format_time()`; also accepts RQ's second-resolution form.

    Remembered: the jobs a pass reads often share their times (a shared slot, the same run time).
    """
    if _RQ_TIME.fullmatch(text):
        try:
            return datetime.fromisoformat(text[:-1]).replace(tzinfo=timezone.utc)  # strptime is ten times slower
        except ValueError:
            pass
    for fmt in (RQ_DATETIME_FORMAT, "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    raise ValueError(f"not an RQ UTC datetime: {text!r}")
