"""Sentinel URLs are parsed, and refused with a clear message when malformed."""

from __future__ import annotations

import pytest
from redis.sentinel import SentinelConnectionPool

from rediscron.connection import from_url


def test_sentinel_url() -> None:
    client = from_url("redis+sentinel://:pw@127.0.0.1:26379,[::1]:26380/mymaster/2?sentinel_password=s")
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "mymaster"  # type: ignore[attr-defined]
    assert pool.connection_kwargs["db"] == 2 and pool.connection_kwargs["password"] == "pw"
    sentinels = pool.sentinel_manager.sentinels  # type: ignore[attr-defined]
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [26379, 26380]
    assert sentinels[0].connection_pool.connection_kwargs["password"] == "s"


@pytest.mark.parametrize(("url", "message"), [
    ("redis+sentinel://h:26379", "ends with /service"),
    ("redis+sentinel://h:26379/m/x", "ends with /service"),
    ("redis+sentinel://h/m", "is not host:port"),
    ("redis+sentinel://h:1/m?colour=red", "unknown sentinel URL parameters: colour"),
])
def test_bad_sentinel_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_url(url)


def test_plain_urls_get_timeouts() -> None:
    kwargs = from_url("redis://localhost:1/0").connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (10, 5)
