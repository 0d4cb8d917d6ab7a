"""When a cron job runs: pure functions of a schedule and a time passed in.

Slots are whole epoch seconds. Nothing here reads a clock or touches Redis.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


#: The longest cron expression taken (lists of every minute of an hour fit well within it).
MAX_CRON_LENGTH = 1000


def validate_cron(expression: object) -> str:
    """Return ``expression`` normalised, or raise ``ValueError`` saying what is wrong.

    Five fields (minute hour day-of-month month day-of-week), or six with seconds as the
    sixth field (croniter's and rq's order), or an ``@hourly``-style alias.
    """
    if not isinstance(expression, str):
        raise ValueError(f"must be a string, not {type(expression).__name__}")
    if len(expression) > MAX_CRON_LENGTH:
        # Parsing a huge expression costs the scheduler seconds each time it is read.
        raise ValueError(f"is {len(expression):,} characters long; a cron expression has at most {MAX_CRON_LENGTH}")
    text, error = _checked_cron(expression)
    if error:
        raise ValueError(error)
    return text


@lru_cache(maxsize=4096)
def _checked_cron(expression: str) -> tuple[str, str]:
    """(normalised expression, error or ''): parsing is slow and every read of a job checks its cron."""
    try:
        return _check_cron(expression), ""
    except ValueError as exc:
        return "", str(exc)


def _check_cron(expression: str) -> str:
    text = " ".join(expression.split())
    if not text:
        raise ValueError("is empty")
    if text.startswith("@"):
        if text.lower() not in _ALIASES:
            raise ValueError(f"unknown alias {text!r} (use one of {', '.join(_ALIASES)})")
        return text.lower()
    fields = text.split(" ")
    for part in fields:
        tokens = re.split(r"[,/\-]", part.upper())
        if any(token in ("R", "H") or token.startswith("H(") for token in tokens):
            raise ValueError(f"{text!r} uses a random (R) or hashed (H) field, which would move every slot")
    if len(fields) not in (5, 6):
        raise ValueError(
            f"{text!r} has {len(fields)} field{'' if len(fields) == 1 else 's'}; "
            "expected 5 (minute hour day-of-month month day-of-week) "
            "or 6 (the same, then seconds)"
        )
    try:
        # croniter accepts some expressions that can never match (e.g. 30 Feb); find one run.
        croniter(text, datetime(2000, 1, 1)).get_next(datetime)
    except Exception as exc:  # croniter raises several unrelated types for bad input
        raise ValueError(f"{text!r} is not a valid cron expression: {exc}") from None
    return text


def validate_timezone(name: object) -> str:
    """Return the IANA name of a time zone (``"Europe/Berlin"``), or raise ``ValueError``.

    A ``ZoneInfo`` or ``datetime.timezone.utc`` is accepted and stored by its name. The
    host's local zone is never used: a job's zone is part of the job.
    """
    if name is timezone.utc:
        return "UTC"
    if isinstance(name, ZoneInfo):
        name = name.key
    if not isinstance(name, str) or not name:
        raise ValueError(f"must be an IANA time zone name such as 'Europe/Berlin', not {name!r}")
    if name.lower() == "localtime" or len(name) > 64:
        raise ValueError(f"{name!r} is not an IANA time zone name such as 'Europe/Berlin'")
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, UnicodeError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as 'Europe/Berlin')") from None
    return name


@lru_cache(maxsize=512)
def zone(name: str) -> tzinfo:
    """The tzinfo of an IANA name; ``"UTC"`` is the fixed UTC zone."""
    return timezone.utc if name == "UTC" else ZoneInfo(name)


#: The longest interval: a hundred years (a slot must stay a representable date).
MAX_INTERVAL = 100 * 365 * 86400


def validate_interval(interval: object) -> int:
    """Return ``interval`` as whole seconds, or raise ``ValueError``."""
    if isinstance(interval, bool) or not isinstance(interval, (int, float)):
        raise ValueError(f"must be a whole number of seconds, not {type(interval).__name__}")
    if isinstance(interval, float):
        if not math.isfinite(interval) or not interval.is_integer():
            raise ValueError(f"must be a whole number of seconds, not {interval!r}")
        interval = int(interval)
    if interval <= 0:
        raise ValueError(f"must be positive, not {interval}")
    if interval > MAX_INTERVAL:
        raise ValueError(f"must be at most {MAX_INTERVAL} seconds (100 years), not {interval}")
    return interval


@dataclass(frozen=True)
class IntervalSchedule:
    """Every ``seconds`` seconds, counted from the job's first slot."""

    seconds: int

    def first_slot(self, now: float, last_slot: float | None = None) -> int:
        """The slot a new, edited or re-enabled job gets.

        A job with no earlier slot is due at once (as in rq's own cron). Otherwise
        the rhythm continues from ``last_slot``: the first ``last_slot + k * seconds``
        (k >= 1) that is not in the past.
        """
        current = math.floor(now)
        if last_slot is None:
            return current
        base = math.floor(last_slot)
        if base + self.seconds >= current:
            return base + self.seconds
        steps = math.ceil((current - base) / self.seconds)
        return base + steps * self.seconds

    def next_after_fire(self, slot: int, now: float) -> int:
        """The slot after firing ``slot`` at ``now``; missed slots coalesce into the one fired."""
        if now < slot + self.seconds:
            return slot + self.seconds
        steps = math.floor((now - slot) / self.seconds) + 1
        return slot + steps * self.seconds

    def describe(self) -> str:
        """Human form, as ``rqrcron info`` shows it."""
        return f"every {self.seconds}s"


