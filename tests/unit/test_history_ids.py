"""Small parsers: a history entry's slot from its RQ job id, and JSON nesting measured before parsing."""

from __future__ import annotations

from rediscron.history import slot_of_rq_id


def test_slots_of_rq_job_ids() -> None:
    assert slot_of_rq_id("cron-0dda77f1a8f8bee4-1795468637") == 1795468637
    assert slot_of_rq_id("cron-0dda77f1a8f8bee4-manual-628210529123") is None  # all digits, by chance
    assert slot_of_rq_id("cron-0dda77f1a8f8bee4-manual-fbbdc5ae7ed4") is None
    assert slot_of_rq_id("big-99999999999999999") is None
    assert slot_of_rq_id("cron-x-" + "9" * 30) is None


def test_json_nesting_is_measured_before_parsing() -> None:
    from rediscron.text import nested_deeper_than

    assert nested_deeper_than("[" * 5000 + "]" * 5000, 200)
    assert not nested_deeper_than('[[1, {"a": "[[[[[[["}]]', 3)  # brackets in strings do not count
    assert nested_deeper_than("[[[1]]]", 2) and not nested_deeper_than("[[[1]]]", 3)
    assert not nested_deeper_than('["\\"[[[["]', 1)  # an escaped quote does not end the string
