"""A create takes one round trip: placed from a recent reading of the server's clock, and written only
if there is no record yet; an edit still reads what is stored first (two), and loses nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from rediscron import RedisCronJob, writes
from rediscron.registry import Registry
from tests import jobs


class Counting(redis.Connection):
    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        Counting.sent += 1
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


@pytest.fixture
def counted(redis_url: str, connection: redis.Redis) -> Iterator[redis.Redis]:
    client = redis.Redis(connection_pool=redis.ConnectionPool.from_url(redis_url, connection_class=Counting))
    yield client
    client.close()


def _trips(action: Any) -> int:
    Counting.sent = 0
    action()
    return Counting.sent


def test_creates_take_one_round_trip_once_the_clock_was_read(counted: redis.Redis) -> None:
    registry = Registry(counted)
    registry.register(jobs.noop, "q", id="warm", interval=60)  # connects, loads the script, reads the clock
    assert _trips(lambda: registry.register(jobs.noop, "q", id="b", interval=60)) == 1
    created = RedisCronJob.fetch("b", counted)
    assert created.revision > 0 and created.created_at is not None and created.next_enqueue_time is not None


def test_an_edit_reads_the_stored_record_and_keeps_its_rhythm(counted: redis.Redis) -> None:
    registry = Registry(counted)
    registry.register(jobs.noop, "q", id="warm", interval=60)
    registry.register(jobs.noop, "q", id="e", interval=60)
    before = RedisCronJob.fetch("e", counted)
    # The write taken for a create finds the record and gets its timing back; the second is a compare-and-set.
    assert _trips(lambda: registry.register(jobs.noop, "q", id="e", args=(1,), interval=60)) == 2
    after = RedisCronJob.fetch("e", counted)
    assert tuple(after.args) == (1,) and after.next_enqueue_time == before.next_enqueue_time
    assert after.created_at == before.created_at and after.revision > before.revision


def test_conflict_raise_and_ignore_still_see_the_record(counted: redis.Redis) -> None:
    from rediscron.errors import InvalidJobError

    registry = Registry(counted)
    registry.register(jobs.noop, "q", id="c", interval=60)
    with pytest.raises(InvalidJobError, match="exists"):
        registry.register(jobs.noop, "q", id="c", interval=30, conflict="raise")
    assert registry.register(jobs.noop, "q", id="c", interval=30, conflict="ignore").interval == 60


def test_an_old_clock_reading_is_not_trusted(counted: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry(counted)
    registry.register(jobs.noop, "q", id="x", interval=60)
    monkeypatch.setattr(writes, "CLOCK_READING_KEPT", 0.0)
    assert _trips(lambda: registry.register(jobs.noop, "q", id="y", interval=60)) == 2
