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


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://h:26379", "ends with /service"),
        ("redis+sentinel://h:26379/m/x", "ends with /service"),
        ("redis+sentinel://h/m", "is not host:port"),
        ("redis+sentinel://h:1/m?colour=red", "unknown sentinel URL parameters: colour"),
    ],
)
def test_bad_sentinel_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_url(url)


def test_plain_urls_get_timeouts() -> None:
    kwargs = from_url("redis://localhost:1/0").connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (10, 5)


def test_rediss_sentinel_takes_tls_options_for_the_master() -> None:
    client = from_url(
        "rediss+sentinel://h:26379/m?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=required&ssl_check_hostname=false"
    )
    kwargs = client.connection_pool.connection_kwargs
    assert "SSL" in client.connection_pool.connection_class.__name__
    assert (kwargs["ssl_ca_certs"], kwargs["ssl_cert_reqs"]) == ("/etc/ca.pem", "required")
    assert kwargs["ssl_check_hostname"] is False
    with pytest.raises(ValueError, match="ssl_cert_reqs"):
        from_url("rediss+sentinel://h:26379/m?ssl_cert_reqs=maybe")
    with pytest.raises(ValueError, match="unknown sentinel URL parameters: ssl_ca_certs"):
        from_url("redis+sentinel://h:26379/m?ssl_ca_certs=/etc/ca.pem")  # no TLS: refused, not ignored


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("redis://:s3cr3t@host:6379/0", "s3cr3t"),
        ("redis://user:p@ss@host:6379/0", "p@ss"),
        ("redis://user:p@ss/w0rd@host:6379/0", "p@ss/w0rd"),
        ("redis://host:6379/0?password=s3cr3t&socket_timeout=3", "s3cr3t"),
        ("redis+sentinel://:pw1@h:1,h2:2/m?sentinel_password=pw2", "pw2"),
        ("rediss://:a%40b@host", "a%40b"),
    ],
)
def test_passwords_are_masked(url: str, secret: str) -> None:
    from rediscron.connection import mask, redact

    assert secret not in redact(url) and "***" in redact(url)
    assert secret not in mask(f"failed at {url}: {secret} and {secret.replace('%40', '@')}", url)
    assert "host" in redact(url) or "h:1" in redact(url)


@pytest.mark.parametrize("url", ["redis://localhost:1/3", "redis+sentinel://:pw@h:26379/m/2"])
def test_an_own_client_has_its_own_small_pool_to_the_same_server(url: str) -> None:
    from rediscron.connection import own_client

    client = from_url(url)
    own = own_client(client, max_connections=3, socket_timeout=2.0)
    pool, theirs = own.connection_pool, client.connection_pool
    assert pool is not theirs and type(pool) is type(theirs) and pool.max_connections == 3
    assert pool.connection_kwargs["db"] == theirs.connection_kwargs["db"]
    assert pool.connection_kwargs["socket_timeout"] == 2.0
    if isinstance(theirs, SentinelConnectionPool):
        assert pool.service_name == "m" and pool.connection_kwargs["password"] == "pw"  # type: ignore[attr-defined]
