"""Connections from URLs, including Redis Sentinel (``redis+sentinel://``)."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from redis import Redis
from redis.sentinel import Sentinel

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
#: Timeouts, so a Redis that hangs (paused, partitioned) is an error the loop backs off from, not a hang.
TIMEOUTS: dict[str, Any] = {"socket_timeout": 10, "socket_connect_timeout": 5, "health_check_interval": 15}


def from_url(url: str, **kwargs: Any) -> Redis:
    """A client for ``url``: ``redis://``, ``rediss://``, ``unix://``, or a Sentinel URL.

    ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]`` asks the
    sentinels for the master of ``service``; the client finds the new master by itself after a
    failover (a write to a demoted master fails, is retried by the scheduler, and goes to the
    new one). Query parameters: ``sentinel_password``, ``sentinel_username``, ``socket_timeout``.
    ``rediss+sentinel://`` connects to the master (not the sentinels) with TLS.
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
    sentinel_kwargs: dict[str, Any] = {"socket_timeout": options["socket_timeout"],
                                       "socket_connect_timeout": options["socket_connect_timeout"]}
    if "sentinel_password" in query:
        sentinel_kwargs["password"] = query.pop("sentinel_password")
    if "sentinel_username" in query:
        sentinel_kwargs["username"] = query.pop("sentinel_username")
    if query:
        raise ValueError(f"unknown sentinel URL parameters: {', '.join(sorted(query))}")
    if parts.password is not None:
        options["password"] = unquote(parts.password)
    if parts.username:
        options["username"] = unquote(parts.username)
    if parts.scheme == "rediss+sentinel":
        options["ssl"] = True
    sentinel = Sentinel(hosts, sentinel_kwargs=sentinel_kwargs, **options)  # type: ignore[no-untyped-call]
    master = sentinel.master_for(path[0], db=int(path[1]) if len(path) == 2 else 0)  # type: ignore[no-untyped-call]
    return cast(Redis, master)
