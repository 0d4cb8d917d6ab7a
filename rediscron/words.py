"""A schedule in words: ``every 5 minutes``, ``at 09:00 on Monday to Friday``.

Common shapes only; anything else is left to its cron expression (the callers show both).
"""

from __future__ import annotations

import re

_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_NAMES = {name[:3].lower(): i for i, name in enumerate(_DAYS)}
_NUMBER = re.compile(r"\d{1,2}$")
_STEP = re.compile(r"\*/(\d{1,4})$")


def interval_words(seconds: int) -> str:
    """``every 45 seconds``, ``every 5 minutes``, ``every 1 h 30 min``, ``every day``."""
    units = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
    for name, size in units:
        if seconds % size == 0 and (size > 1 or seconds < 60):
            count = seconds // size
            return f"every {name}" if count == 1 else f"every {count} {name}s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "", f"{secs} s" if secs else ""]
    return "every " + " ".join(part for part in parts if part)


def _day(text: str) -> int | None:
    if text.isdigit() and int(text) <= 7:
        return int(text) % 7
    return _NAMES.get(text.lower())


def _days(field: str) -> str | None:
    """``Monday to Friday``, ``Monday, Wednesday and Friday``; None if not a plain list or range."""
    if "-" in field and "," not in field:
        first, _, last = field.partition("-")
        start, end = _day(first), _day(last)
        if start is None or end is None:
            return None
        return f"{_DAYS[start]} to {_DAYS[end]}"
    days = [_day(part) for part in field.split(",")]
    if any(day is None for day in days):
        return None
    names = [_DAYS[day] for day in days if day is not None]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def cron_words(expression: str) -> str | None:
    """A five-field cron expression in words, for the common shapes; None for the others."""
    fields = expression.split()
    if len(fields) != 5:
        return "every second" if fields == ["*"] * 6 else None
    minute, hour, dom, month, dow = fields
    if month != "*":
        return None
    if (minute, hour, dom, dow) == ("*", "*", "*", "*"):
        return "every minute"
    step = _STEP.match(minute)
    if step and (hour, dom, dow) == ("*", "*", "*"):
        return f"every {step.group(1)} minutes"
    if not _NUMBER.match(minute):
        return None
    hour_step = _STEP.match(hour)
    if hour == "*" or hour_step:
        if (dom, dow) != ("*", "*"):
            return None
        every = "every hour" if hour == "*" else f"every {hour_step.group(1) if hour_step else ''} hours"
        return f"{every} at :{int(minute):02d}"
    if not _NUMBER.match(hour):
        return None
    at = f"at {int(hour):02d}:{int(minute):02d}"
    if dom == "*" and dow == "*":
        return f"{at} every day"
    if dom == "*":
        days = _days(dow)
        return f"{at} on {days}" if days else None
    if dow == "*" and _NUMBER.match(dom):
        return f"{at} on day {int(dom)} of each month"
    return None


def schedule_words(interval: int | None, cron: str | None, timezone: str = "UTC") -> str:
    """A job's schedule in words, its zone named when it is not UTC; the expression itself when
    it has no simple wording."""
    if interval:
        return interval_words(interval)
    words = cron_words(cron or "") or (cron or "")
    return words if timezone == "UTC" else f"{words} ({timezone})"
