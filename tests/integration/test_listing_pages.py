"""`rqrcron info` over a registry of any size: read and printed a page at a time, the same listing."""

from __future__ import annotations

import re

import redis
from rich.console import Console, Group

from rediscron import RedisCronScheduler
from rediscron.view import render_info, snapshot, stream_info
from tests import jobs


def _plain(group: Group) -> str:
    console = Console(width=200, record=True, file=open("/dev/null", "w"), highlight=False, soft_wrap=True)  # noqa: SIM115
    console.print(group)
    return console.export_text()


def _populate(connection: redis.Redis) -> None:
    admin = RedisCronScheduler(connection, logging_level="WARNING")
    for i in range(7):
        admin.register(jobs.noop, f"q{i % 3}", id=f"job:{i:02d}", interval=60 * (i + 1), enabled=i != 4)
    connection.hset("rq:cron_job:bad", mapping={"id": "bad", "queue_name": "q1", "interval": "soon"})
    connection.sadd("rq:cron_jobs:ids", "bad", b"\xff\xfe")


def _without_times(text: str) -> str:
    # The listings are taken moments apart: their clock-dependent parts may differ.
    return re.sub(
        r"Updated: .*|heartbeat \d+s ago|\bin \d+ \w+|\d+ \w+ ago|\bnow\b|\d{4}-\d\d-\d\dT[0-9:.]+Z", "", text
    )


def test_a_listing_in_pages_is_the_listing_read_at_once(connection: redis.Redis) -> None:
    _populate(connection)
    for by_queue in (False, True):
        for queues in ((), ("q1",)):
            whole = _without_times(_plain(render_info(snapshot(connection, queues), by_queue)))
            streamed = _without_times(
                "".join(_plain(Group(*lines)) for lines in stream_info(connection, queues, by_queue, page_size=1000))
            )
            assert streamed == whole
            small = _without_times(
                "".join(_plain(Group(*lines)) for lines in stream_info(connection, queues, by_queue, page_size=2))
            )
            # Pages of two: the same rows in the same order (columns may widen from one page to the next).
            assert small.split() == whole.split()


def test_a_first_screen_reads_only_what_it_shows_and_says_there_is_more(connection: redis.Redis) -> None:
    _populate(connection)
    snap = snapshot(connection, limit=3)
    assert [row.id for row in snap.rows] == ["\\xff\\xfe", "bad", "job:00"]
    assert not snap.complete and snap.registered == 9
    text = _plain(render_info(snap, by_queue=False))
    assert "the first 3 by id of 9 registered jobs (rqrcron info lists them all)" in text
    full = snapshot(connection, limit=100)
    assert full.complete and len(full.rows) == 9
    assert "9 scheduled jobs total" in _plain(render_info(full, by_queue=False))


def test_ids_sorted_in_runs_spilled_to_files_come_back_in_order(connection: redis.Redis) -> None:
    from rediscron.store import SortedIds

    ids = [f"id:{i:05d}" for i in range(2500)]
    connection.sadd("rq:cron_jobs:ids", *ids[::-1], b"\xff", "caf\u00e9")
    for run_size in (100_000, 300, 7):
        sorted_ids = SortedIds(connection, run_size=run_size)
        assert sorted_ids.bad == ["\\xff"]
        assert [each.decode() for each in sorted_ids] == sorted([*ids, "caf\u00e9"])
        assert len(sorted_ids) == 2501


def test_piped_info_is_the_terminal_listing_as_plain_text(connection: redis.Redis, redis_url: str) -> None:
    from click.testing import CliRunner

    from rediscron.cli import main

    _populate(connection)
    result = CliRunner().invoke(main, ["-u", redis_url, "info"])
    assert result.exit_code == 0, result.output
    whole = _without_times(_plain(render_info(snapshot(connection), by_queue=False)))
    assert _without_times(result.output).split("\n") == whole.split("\n")
