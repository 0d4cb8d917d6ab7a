"""Through Redis Sentinel: a real master, a replica and three sentinels; a failover under a running scheduler."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from rediscron import RedisCronScheduler
from rediscron.connection import from_url
from rediscron.job import rq_job_id
from rediscron.testing import RedisServer, SentinelServer
from tests import jobs
from tests.system.conftest import SchedulerProcess, wait_until

pytestmark = pytest.mark.system


@pytest.fixture
def sentinel_setup() -> Iterator[tuple[RedisServer, RedisServer, list[SentinelServer]]]:
    master = RedisServer()
    master.start()
    replica = RedisServer(extra_args=["--replicaof", "127.0.0.1", str(master.port)])
    replica.start()
    sentinels = [SentinelServer(master.port) for _ in range(3)]
    try:
        for sentinel in sentinels:
            sentinel.start()
        wait_until(lambda: replica.client().info("replication")["master_link_status"] == "up", what="replication")
        wait_until(
            lambda: all(len(s.client().sentinel_slaves("mymaster")) == 1 for s in sentinels),
            timeout=15,
            what="sentinels to see the replica",
        )
        yield master, replica, sentinels
    finally:
        for server in [*sentinels, replica, master]:
            server.cleanup()


def test_scheduler_follows_a_failover(
    sentinel_setup: tuple[RedisServer, RedisServer, list[SentinelServer]], tmp_path: Path
) -> None:
    master, replica, sentinels = sentinel_setup
    url = "redis+sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in sentinels) + "/mymaster/0"
    connection = from_url(url)
    RedisCronScheduler(connection, logging_level="WARNING").register(jobs.noop, "default", id="ha", interval=1)
    prefix = rq_job_id("ha", 0).rsplit("-", 1)[0]

    def fired(client: redis.Redis) -> list[str]:
        return [x.decode() for x in client.lrange("rq:queue:default", 0, -1) if x.decode().startswith(prefix)]

    proc = SchedulerProcess(url, "sentinel-a", tmp_path, "--lock-ttl", "6", "--wait-replicas", "1")
    try:
        wait_until(lambda: len(fired(master.client())) >= 2, what="fires on the first master")
        assert "acknowledged the lock" not in proc.log()  # the replica has the lock
        sentinels[0].client().execute_command("SENTINEL", "FAILOVER", "mymaster")
        wait_until(
            lambda: replica.client().info("replication")["role"] == "master",
            timeout=15,
            what="the replica to be promoted",
        )
        promoted_at = time.monotonic()
        before = len(fired(replica.client()))
        took = wait_until(
            lambda: len(fired(replica.client())) >= before + 2, timeout=20, what="fires on the new master"
        )
        assert proc.alive(), proc.log()
        counts = Counter(fired(replica.client()))
        assert not [i for i, n in counts.items() if n > 1], "a slot was enqueued twice"
        assert took < 5, f"fires resumed {time.monotonic() - promoted_at:.1f}s after the promotion\n{proc.log()}"
        assert "reports a new master" in proc.log()
    finally:
        proc.stop()
