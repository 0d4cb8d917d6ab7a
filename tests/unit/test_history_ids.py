"""A history entry's slot comes from a scheduled run's id only, never from a run by hand's random part."""

from __future__ import annotations

from rediscron.history import slot_of_rq_id


def test_slots_of_rq_job_ids() -> None:
    assert slot_of_rq_id("cron-0dda77f1a8f8bee4-1795468637") == 1795468637
    assert slot_of_rq_id("cron-0dda77f1a8f8bee4-manual-628210529123") is None  # all digits, by chance
    assert slot_of_rq_id("cron-0dda77f1a8f8bee4-manual-fbbdc5ae7ed4") is None
    assert slot_of_rq_id("big-99999999999999999") is None
    assert slot_of_rq_id("cron-x-" + "9" * 30) is None
