from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from rediscron.testing import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def connection(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client on a freshly flushed server (restarted first if a test stopped it)."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def text_connection(redis_server: RedisServer, connection: redis.Redis) -> Iterator[redis.Redis]:
    """A client with decode_responses=True, as many applications configure it."""
    client = redis_server.client(decode_responses=True)
    yield client
    client.close()
