"""What a scheduler says about the Redis it runs on: eviction policy, channel permissions."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import redis

from rediscron import RedisCronScheduler
from rediscron import keys as k
from tests import jobs


def test_warns_once_when_redis_may_evict_the_registry(
    connection: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    connection.config_set("maxmemory-policy", "allkeys-lru")
    try:
        s = RedisCronScheduler(connection, name="w")
        with caplog.at_level(logging.WARNING, logger="rediscron"):
            s.register_birth()
            s.heartbeat()
            s.register_death()
            s.register_birth()
        s.register_death()
    finally:
        connection.config_set("maxmemory-policy", "noeviction")
    warnings = [r.getMessage() for r in caplog.records if "maxmemory-policy" in r.getMessage()]
    assert len(warnings) == 1 and "allkeys-lru" in warnings[0]


def test_no_warning_for_noeviction(connection: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    s = RedisCronScheduler(connection, name="quiet")
    with caplog.at_level(logging.WARNING, logger="rediscron"):
        s.register_birth()
    s.register_death()
    assert not [r for r in caplog.records if "maxmemory-policy" in r.getMessage()]


def test_a_user_without_channel_rights_is_told_and_edits_still_arrive(
    connection: redis.Redis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    connection.acl_setuser(
        "cronuser", enabled=True, passwords=["+secret"], keys=["*"], commands=["+@all"], reset_channels=True
    )
    try:
        limited = redis.Redis.from_url(redis_url, username="cronuser", password="secret")
        s = RedisCronScheduler(limited, name="acl", max_sleep_interval=0.3)
        with caplog.at_level(logging.WARNING, logger="rediscron"):
            thread = threading.Thread(target=s.start)
            thread.start()
            try:
                deadline = time.monotonic() + 5
                while not [r for r in caplog.records if "refused" in r.getMessage()] and time.monotonic() < deadline:
                    time.sleep(0.02)
                RedisCronScheduler(connection).register(jobs.noop, "q", id="late", interval=3600)
                while not connection.llen("rq:queue:q") and time.monotonic() < deadline + 5:
                    time.sleep(0.02)
            finally:
                s.request_stop()
                thread.join(10)
        refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert len(refusals) == 1 and k.events() in refusals[0]
        assert connection.llen("rq:queue:q") == 1  # picked up through the marker, without Pub/Sub
        # The user can still write: events are best effort, the marker is what counts.
        RedisCronScheduler(limited).register(jobs.noop, "q", id="mine", interval=60)
        RedisCronScheduler(limited).get_all_jobs()[0].disable()
        assert connection.hget(k.job("late"), "enabled") == b"0"
    finally:
        connection.acl_deluser("cronuser")


def test_an_emptied_registry_is_reported_loudly(connection: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    s = RedisCronScheduler(connection, name="r")
    for i in range(3):
        s.register(jobs.noop, "q", id=f"j{i}", cron="0 0 1 1 *")
    s.register_birth()
    s.heartbeat()
    connection.flushall()  # what a restart without persistence leaves: no lock, no registry
    with caplog.at_level(logging.WARNING, logger="rediscron"):
        s.heartbeat()
        s.heartbeat()
    s.register_death()
    errors = [r.getMessage() for r in caplog.records if "EMPTY" in r.getMessage()]
    assert len(errors) == 1 and "it had 3 job(s)" in errors[0]


def test_a_shrunken_registry_after_a_lost_lock_is_reported(
    connection: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    s = RedisCronScheduler(connection, name="r")
    for i in range(3):
        s.register(jobs.noop, "q", id=f"j{i}", cron="0 0 1 1 *")
    s.register_birth()
    s.heartbeat()
    connection.delete(k.lock())
    connection.srem(k.ids(), "j2")
    with caplog.at_level(logging.WARNING, logger="rediscron"):
        s.heartbeat()
    s.register_death()
    assert [r for r in caplog.records if "has 2 job(s), 3 before" in r.getMessage()]


def test_wait_replicas_says_once_when_none_acknowledge(
    connection: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    s = RedisCronScheduler(connection, name="w", wait_replicas=1)
    with caplog.at_level(logging.WARNING, logger="rediscron"):
        s.register_birth()
        s.heartbeat()
    s.register_death()
    assert len([r for r in caplog.records if "0 of 1 replica(s)" in r.getMessage()]) == 1


def test_the_fencing_epoch_grows_even_after_redis_lost_its_counter(connection: redis.Redis) -> None:
    s = RedisCronScheduler(connection, name="e")
    s.register_birth()
    s.heartbeat()
    connection.flushall()
    connection.set(k.lock_epoch(), 0)
    s.heartbeat()  # the lock vanished: taken again
    assert s.lock_epoch == 2
    s.register_death()
