"""The catch-up plan: pure, with times passed in."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rediscron import RedisCronJob
from rediscron.catchup import CATCHUP_LIMIT, COUNT_LIMIT, ON_TIME, plan
from tests import jobs

T0 = 1_900_000_800


def job(**options: Any) -> RedisCronJob:
    options.setdefault("cron", "* * * * *")
    return RedisCronJob(id="j", queue_name="q", func=jobs.noop, **options)


def test_on_time_runs_the_slot() -> None:
    p = plan(job(), T0, T0 + 0.1)
    assert (p.run, p.next_slot, p.drop, p.final) == (T0, T0 + 60, None, False)


def test_coalesce_runs_the_newest_due_slot() -> None:
    p = plan(job(), T0, T0 + 600.5)
    assert (p.run, p.next_slot) == (T0 + 600, T0 + 660)
    assert p.drop is not None and (p.drop.first, p.drop.last, p.drop.slots, p.drop.reason) == (
        T0,
        T0 + 540,
        10,
        "coalesced",
    )


def test_skip_tolerates_only_a_few_seconds() -> None:
    assert plan(job(catchup="skip"), T0, T0 + ON_TIME).run == T0
    p = plan(job(catchup="skip"), T0, T0 + ON_TIME + 1)
    assert p.run is None and p.next_slot == T0 + 60 and p.drop is not None and p.drop.reason == "skipped"


def test_grace_applies_to_the_newest_slot() -> None:
    assert plan(job(misfire_grace_time=10), T0, T0 + 600 + 10).run == T0 + 600
    p = plan(job(misfire_grace_time=10), T0, T0 + 600 + 11)
    assert p.run is None and p.drop is not None and (p.drop.slots, p.drop.reason) == (11, "misfired")


def test_all_runs_the_oldest_first_then_the_next() -> None:
    p = plan(job(catchup="all"), T0, T0 + 600.5)
    assert (p.run, p.next_slot, p.drop) == (T0, T0 + 60, None)


def test_all_keeps_the_newest_hundred() -> None:
    p = plan(job(catchup="all", interval=10, cron=None), T0, T0 + 10 * 1000)
    assert p.run == T0 + 10 * (1000 - CATCHUP_LIMIT + 1)
    assert p.drop is not None and p.drop.slots == 1001 - CATCHUP_LIMIT and p.drop.exact


def test_long_cron_outages_are_counted_up_to_a_bound() -> None:
    p = plan(job(cron="* * * * * *"), T0, T0 + 86400)
    assert p.drop is not None and (p.drop.slots, p.drop.exact) == (COUNT_LIMIT, False)
    assert p.run == T0 + 86400


def test_end_time_clamps_the_run_and_ends_the_job() -> None:
    end = datetime.fromtimestamp(T0 + 150, timezone.utc)
    p = plan(job(end_time=end), T0, T0 + 600)
    assert (p.run, p.next_slot) == (T0 + 120, None)


def test_max_runs_marks_the_last_run() -> None:
    j = job(max_runs=3)
    j.run_count = 2
    assert plan(j, T0, T0).final


def test_catch_up_across_a_dst_change() -> None:
    # Europe/Berlin, 29 March 2026: 02:00 CET -> 03:00 CEST at 01:00 UTC. Hourly slots 00:00 and 01:00 UTC.
    start = int(datetime(2026, 3, 29, 0, tzinfo=timezone.utc).timestamp())
    p = plan(job(cron="0 * * * *", timezone="Europe/Berlin", catchup="all"), start, start + 7200.5)
    assert (p.run, p.next_slot) == (start, start + 3600)
    p = plan(job(cron="0 * * * *", timezone="Europe/Berlin"), start, start + 7200.5)
    assert p.run == start + 7200 and p.drop is not None and p.drop.slots == 2
