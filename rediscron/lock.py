"""The singleton scheduler lock: a random token with a TTL and a fencing epoch."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from redis import Redis

from . import keys, scripts


@dataclass(frozen=True)
class LockHolder:
    """Who holds the lock, as read from Redis."""

    epoch: int
    name: str
    ttl_ms: int
    #: The lock's value as read (to release it only if it is still this holder's).
    value: str = ""

    @classmethod
    def parse(cls, value: str, ttl_ms: int = -1) -> LockHolder:
        """A lock value as read; whatever another writer left there (an absurd epoch reads as 0)."""
        epoch, _, rest = value.partition("|")
        _token, _, name = rest.partition("|")
        plausible = epoch.isascii() and epoch.isdigit() and len(epoch) <= 15  # below 2^53: Lua keeps it whole
        return cls(int(epoch) if plausible else 0, name or value, ttl_ms, value)


class SchedulerLock:
    """The lock one scheduler process holds while it enqueues.

    Its value is ``{epoch}|{token}|{name}``; every fire checks the whole value
    atomically, so a scheduler that lost the lock (paused, partitioned, or
    superseded) cannot enqueue anything.
    """

    def __init__(self, connection: Redis, name: str, ttl: int) -> None:
        self.connection = connection
        self.name = name
        self.ttl = ttl
        self.token = uuid.uuid4().hex
        self.value: str | None = None
        #: Monotonic time until which the lock is surely ours (set when it is taken or extended).
        self.valid_until = 0.0
        #: The highest fencing epoch seen, ours or a holder's: a new epoch is always above it.
        self.highest_epoch = 0
        #: After taking or extending the lock, WAIT (100 ms at most) for this many replicas, on the
        #: connection that wrote it; how many acknowledged the last such write (None: not asked).
        self.replicas = 0
        self.acked: int | None = None

    def _run(self, name: str, script_keys: list[str], args: list[Any]) -> Any:
        if not self.replicas:
            return scripts.run(name, self.connection, script_keys, args)
        reply, acked = scripts.run_then(name, self.connection, script_keys, args, ("WAIT", self.replicas, 100))
        self.acked = int(acked)
        return reply

    @property
    def epoch(self) -> int | None:
        """The fencing epoch of our lock, or None if we do not hold it."""
        return LockHolder.parse(self.value).epoch if self.value else None

    def acquire(self) -> LockHolder | None:
        """Take the lock if it is free; return None on success, else who holds it."""
        sent = time.monotonic()
        ok, value = self._run(
            "lock_acquire",
            [keys.lock(), keys.lock_epoch()],
            [self.token, self.name, self.ttl * 1000, self.highest_epoch],
        )
        if int(ok):
            self.value = _text(value)
            self.highest_epoch = max(self.highest_epoch, LockHolder.parse(self.value).epoch)
            self.valid_until = sent + self.ttl
            return None
        holder = LockHolder.parse(_text(value))
        self.highest_epoch = max(self.highest_epoch, holder.epoch)
        return holder

    def extend(self) -> bool:
        """Extend our lock's TTL; False if it is no longer ours."""
        if self.value is None:
            return False
        sent = time.monotonic()
        ok = int(self._run("lock_extend", [keys.lock()], [self.value, self.ttl * 1000]))
        if ok:
            self.valid_until = sent + self.ttl
        else:
            self.value = None
            self.valid_until = 0.0
        return bool(ok)

    def release(self) -> bool:
        """Release the lock if it is still ours; safe to call when it is not."""
        value, self.value, self.valid_until = self.value, None, 0.0
        if value is None:
            return False
        return self.release_held_by(value)

    def release_held_by(self, value: str) -> bool:
        """Release the lock if it still holds exactly ``value`` (a holder known dead); whether it did."""
        return bool(int(scripts.run("lock_release", self.connection, [keys.lock()], [value, keys.events()])))

    @staticmethod
    def holder(connection: Redis) -> LockHolder | None:
        """Who holds the lock now, or None."""
        with connection.pipeline(transaction=False) as pipe:
            pipe.get(keys.lock())
            pipe.pttl(keys.lock())
            value, ttl_ms = pipe.execute()
        if value is None:
            return None
        return LockHolder.parse(_text(value), int(ttl_ms))


def _text(raw: bytes | str) -> str:
    """A lock value as text, whatever bytes another writer left there."""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
