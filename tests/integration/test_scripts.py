"""Scripts sent in a stream (`scripts.run_streamed`): every reply in order, a forgotten script loaded
and its calls sent again, and the connection left clean for the next command."""

from __future__ import annotations

import pytest
import redis
from redis.exceptions import ResponseError

from rediscron import scripts


def _ticks(n: int) -> list[tuple[list[str], list[object]]]:
    # tick.lua reads; each call asks for a different number of entries, so replies can be told apart.
    return [
        (["rq:cron_jobs:schedule", "rq:cron_jobs:last_update"], [repr(1000.0 + i), 0, "rq:cron_job:", 0, "0", "0"])
        for i in range(n)
    ]


def test_replies_come_back_in_order_across_groups(connection: redis.Redis) -> None:
    replies = scripts.run_streamed("tick", connection, _ticks(23), per_send=5)
    assert [float(reply[0]) for reply in replies] == [1000.0 + i for i in range(23)]
    assert connection.ping()


def test_a_forgotten_script_is_loaded_and_its_calls_sent_again(connection: redis.Redis) -> None:
    scripts.run_streamed("tick", connection, _ticks(1))
    connection.script_flush()  # what a restart does
    replies = scripts.run_streamed("tick", connection, _ticks(7), per_send=3)
    assert [float(reply[0]) for reply in replies] == [1000.0 + i for i in range(7)]


def test_an_error_reply_is_raised_and_the_connection_stays_usable(connection: redis.Redis) -> None:
    calls = _ticks(3)
    calls[1] = (calls[1][0], ["not a number", 0, "rq:cron_job:", 0, "0", "0"])
    connection.set("rq:cron_jobs:schedule", "not a sorted set")
    with pytest.raises(ResponseError):
        scripts.run_streamed("tick", connection, calls, per_send=1)
    connection.delete("rq:cron_jobs:schedule")
    # Every reply of the failed stream was read: the next command gets its own.
    assert connection.get("rq:cron_jobs:last_update") is None
    assert len(scripts.run_streamed("tick", connection, _ticks(2))) == 2
