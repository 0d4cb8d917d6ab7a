"""Through Redis Sentinel: a real master, a replica and three sentinels; a failover under a running scheduler."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from rediscron import RedisCronScheduler
from rediscron.connection import from_url
from rediscron.job import rq_job_id
from rediscron.testing import RedisServer, SentinelServer, free_port
from tests import jobs
from tests.system.conftest import SchedulerProcess, wait_until

pytestmark = pytest.mark.system


def watch(replica: RedisServer, sentinels: list[SentinelServer]) -> None:
    """Start the sentinels; wait until the replica replicates and every sentinel knows it."""
    for sentinel in sentinels:
        sentinel.start()
    wait_until(lambda: replica.client().info("replication")["master_link_status"] == "up", what="replication")
    wait_until(
        lambda: all(len(s.client().sentinel_slaves("mymaster")) == 1 for s in sentinels),
        timeout=15,
        what="sentinels to see the replica",
    )


@pytest.fixture
def sentinel_setup() -> Iterator[tuple[RedisServer, RedisServer, list[SentinelServer]]]:
    master = RedisServer()
    master.start()
    replica = RedisServer(extra_args=["--replicaof", "127.0.0.1", str(master.port)])
    replica.start()
    sentinels = [SentinelServer(master.port) for _ in range(3)]
    try:
        watch(replica, sentinels)
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


class Stall:
    """A TCP relay the replica reaches its master through: ``stall()`` stops forwarding (the bytes wait),
    as a slow or cut link does, so the master's writes stop reaching the replica."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.stalled = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", free_port()))
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                inbound, _ = self._listener.accept()
            except OSError:
                return
            outbound = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [inbound, outbound]
            for source, target in ((inbound, outbound), (outbound, inbound)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while self.stalled.is_set():
                    time.sleep(0.01)
                target.sendall(data)
        except OSError:
            pass

    def stall(self) -> None:
        self.stalled.set()

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()


def test_runs_the_frozen_master_did_not_replicate_are_reported_and_run_again_by_the_new_one(tmp_path: Path) -> None:
    """The boundary of exactly once across an asynchronous failover, with ``wait_replicas=1``: runs the
    replica never received are logged as unacknowledged when they fire; once the master freezes and the
    replica is promoted, the new master has no trace of them and (``catchup="all"``) runs their slots again."""
    master = RedisServer()
    master.start()
    relay = Stall(master.port)
    replica = RedisServer(extra_args=["--replicaof", "127.0.0.1", str(relay.port)])
    replica.start()
    # Sentinels re-point a replica that replicates through the relay at the master itself, but only
    # once the failover timeout has passed since they saw it: longer than this test.
    sentinels = [SentinelServer(master.port, failover_timeout_ms=120_000) for _ in range(3)]
    proc: SchedulerProcess | None = None
    try:
        watch(replica, sentinels)
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in sentinels)
        url = f"redis+sentinel://{hosts}/mymaster/0?socket_timeout=2"
        RedisCronScheduler(from_url(url), logging_level="WARNING").register(
            jobs.noop, "default", id="ha", interval=1, catchup="all"
        )
        prefix = rq_job_id("ha", 0).rsplit("-", 1)[0]

        def fired(client: redis.Redis) -> list[str]:
            return [x.decode() for x in client.lrange("rq:queue:default", 0, -1) if x.decode().startswith(prefix)]

        proc = SchedulerProcess(url, "frozen", tmp_path, "--lock-ttl", "6", "--wait-replicas", "1")
        wait_until(lambda: len(fired(replica.client())) >= 2, what="fires the replica acknowledged")
        assert "acknowledged them" not in proc.log()
        relay.stall()
        wait_until(lambda: proc is not None and proc.log().count("acknowledged them") >= 2, what="unacknowledged fires")
        lost = set(fired(master.client())) - set(fired(replica.client()))
        assert lost, "the master fired nothing the replica lacks"
        assert master.process is not None
        master.process.send_signal(signal.SIGSTOP)  # frozen mid-burst: alive to its clients' sockets, silent
        wait_until(lambda: replica.client().info("replication")["role"] == "master", timeout=30, what="the promotion")
        wait_until(lambda: lost <= set(fired(replica.client())), timeout=30, what="the lost slots run again")
        counts = Counter(fired(replica.client()))
        assert not [i for i, n in counts.items() if n > 1], "a slot was enqueued twice on the new master"
        assert proc.alive(), proc.log()
        assert "reports a new master" in proc.log()
    finally:
        if proc is not None:
            proc.stop()
        if master.process is not None:
            master.process.send_signal(signal.SIGCONT)
        relay.close()
        for server in [*sentinels, replica, master]:
            server.cleanup()
