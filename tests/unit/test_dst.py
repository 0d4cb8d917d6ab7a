"""Cron in IANA time zones: the DST rules, for two zones, both transitions, hourly/daily/every-minute."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rediscron.schedule import CronSchedule, validate_timezone


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp())  # type: ignore[misc]


def run(expr: str, tz: str, start: int, n: int) -> list[str]:
    """The next ``n`` slots after ``start``, as UTC hh:mm (with the date when it changes)."""
    schedule = CronSchedule(expr, tz)
    out, t = [], start
    for _ in range(n):
        t = schedule.next_after(t)
        out.append(datetime.fromtimestamp(t, timezone.utc).strftime("%m-%d %H:%M:%S"))
    return out


# Europe/Berlin 2026: clocks go 02:00 CET -> 03:00 CEST on 29 March (01:00 UTC),
# and 03:00 CEST -> 02:00 CET on 25 October (01:00 UTC).
# America/New_York 2026: 02:00 EST -> 03:00 EDT on 8 March (07:00 UTC),
# and 02:00 EDT -> 01:00 EST on 1 November (06:00 UTC).
CASES = [
    # spring forward: a skipped time runs once, at the moment of the change
    ("Europe/Berlin", "30 2 * * *", utc(2026, 3, 28, 12), ["03-29 01:00:00", "03-30 00:30:00"]),
    ("Europe/Berlin", "0 * * * *", utc(2026, 3, 28, 23, 30), ["03-29 00:00:00", "03-29 01:00:00", "03-29 02:00:00"]),
    ("Europe/Berlin", "* * * * *", utc(2026, 3, 29, 0, 58), ["03-29 00:59:00", "03-29 01:00:00", "03-29 01:01:00"]),
    ("America/New_York", "30 2 * * *", utc(2026, 3, 7, 12), ["03-08 07:00:00", "03-09 06:30:00"]),
    ("America/New_York", "0 * * * *", utc(2026, 3, 8, 5, 30), ["03-08 06:00:00", "03-08 07:00:00", "03-08 08:00:00"]),
    ("America/New_York", "* * * * *", utc(2026, 3, 8, 6, 58), ["03-08 06:59:00", "03-08 07:00:00", "03-08 07:01:00"]),
    # fall back: a repeated time runs once, at its first occurrence
    ("Europe/Berlin", "30 2 * * *", utc(2026, 10, 24, 12), ["10-25 00:30:00", "10-26 01:30:00"]),
    ("Europe/Berlin", "0 * * * *", utc(2026, 10, 24, 23, 30), ["10-25 00:00:00", "10-25 02:00:00", "10-25 03:00:00"]),
    ("Europe/Berlin", "* * * * *", utc(2026, 10, 25, 0, 58), ["10-25 00:59:00", "10-25 02:00:00", "10-25 02:01:00"]),
    ("America/New_York", "30 1 * * *", utc(2026, 10, 31, 12), ["11-01 05:30:00", "11-02 06:30:00"]),
    ("America/New_York", "0 * * * *", utc(2026, 11, 1, 4, 30), ["11-01 05:00:00", "11-01 07:00:00", "11-01 08:00:00"]),
    ("America/New_York", "* * * * *", utc(2026, 11, 1, 5, 58), ["11-01 05:59:00", "11-01 07:00:00", "11-01 07:01:00"]),
    # a six-field expression (seconds last), through the skipped hour
    (
        "Europe/Berlin",
        "* * * * * */20",
        utc(2026, 3, 29, 0, 59, 30),
        ["03-29 00:59:40", "03-29 01:00:00", "03-29 01:00:20"],
    ),
]


@pytest.mark.parametrize(("tz", "expr", "start", "expected"), CASES)
def test_dst_rules(tz: str, expr: str, start: int, expected: list[str]) -> None:
    assert run(expr, tz, start, len(expected)) == expected


def test_same_expression_in_other_zones() -> None:
    start = utc(2026, 6, 1)
    assert run("0 9 * * *", "UTC", start, 1) == ["06-01 09:00:00"]
    assert run("0 9 * * *", "Europe/Berlin", start, 1) == ["06-01 07:00:00"]
    assert run("0 9 * * *", "Asia/Kolkata", start, 1) == ["06-01 03:30:00"]


def test_starting_inside_the_repeated_hour() -> None:
    # 01:30 EST, the second 01:30 of the night: every 01:xx time has already run once.
    start = utc(2026, 11, 1, 6, 30)
    assert run("*/10 * * * *", "America/New_York", start, 2) == ["11-01 07:00:00", "11-01 07:10:00"]
    assert CronSchedule("*/10 * * * *", "America/New_York").prev_at_or_before(start) == utc(2026, 11, 1, 5, 50)


def test_prev_at_or_before() -> None:
    s = CronSchedule("*/5 * * * *")
    assert s.prev_at_or_before(utc(2030, 1, 1, 0, 7)) == utc(2030, 1, 1, 0, 5)
    assert s.prev_at_or_before(utc(2030, 1, 1, 0, 5)) == utc(2030, 1, 1, 0, 5)
    berlin = CronSchedule("30 2 * * *", "Europe/Berlin")
    assert berlin.prev_at_or_before(utc(2026, 3, 29, 12)) == utc(2026, 3, 29, 1)


def test_describe_names_the_zone() -> None:
    assert CronSchedule("0 9 * * *", "Europe/Berlin").describe() == "0 9 * * * (Europe/Berlin)"
    assert CronSchedule("0 9 * * *").describe() == "0 9 * * *"


class TestTimezoneValidation:
    @pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
    def test_accepts(self, name: str) -> None:
        assert validate_timezone(name) == name

    def test_accepts_tzinfo_objects(self) -> None:
        assert validate_timezone(ZoneInfo("Europe/Paris")) == "Europe/Paris"
        assert validate_timezone(timezone.utc) == "UTC"

    @pytest.mark.parametrize(
        "name",
        [
            "",
            "Mars/Olympus",
            "localtime",
            "../../etc/passwd",
            5,
            None,
            timezone(timedelta(hours=2)),
            "Europe/Berlin\x00",
        ],
    )
    def test_refuses(self, name: object) -> None:
        with pytest.raises(ValueError, match="time zone"):
            validate_timezone(name)


ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe", "Asia/Kolkata"]
EXPRESSIONS = [
    "* * * * *",
    "*/7 * * * *",
    "0 * * * *",
    "30 2 * * *",
    "15,45 1-3 * * *",
    "0 0 * * 0",
    "* * * * * */15",
    "@hourly",
    "@daily",
]
# Around the 2026 transitions of those zones, and any time at all.
TRANSITIONS = [
    utc(2026, 3, 29, 1),
    utc(2026, 10, 25, 1),
    utc(2026, 3, 8, 7),
    utc(2026, 11, 1, 6),
    utc(2026, 4, 4, 16),
    utc(2026, 10, 3, 16),
]


@st.composite
def moments(draw: st.DrawFn) -> int:
    if draw(st.booleans()):
        return draw(st.sampled_from(TRANSITIONS)) + draw(st.integers(-3 * 3600, 3 * 3600))
    return draw(st.integers(utc(2000, 1, 1), utc(2090, 1, 1)))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ZONES), st.sampled_from(EXPRESSIONS), moments())
def test_slots_increase_and_never_repeat_a_wall_clock_time(tz: str, expr: str, start: int) -> None:
    schedule = CronSchedule(expr, tz)
    zone = ZoneInfo(tz)
    slots = []
    t = start
    for _ in range(40):
        nxt = schedule.next_after(t)
        assert nxt > t
        slots.append(nxt)
        t = nxt
    walls = [datetime.fromtimestamp(s, zone).replace(tzinfo=None) for s in slots]
    assert len(set(walls)) == len(walls), "two slots at one wall-clock time"
    for s in slots:
        assert schedule.prev_at_or_before(s) == s
        assert schedule.next_after(s - 1) == s


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ZONES), st.sampled_from(EXPRESSIONS), moments())
def test_prev_and_next_bracket_any_moment(tz: str, expr: str, t: int) -> None:
    schedule = CronSchedule(expr, tz)
    before, after = schedule.prev_at_or_before(t), schedule.next_after(t)
    assert before <= t < after
    assert schedule.next_after(before) == after
