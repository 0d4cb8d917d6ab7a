"""Count Redis round trips of one idle scheduler pass and of one fire, for N registered jobs.

Usage: python -m benchmarks.roundtrips [redis-url]   (default: a throwaway server)
"""

from __future__ import annotations

import sys
from typing import Any

import redis

from rediscron import RedisCronScheduler
from rediscron.testing import RedisServer
from tests import jobs


class CountingConnection(redis.Connection):
    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


def measure(url: str, n: int) -> dict[str, int]:
    pool = redis.ConnectionPool.from_url(url, connection_class=CountingConnection)
    connection = redis.Redis(connection_pool=pool)
    connection.flushall()
    now = [2_000_000_000.0]
    scheduler = RedisCronScheduler(connection, name="bench", clock=lambda: now[0], logging_level="WARNING")
    for i in range(n):
        scheduler.register(jobs.noop, "default", id=f"job{i}", cron="0 0 * * *")
    scheduler.register(jobs.noop, "default", id="due", interval=3600)
    scheduler.register_birth()
    scheduler._queue("default").get_redis_server_version()  # rq asks once per queue; not per pass

    CountingConnection.sent = 0
    scheduler._pass()  # fires "due"
    fire = CountingConnection.sent
    CountingConnection.sent = 0
    scheduler._pass()  # nothing due
    idle = CountingConnection.sent
    CountingConnection.sent = 0
    scheduler.heartbeat()
    heartbeat = CountingConnection.sent
    CountingConnection.sent = 0
    scheduler.register(jobs.noop, "default", id="edit", interval=60)
    register = CountingConnection.sent
    scheduler.register_death()
    return {"jobs": n, "idle pass": idle, "pass with one fire": fire, "heartbeat": heartbeat, "register": register}


def main() -> None:
    server = None
    if len(sys.argv) > 1:
        url = sys.argv[1]
    else:
        server = RedisServer()
        server.start()
        url = server.url
    try:
        for n in (10, 1000, 10000):
            print(measure(url, n))
    finally:
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
