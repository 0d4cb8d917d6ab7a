"""When a cron job runs: pure functions of a schedule and a time passed in.

Slots are whole epoch seconds. Nothing here reads a clock or touches Redis.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from croniter import croniter

from .clock import from_epoch

_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def validate_cron(expression: object) -> str:
    """Return ``expression`` normalised, or raise ``ValueError`` saying what is wrong."""
    if not isinstance(expression, str):
        raise ValueError(f"must be a string, not {type(expression).__name__}")
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
    if len(fields) != 5:
        raise ValueError(
            f"{text!r} has {len(fields)} fields; expected 5 (minute hour day-of-month month day-of-week)"
        )
    try:
        croniter(text, datetime(2000, 1, 1, tzinfo=timezone.utc))
        # croniter accepts some expressions that can never match (e.g. 30 Feb); find one run.
        croniter(text, datetime(2000, 1, 1, tzinfo=timezone.utc)).get_next(datetime)
    except Exception as exc:  # croniter raises several unrelated types for bad input
        raise ValueError(f"{text!r} is not a valid cron expression: {exc}") from None
    return text


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


@dataclass(frozen=True)
class CronSchedule:
    """A cron expression read in UTC."""

    expression: str

    def next_after(self, after: float) -> int:
        """First matching whole second strictly after ``after``."""
        start = from_epoch(math.floor(after))
        nxt = croniter(self.expression, start).get_next(datetime)
        return math.floor(nxt.timestamp())

    def first_slot(self, now: float, last_slot: float | None = None) -> int:
        """The next matching time after ``now``: cron jobs never fire at once on creation."""
        return self.next_after(now)

    def next_after_fire(self, slot: int, now: float) -> int:
        """The slot after firing ``slot`` at ``now``; missed slots coalesce into the one fired."""
        return self.next_after(max(now, slot))

    def describe(self) -> str:
        """Human form, as ``rqrcron info`` shows it."""
        return self.expression


Schedule = IntervalSchedule | CronSchedule


def make_schedule(interval: int | None, cron: str | None) -> Schedule:
    """The schedule object for a job's ``interval`` or ``cron`` field."""
    if cron:
        return CronSchedule(cron)
    if interval:
        return IntervalSchedule(interval)
    raise ValueError("a cron job needs an interval or a cron expression")