_EPOCH = datetime(1970, 1, 1)
_parsed = threading.local()


def _iterator(expression: str, start: datetime) -> croniter:
    """A croniter positioned at ``start``; parsing is the costly part, so each thread keeps one per expression."""
    cache: dict[str, croniter] = _parsed.__dict__.setdefault("cache", {})
    it = cache.get(expression)
    if it is None:
        if len(cache) > 4096:
            cache.clear()
        it = cache[expression] = croniter(expression, start)
    else:
        it.set_current(start, force=True)
    return it


#: Slots already computed, by (expression, zone, second, after?): jobs sharing a schedule share
#: their slots, and croniter is the costly part of planning a fire or a registration.
_slots: dict[tuple[str, str, int, bool], int] = {}
_SLOTS_KEPT = 65536


def _remember(key: tuple[str, str, int, bool], slot: int) -> int:
    if len(_slots) >= _SLOTS_KEPT:
        _slots.clear()
    _slots[key] = slot
    return slot


def _wall_seconds(wall: datetime) -> int:
    return math.floor((wall - _EPOCH).total_seconds())


def _first_true(lo: int, hi: int, pred: Callable[[int], bool]) -> int:
    """Smallest x in [lo, hi] with ``pred(x)``, for ``pred`` false then true; ``hi`` if none earlier."""
    while lo < hi:
        mid = (lo + hi) // 2
        if pred(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


@dataclass(frozen=True)
class CronSchedule:
    """A cron expression read in an IANA time zone (UTC by default).

    Cron matches wall-clock times; each matching wall-clock time runs at most once:

    * a time skipped when clocks go forward (02:30 on a spring-forward night) runs once,
      at the first valid instant after it (the moment of the change, 03:00 new time);
      several skipped times (an every-minute job) are that one run;
    * a time repeated when clocks go back runs once, at its first occurrence; the
      second pass through the repeated hour matches nothing.
    """

    expression: str
    timezone: str = "UTC"

    @property
    def _utc(self) -> bool:
        return self.timezone == "UTC"

    def _wall(self, instant: int) -> datetime:
        """The naive wall-clock time of an instant in this zone."""
        if self._utc:
            return _EPOCH + timedelta(seconds=instant)
        return datetime.fromtimestamp(instant, zone(self.timezone)).replace(tzinfo=None)

    def _instant(self, wall: datetime) -> int:
        """The instant a matching wall-clock time runs at (the DST rules above)."""
        if self._utc:
            return _wall_seconds(wall)
        tz = zone(self.timezone)
        first = math.floor(wall.replace(tzinfo=tz, fold=0).timestamp())
        if self._wall(first) == wall:
            return first  # exists (the first occurrence when repeated)
        # Skipped: the moment the clocks jumped, i.e. the first instant whose wall time is later.
        low = math.floor(wall.replace(tzinfo=tz, fold=1).timestamp())
        return _first_true(min(low, first), max(low, first), lambda t: self._wall(t) >= wall)

    def _last_wall_by(self, instant: int) -> datetime:
        """The latest wall-clock time that has run by ``instant`` (every earlier one has too)."""
        wall = self._wall(instant)
        if self._utc or self._instant(wall) == instant:
            return wall
        # ``instant`` is in the second pass of a repeated hour: its wall times all ran in the first.
        base = _wall_seconds(wall)
        span = 86400
        end = _first_true(base, base + span, lambda w: self._instant(_EPOCH + timedelta(seconds=w)) > instant)
        return _EPOCH + timedelta(seconds=end - 1)

    def next_after(self, after: float) -> int:
        """First slot (whole epoch second) strictly after ``after``."""
        start = math.floor(after)
        key = (self.expression, self.timezone, start, True)
        found = _slots.get(key)
        if found is not None:
            return found
        it = _iterator(self.expression, self._last_wall_by(start))
        for _ in range(100_000):
            slot = self._instant(it.get_next(datetime))
            if slot > start:
                return _remember(key, slot)
        raise ValueError(f"{self.expression!r} has no run after {after}")  # pragma: no cover

    def prev_at_or_before(self, at: float) -> int:
        """Latest slot at or before ``at``."""
        key = (self.expression, self.timezone, math.floor(at), False)
        found = _slots.get(key)
        if found is not None:
            return found
        start = self._last_wall_by(math.floor(at)) + timedelta(seconds=1)
        return _remember(key, self._instant(_iterator(self.expression, start).get_prev(datetime)))

    def first_slot(self, now: float, last_slot: float | None = None) -> int:
        """The next matching time after ``now``: cron jobs never fire at once on creation."""
        return self.next_after(now)

    def next_after_fire(self, slot: int, now: float) -> int:
        """The slot after firing ``slot`` at ``now``; missed slots coalesce into the one fired."""
        return self.next_after(max(now, slot))

    def describe(self) -> str:
        """Human form, as ``rqrcron info`` shows it."""
        return self.expression if self._utc else f"{self.expression} ({self.timezone})"


Schedule = IntervalSchedule | CronSchedule


def make_schedule(interval: int | None, cron: str | None, timezone_name: str = "UTC") -> Schedule:
    """The schedule object for a job's ``interval`` or ``cron`` field."""
    if cron:
        return CronSchedule(cron, timezone_name)
    if interval:
        return IntervalSchedule(interval)
    raise ValueError("a cron job needs an interval or a cron expression")
