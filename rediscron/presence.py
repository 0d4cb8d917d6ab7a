"""Where rq's tools see a scheduler: its hash (``rq:cron_scheduler:{name}``) and its entry in rq's
scheduler registry. Monitoring only: nothing here stops a scheduler from firing."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import ResponseError
from rq import cron_scheduler_registry

from . import keys
from .stats import Stats

#: The scheduler hash expires unless refreshed; rq's registry forgets schedulers silent this long.
SCHEDULER_HASH_TTL = 120
#: Written again after fires at most this often while the loop is idle, and at least this often otherwise.
REFRESH_WHEN_IDLE = 5.0
REFRESH_AT_LEAST = 60.0


class Presence:
    """A scheduler's hash and its entry in rq's scheduler registry, kept up to date best effort."""

    def __init__(self, connection: Redis, key: str, name: str, stats: Stats, log: logging.Logger) -> None:
        self.connection = connection
        self.key = key
        self.name = name
        self.stats = stats
        self.log = log
        #: Whether the hash is behind the registry (a change was seen since it was written).
        self.dirty = True
        #: When (monotonic) the hash was last written, and how many fires it counted then.
        self.saved_at = 0.0
        self.fired_when_saved = 0
        #: Keys found unwritable (said once each).
        self.failures: set[str] = set()

    def write(self, data: Mapping[str, Any], pipeline: Pipeline | None = None) -> None:
        """Write the hash with its TTL (in ``pipeline`` if given); a key of another type under this
        scheduler's name is replaced."""
        mapping: Any = data
        if pipeline is not None:
            pipeline.hset(self.key, mapping=mapping)
            pipeline.expire(self.key, SCHEDULER_HASH_TTL)
        else:
            for _attempt in range(2):
                with self.connection.pipeline(transaction=False) as pipe:
                    pipe.hset(self.key, mapping=mapping)
                    pipe.expire(self.key, SCHEDULER_HASH_TTL)
                    written = pipe.execute(raise_on_error=False)[0]
                if not isinstance(written, ResponseError):
                    break
                if "WRONGTYPE" not in str(written):
                    self.note_failure(self.key, written)
                    break
                self.connection.delete(self.key)  # this scheduler's own key, by its name
        self.dirty = False
        self.saved_at = time.monotonic()
        self.fired_when_saved = self.stats.fired

    def touch(self) -> tuple[bool, int | None]:
        """Heartbeat rq's scheduler registry and refresh the hash's TTL: (hash still there, number of
        registered jobs or None)."""
        registry_key = cron_scheduler_registry.get_registry_key()
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.zadd(registry_key, {self.name: time.time()})
            pipe.expire(self.key, SCHEDULER_HASH_TTL)
            pipe.scard(keys.ids())
            added, refreshed, registered = pipe.execute(raise_on_error=False)
        if isinstance(added, Exception):
            self.note_failure(registry_key, added)
        counted = None if isinstance(registered, Exception) else int(registered)
        return bool(refreshed) and not isinstance(refreshed, Exception), counted

    def unregister(self, client: Redis | Pipeline) -> None:
        """Leave rq's scheduler registry and delete the hash (in ``client``, a pipeline or not)."""
        client.zrem(cron_scheduler_registry.get_registry_key(), self.name)
        client.delete(self.key)

    def due(self, idle: bool) -> bool:
        """Whether to write the hash again now: it is behind (a change, or fires since), and the loop is
        idle and it was written over 5 s ago, or it was written over a minute ago."""
        behind = self.dirty or self.stats.fired != self.fired_when_saved
        since = time.monotonic() - self.saved_at
        return behind and ((idle and since > REFRESH_WHEN_IDLE) or since > REFRESH_AT_LEAST)

    def note_failure(self, key: str, error: Exception) -> None:
        """Say once that a monitoring key cannot be written; firing goes on regardless."""
        if key not in self.failures:
            self.failures.add(key)
            self.log.warning(
                "Scheduler %s: cannot write %s (%s); rq's tools may not list this scheduler, which keeps firing",
                self.name,
                key,
                error,
            )
