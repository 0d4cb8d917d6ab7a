"""``wait_replicas`` also covers the fires: runs the replicas did not acknowledge are said and counted."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
import redis

from rediscron import RedisCronScheduler
from rediscron.testing import RedisServer
from tests import jobs
from tests.integration.test_policies import Clock

T0 = 1_900_000_800


@pytest.fixture
def master_and_replica() -> Iterator[tuple[RedisServer, RedisServer]]:
    master = RedisServer()
    master.start()
    replica = RedisServer(extra_args=["--replicaof", "127.0.0.1", str(master.port)])
    replica.start()
    try:
        deadline = time.monotonic() + 10
        while replica.client().info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                pytest.fail("the replica did not connect")
            time.sleep(0.05)
        yield master, replica
    finally:
        replica.cleanup()
        master.cleanup()


def test_fires_a_replica_did_not_acknowledge_are_said_and_not_reported_as_fired(
    master_and_replica: tuple[RedisServer, RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    master, replica = master_and_replica
    clock = Clock(T0 + 0.5)
    s = RedisCronScheduler(master.client(), name="w", clock=clock, wait_replicas=1, logging_level="WARNING")
    s.register(jobs.noop, "q", id="a", interval=60)
    s.register_birth()
    assert [job.id for job in s.enqueue_jobs()] == ["a"]  # the replica acknowledged it
    assert (s.stats.fired, s.stats.unreplicated) == (1, 0)
    replica.stop()  # gone: nothing acknowledges the next fire
    clock.now = T0 + 60.5
    with caplog.at_level(logging.WARNING, logger="rediscron"):
        assert s.enqueue_jobs() == []  # enqueued on this master, but not reported as fired
    assert master.client().llen("rq:queue:q") == 2
    assert (s.stats.fired, s.stats.unreplicated) == (1, 1)
    assert "only 0 of 1 replica(s) acknowledged them" in caplog.text
    s.register_death()


def test_without_wait_replicas_nothing_waits(master_and_replica: tuple[RedisServer, RedisServer]) -> None:
    master, replica = master_and_replica
    replica.stop()
    clock = Clock(T0 + 0.5)
    s = RedisCronScheduler(master.client(), name="n", clock=clock, logging_level="WARNING")
    s.register(jobs.noop, "q", id="a", interval=60)
    s.register_birth()
    assert [job.id for job in s.enqueue_jobs()] == ["a"]
    assert s.stats.unreplicated == 0
    s.register_death()


def test_each_wait_goes_on_the_connection_that_wrote(
    master_and_replica: tuple[RedisServer, RedisServer],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Valkey counts the replicas that have the writes of the connection WAIT is sent on: a WAIT sent
    on another connection of the pool would call writes it never saw acknowledged."""

    def elsewhere(*args: object, **kwargs: object) -> None:
        raise AssertionError("WAIT sent apart from the writes it is for")

    monkeypatch.setattr(redis.Redis, "wait", elsewhere)
    master, replica = master_and_replica
    clock = Clock(T0 + 0.5)
    s = RedisCronScheduler(master.client(), name="same", clock=clock, wait_replicas=1, logging_level="WARNING")
    s.register(jobs.noop, "q", id="a", interval=60)
    s.register_birth()  # the lock, taken and WAITed for
    assert s.leadership.lock.acked == 1
    assert [job.id for job in s.enqueue_jobs()] == ["a"]
    replica.stop()
    clock.now = T0 + 60.5
    with caplog.at_level(logging.WARNING, logger="rediscron"):
        s.heartbeat()
        assert s.enqueue_jobs() == []
    assert s.leadership.lock.acked == 0 and (s.stats.fired, s.stats.unreplicated) == (1, 1)
    assert "acknowledged the lock" in caplog.text and "acknowledged them" in caplog.text
    s.register_death()
