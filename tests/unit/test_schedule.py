from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rediscron.schedule import (
    CronSchedule,
    IntervalSchedule,
    make_schedule,
    validate_cron,
    validate_interval,
)

T0 = int(datetime(2030, 1, 1, tzinfo=timezone.utc).timestamp())


class TestValidation:
    @pytest.mark.parametrize("expr", ["*/5 * * * *", "0 0 * * 1-5", "@hourly", "@DAILY", "  1  2 * * * "])
    def test_accepts(self, expr: str) -> None:
        assert validate_cron(expr)

    def test_normalises_space_and_alias_case(self) -> None:
        assert validate_cron("  1  2 * * * ") == "1 2 * * *"
        assert validate_cron("@DAILY") == "@daily"

    @pytest.mark.parametrize(
        ("expr", "message"),
        [
            ("", "empty"),
            ("* * * *", "4 fields"),
            ("61 * * * *", "not a valid cron"),
            ("@sometimes", "unknown alias"),
            ("a b c d e", "not a valid cron"),
            (5, "must be a string"),
        ],
    )
    def test_refuses(self, expr: object, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            validate_cron(expr)

    @pytest.mark.parametrize("value", [1, 300, 300.0])
    def test_interval_accepts(self, value: object) -> None:
        assert validate_interval(value) == int(value)  # type: ignore[call-overload]

    @pytest.mark.parametrize("value", [0, -5, 1.5, True, "300", None, float("inf")])
    def test_interval_refuses(self, value: object) -> None:
        with pytest.raises(ValueError):
            validate_interval(value)


class TestInterval:
    def test_new_job_is_due_at_once_on_a_whole_second(self) -> None:
        assert IntervalSchedule(60).first_slot(T0 + 0.7) == T0

    def test_rhythm_continues_from_last_slot(self) -> None:
        s = IntervalSchedule(60)
        assert s.first_slot(T0 + 10, last_slot=T0) == T0 + 60
        # Long gap: the first point of the rhythm not in the past, no burst of missed runs.
        assert s.first_slot(T0 + 1000, last_slot=T0) == T0 + 1020

    def test_on_time_fire_moves_one_interval(self) -> None:
        assert IntervalSchedule(60).next_after_fire(T0, T0 + 0.2) == T0 + 60

    def test_missed_slots_coalesce(self) -> None:
        # Fired 10 minutes late: one run, next slot is the first of the rhythm after now.
        assert IntervalSchedule(60).next_after_fire(T0, T0 + 600.5) == T0 + 660

    @given(st.integers(1, 10_000), st.floats(0, 1e6, allow_nan=False))
    def test_next_is_always_in_the_future_and_on_the_grid(self, seconds: int, lateness: float) -> None:
        nxt = IntervalSchedule(seconds).next_after_fire(T0, T0 + lateness)
        assert nxt > T0 + lateness
        assert (nxt - T0) % seconds == 0
        assert nxt - (T0 + lateness) <= seconds


class TestCron:
    def test_next_after_is_strictly_after(self) -> None:
        s = CronSchedule("*/5 * * * *")
        assert s.next_after(T0) == T0 + 300
        assert s.next_after(T0 - 0.5) == T0

    def test_new_job_waits_for_its_first_match(self) -> None:
        assert CronSchedule("0 * * * *").first_slot(T0 + 1) == T0 + 3600

    def test_missed_slots_coalesce(self) -> None:
        # Fired 3 hours late for an hourly job: the next slot is the next hour after now.
        assert CronSchedule("0 * * * *").next_after_fire(T0, T0 + 3 * 3600 + 5) == T0 + 4 * 3600

    def test_alias(self) -> None:
        assert CronSchedule("@daily").next_after(T0) == T0 + 86400

    @given(st.floats(0, 3e7, allow_nan=False), st.sampled_from(["*/1 * * * *", "7 */3 * * *", "0 0 29 2 *"]))
    def test_next_strictly_increases(self, offset: float, expr: str) -> None:
        s = CronSchedule(expr)
        first = s.next_after(T0 + offset)
        second = s.next_after(first)
        assert T0 + offset < first < second


def test_make_schedule() -> None:
    assert make_schedule(10, None) == IntervalSchedule(10)
    assert make_schedule(None, "@hourly") == CronSchedule("@hourly")
    assert make_schedule(10, None).describe() == "every 10s"
    with pytest.raises(ValueError):
        make_schedule(None, None)
