"""Connections from URLs, including Redis Sentinel (``redis+sentinel://``)."""

from __future__ import annotations

import re
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from redis import ConnectionPool, Redis
from redis.sentinel import Sentinel, SentinelConnectionPool

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
#: Timeouts, so a Redis that hangs (paused, partitioned) is an error the loop backs off from, not a hang.
TIMEOUTS: dict[str, Any] = {"socket_timeout": 10, "socket_connect_timeout": 5, "health_check_interval": 15}


def from_url(url: str, **kwargs: Any) -> Redis:
    """A client for ``url``: ``redis://``, ``rediss://``, ``unix://``, or a Sentinel URL.

    ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]`` asks the
    sentinels for the master of ``service``; the client finds the new master by itself after a
    failover (a write to a demoted master fails, is retried by the scheduler, and goes to the
    new one). Query parameters: ``sentinel_password``, ``sentinel_username``, ``socket_timeout``.
    ``rediss+sentinel://`` connects to the master (not the sentinels) with TLS, and takes
    ``ssl_ca_certs``, ``ssl_cert_reqs`` (``required``, ``optional``, ``none``), ``ssl_certfile``,
    ``ssl_keyfile`` and ``ssl_check_hostname`` too.
    """
    options = {**TIMEOUTS, **kwargs}
    parts = urlsplit(url)
    if parts.scheme not in SENTINEL_SCHEMES:
        return Redis.from_url(url, **options)
    netloc = parts.netloc.rpartition("@")[2]
    hosts = []
    for item in netloc.split(","):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"sentinel address {item!r} is not host:port")
        hosts.append((host.strip("[]"), int(port)))
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError("a sentinel URL ends with /service or /service/db, e.g. redis+sentinel://h:26379/mymaster/0")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    if "socket_timeout" in query:
        options["socket_timeout"] = float(query.pop("socket_timeout"))
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": options["socket_timeout"],
        "socket_connect_timeout": options["socket_connect_timeout"],
    }
    if "sentinel_password" in query:
        sentinel_kwargs["password"] = query.pop("sentinel_password")
    if "sentinel_username" in query:
        sentinel_kwargs["username"] = query.pop("sentinel_username")
    if parts.scheme == "rediss+sentinel":
        for name in _SSL_OPTIONS:
            if name in query:
                options[name] = _ssl_value(name, query.pop(name))
    if query:
        raise ValueError(f"unknown sentinel URL parameters: {', '.join(sorted(query))}")
    if parts.password is not None:
        options["password"] = unquote(parts.password)
    if parts.username:
        options["username"] = unquote(parts.username)
    if parts.scheme == "rediss+sentinel":
        options["ssl"] = True
    sentinel = Sentinel(hosts, sentinel_kwargs=sentinel_kwargs, **options)  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis-py 8.2
    master = sentinel.master_for(path[0], db=int(path[1]) if len(path) == 2 else 0)  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis-py 8.2
    return cast(Redis, master)


_SSL_OPTIONS = ("ssl_ca_certs", "ssl_cert_reqs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname")


def _ssl_value(name: str, value: str) -> Any:
    if name == "ssl_check_hostname":
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"ssl_check_hostname must be true or false, not {value!r}")
        return value.lower() in ("true", "1", "yes")
    if name == "ssl_cert_reqs" and value not in ("required", "optional", "none"):
        raise ValueError(f"ssl_cert_reqs must be required, optional or none, not {value!r}")
    return value


def own_client(connection: Redis, max_connections: int, socket_timeout: float) -> Redis:
    """A client to the same server as ``connection`` with a pool of its own, so its users (a metrics
    endpoint's handlers) can never take the connections ``connection`` needs."""
    pool = connection.connection_pool
    # Objects bound to the old pool (its proxy, its notification handler) are made anew by the new one.
    kwargs = {
        key: value
        for key, value in pool.connection_kwargs.items()
        if key not in ("connection_pool", "maint_notifications_pool_handler")
    }
    for key in ("socket_timeout", "socket_connect_timeout"):
        kwargs[key] = min(socket_timeout, kwargs.get(key) or socket_timeout)
        if f"orig_{key}" in kwargs:
            kwargs[f"orig_{key}"] = kwargs[key]
    own: ConnectionPool
    if isinstance(pool, SentinelConnectionPool):
        own = SentinelConnectionPool(
            pool.service_name,
            pool.sentinel_manager,  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis-py 8.2
            max_connections=max_connections,
            **kwargs,
        )
    else:
        own = type(pool)(connection_class=pool.connection_class, max_connections=max_connections, **kwargs)
    return Redis(connection_pool=own)


_QUERY_SECRET = re.compile(r"([?&][^=&#]*password=)[^&#]*", re.IGNORECASE)


def redact(url: str) -> str:
    """``url`` with its passwords masked: the userinfo's (even one holding ``@`` or ``/``) and every
    ``...password=`` query parameter."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _QUERY_SECRET.sub(r"\1***", url)
    head, mark, query = rest.partition("?")
    at = head.rfind("@")  # a password may hold "@" or "/": the host follows the last "@"
    if at >= 0:
        user, colon, _password = head[:at].partition(":")
        head = f"{user}{colon}***{head[at:]}" if colon else head
    return f"{scheme}://{head}" + _QUERY_SECRET.sub(r"\1***", mark + query)


def secrets_of(url: str) -> list[str]:
    """The passwords written in ``url`` (to mask them wherever else they may appear, such as in an error)."""
    found = []
    _scheme, sep, rest = url.partition("://")
    head = rest.partition("?")[0] if sep else ""
    at = head.rfind("@")
    if at >= 0 and ":" in head[:at]:
        found.append(head[:at].partition(":")[2])
    found += [match.group(1) for match in re.finditer(r"password=([^&#]*)", url, re.IGNORECASE)]
    secrets = [s for s in found if s]
    return secrets + [unquote(s) for s in secrets if unquote(s) != s]


def mask(text: str, url: str) -> str:
    """``text`` with every password of ``url`` replaced by ``***``."""
    for secret in sorted(secrets_of(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
