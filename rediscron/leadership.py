"""Leadership: the singleton lock a scheduler holds while it enqueues, and what losing it says.

One part of `RedisCronScheduler`. It takes the lock (or names who holds it), keeps it
(heartbeats three times per TTL, re-taking an expired lock and stopping when another
scheduler holds it), gives it back, waits for replicas to have it, follows a Sentinel
failover, and notices a registry that shrank while the lock was gone (Redis restarted
without its data). Dispatch asks it for the fencing value every fire must carry.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, cast

from redis import Redis
from redis.exceptions import ResponseError
from redis.sentinel import SentinelConnectionPool
from rq.utils import as_text

from . import keys
from .errors import LockLostError, SchedulerLockedError
from .lock import LockHolder, SchedulerLock
from .logs import fields

#: How often a scheduler connected through Redis Sentinel asks which server is the master.
MASTER_CHECK_INTERVAL = 1.0


class Leadership:
    """The lock of one scheduler (``name`` on ``hostname``), held ``lock_ttl`` seconds past its last heartbeat."""

    def __init__(
        self,
        connection: Redis,
        name: str,
        hostname: str,
        lock_ttl: int,
        *,
        heartbeat_interval: float,
        wait_replicas: int = 0,
        log: logging.Logger,
    ) -> None:
        self.connection = connection
        self.name = name
        self.hostname = hostname
        self.lock = SchedulerLock(connection, name, lock_ttl)
        self.heartbeat_interval = heartbeat_interval
        #: After taking or extending the lock, wait (briefly) until this many replicas have it.
        self.lock.replicas = self.wait_replicas = wait_replicas
        self.log = log
        #: Whether this scheduler leads: it took the lock (``take()``, ``acquire()``) and has not given it
        #: back nor lost it to another. Only a leader's heartbeat keeps the lock.
        self.leading = False
        #: When (monotonic) the next heartbeat is due.
        self.next_heartbeat = 0.0
        #: How many jobs the registry had at the last heartbeat; and, while the registry is found empty
        #: after the lock vanished (Redis lost its data), how many it had before.
        self.known_jobs: int | None = None
        self.registry_lost: int | None = None
        self._replicas_short = False
        self._master: tuple[str, int] | None = None
        self._next_master_check = 0.0
        self._server_checked = False

    @property
    def fence(self) -> str | None:
        """The lock's value while this scheduler holds it (every fire checks it atomically), else None."""
        return self.lock.value

    @property
    def epoch(self) -> int | None:
        """The fencing epoch of the lock this scheduler holds, or None."""
        return self.lock.epoch

    # -- taking and giving back ---------------------------------------------------------------------

    def take(self) -> None:
        """Take the lock, or raise [SchedulerLockedError][rediscron.SchedulerLockedError] naming its holder.

        A holder that ran on this host (same pid namespace) and whose process is gone is not
        waited for.
        """
        holder = self.lock.acquire()
        if holder is not None and self._holder_is_gone(holder) and self.lock.release_held_by(holder.value):
            self.log.warning(
                "Scheduler %s: the lock's holder %s ran on this host and its process is gone; took "
                "over without waiting for its lock to expire",
                self.name,
                holder.name,
                extra=fields("lock_taken_over", scheduler=self.name, holder=holder.name),
            )
            holder = self.lock.acquire()
        if holder is not None:
            raise SchedulerLockedError(f"{holder.name} (fencing epoch {holder.epoch})")
        self.leading = True
        self.log.info(
            "Scheduler %s: took the lock (fencing epoch %s)",
            self.name,
            self.lock.epoch,
            extra=fields("lock_acquired", scheduler=self.name, epoch=self.lock.epoch),
        )
        self.next_heartbeat = time.monotonic() + self.heartbeat_interval
        self.wait_for_replicas()
        if not self._server_checked:
            self._server_checked = True
            self._warn_about_server()

    def acquire(self) -> bool:
        """Take the lock if it is free (or keep it if it is ours); False if another holds it."""
        if self.lock.value is not None and self.lock.extend():
            return True
        self.leading = self.lock.acquire() is None
        return self.leading

    def release(self) -> bool:
        """Give the lock back if it is still ours (a standby takes over at once); whether it was."""
        self.leading = False
        return self.lock.release()

    def lost(self) -> None:
        """A fire found the lock gone: forget it, and heartbeat before the next pass (which re-takes it
        if it is free, or stops)."""
        self.lock.value = None
        self.next_heartbeat = 0.0

    # -- keeping ----------------------------------------------------------------------------------

    def heartbeat_due(self) -> bool:
        """Whether the loop should heartbeat now (it is time, or the lock is not held)."""
        return time.monotonic() >= self.next_heartbeat or self.lock.value is None

    def heartbeat_soon(self) -> None:
        """Heartbeat at the next pass (after a failure: the lock may have expired meanwhile)."""
        self.next_heartbeat = 0.0

    def may_have_expired(self) -> bool:
        """Whether the lock may have expired unnoticed (a long pause): it is past its TTL by this clock."""
        return time.monotonic() >= self.lock.valid_until

    def keep(self) -> bool:
        """Extend the lock; re-take it if it expired and is free. Whether it was still held.

        Raises [LockLostError][rediscron.LockLostError] if another scheduler holds it.
        """
        if self.lock.extend():
            return True
        holder = self.lock.acquire()
        if holder is not None:
            self.leading = False
            self.log.error(
                "Scheduler %s: lock is held by %s; stopping",
                self.name,
                holder.name,
                extra=fields("lock_lost", scheduler=self.name, holder=holder.name, epoch=holder.epoch),
            )
            raise LockLostError(holder.name)
        self.log.warning(
            "Scheduler %s: lock had expired; took it again (fencing epoch %s)",
            self.name,
            self.lock.epoch,
            extra=fields("lock_retaken", scheduler=self.name, epoch=self.lock.epoch),
        )
        return False

    def kept(self, registered: int | None, extended: bool) -> bool:
        """Take in a heartbeat: the registry's job count, and whether the lock was still held.

        After the lock vanished, a registry that shrank is said loudly (Redis may have lost its
        data). Returns whether a lost registry has jobs again.
        """
        self.wait_for_replicas()
        self.next_heartbeat = time.monotonic() + self.heartbeat_interval
        if registered is None:
            return False
        if not extended:
            self._check_registry(registered)
        back = self.registry_lost is not None and registered > 0
        if back:
            self.log.warning("Scheduler %s: the registry has jobs again (%d)", self.name, registered)
            self.registry_lost = None
        self.known_jobs = registered
        return back

    def wait_for_replicas(self) -> None:
        """WAIT until ``wait_replicas`` replicas have the lock (at most 100 ms); say so once if they don't."""
        acked = self.lock.acked
        if not self.wait_replicas or acked is None:
            return
        short = acked < self.wait_replicas
        if short and not self._replicas_short:
            self.log.warning(
                "Scheduler %s: only %d of %d replica(s) acknowledged the lock; a failover now could lose it",
                self.name,
                acked,
                self.wait_replicas,
            )
        elif not short and self._replicas_short:
            self.log.info("Scheduler %s: %d replica(s) acknowledge the lock again", self.name, acked)
        self._replicas_short = short

    def master_moved(self) -> bool:
        """Through Sentinel: ask, at most once a second, which server is the master; whether it changed.

        A demoted master may accept writes until the sentinels reconfigure it, seconds later;
        whatever is written there meanwhile is lost when it resyncs. Asking the sentinels
        bounds that window to about a second. On a move, the connections to the old master
        are dropped; the caller builds anew what it built against the old one.
        """
        pool = self.connection.connection_pool
        if not isinstance(pool, SentinelConnectionPool) or time.monotonic() < self._next_master_check:
            return False
        self._next_master_check = time.monotonic() + MASTER_CHECK_INTERVAL
        address = pool.get_master_address()  # type: ignore[no-untyped-call]
        moved = self._master is not None and address != self._master
        if moved:
            self.log.warning(
                "Scheduler %s: Redis Sentinel reports a new master %s:%s (was %s:%s); moving to it",
                self.name,
                *address,
                *cast(tuple[str, int], self._master),
                extra=fields("master_changed", scheduler=self.name, master=f"{address[0]}:{address[1]}"),
            )
            pool.disconnect(inuse_connections=False)
            self.next_heartbeat = 0.0
        self._master = address
        return moved

    # -- what the lock says about Redis ---------------------------------------------------------------

    def _check_registry(self, registered: int) -> None:
        """After the lock vanished, say loudly if the registry shrank: Redis may have lost its data."""
        known = self.known_jobs
        if not known or registered >= known:
            return
        if registered == 0:
            self.registry_lost = known
            self.log.error(
                "Scheduler %s: the registry is EMPTY (it had %d job(s)) and the lock had vanished: Redis restarted "
                "without its data or was flushed. Nothing will run until the jobs are registered again "
                "(for example with `rqrcron apply`).",
                self.name,
                known,
            )
        else:
            self.log.warning(
                "Scheduler %s: the registry has %d job(s), %d before the lock vanished: Redis may have lost recent "
                "writes (a restart or failover). Check the registry (`rqrcron info`).",
                self.name,
                registered,
                known,
            )

    def _holder_is_gone(self, holder: LockHolder) -> bool:
        """Whether the lock's holder is a scheduler of this host (and pid namespace) whose process has exited."""
        raw = self.connection.hmget(f"{keys.prefix()}:cron_scheduler:{holder.name}", "hostname", "pid", "pid_namespace")
        host, pid, namespace = (x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in raw)
        if (
            host != self.hostname
            or namespace is None
            or namespace != pid_namespace()
            or not pid
            or not pid.isascii()
            or not pid.isdigit()
            or len(pid) > 9
            or int(pid) == os.getpid()
        ):
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except (OSError, OverflowError, ValueError):
            return False  # alive (another user's), or no pid this system has: can't tell, so not gone
        return False

    def _warn_about_server(self) -> None:
        """Say once if this Redis may evict the registry."""
        try:
            reply = cast(dict[Any, Any], self.connection.config_get("maxmemory-policy"))
            policy = as_text(reply.get("maxmemory-policy") or "")
        except ResponseError:
            return  # CONFIG is often disabled on managed Redis; nothing to check then
        if policy.startswith("allkeys-"):
            self.log.warning(
                "Redis maxmemory-policy is %s: under memory pressure Redis may evict cron job records and the "
                "schedule index. Use noeviction (or a volatile-* policy) for the Redis that holds the registry.",
                policy,
            )


def pid_namespace() -> str:
    """This process's pid namespace ('' where there is none to tell): pids compare only within one."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""
