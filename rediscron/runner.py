"""The loop ``RedisCronScheduler.start()`` runs: take the lock, pass after pass, stop cleanly.

One part of `RedisCronScheduler`. It registers the scheduler's birth (or stands by for the
lock), heartbeats, runs a pass, and sleeps until the next slot or a change event wakes it;
it backs off while Redis is unreachable or refuses, and logs a failure once per kind.
SIGINT/SIGTERM stop it between two steps; a second signal leaves at once (the lock then
expires by itself), except while the lock is being released.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType
from typing import Any, Protocol

from redis.exceptions import NoPermissionError, RedisError
from rq.exceptions import StopRequested

from .dispatch import CONNECTION_ERRORS
from .errors import LockLostError, SchedulerLockedError
from .events import EventListener
from .leadership import Leadership
from .lookahead import LookAhead
from .stats import Stats
from .wake import Waker

#: Longest back-off between attempts while Redis is unreachable.
MAX_BACKOFF = 5.0


class Lifecycle(Protocol):
    """The steps the loop drives (``RedisCronScheduler`` has them: rq's contract)."""

    def register_birth(self) -> None: ...

    def register_death(self) -> None: ...

    def heartbeat(self) -> None: ...

    def run_once(self) -> float: ...

    def enqueue_jobs(self) -> Any: ...

    def calculate_sleep_interval(self) -> float: ...

    def _install_signal_handlers(self) -> dict[int, Any]:
        """rq's name for the step that installs the stop signals' handlers (`Runner.install_signal_handlers`)."""


class Runner:
    """Runs ``scheduler``'s steps until asked to stop; ``listener`` wakes it on change events."""

    def __init__(
        self,
        scheduler: Lifecycle,
        leadership: Leadership,
        lookahead: LookAhead,
        stats: Stats,
        listener: EventListener,
        *,
        name: str,
        log: logging.Logger,
    ) -> None:
        self.scheduler = scheduler
        self.leadership = leadership
        self.lookahead = lookahead
        self.stats = stats
        self.listener = listener
        self.name = name
        self.log = log
        self.wake = Waker()
        self.stopping = False
        #: The stop signal received, and a second one: the handler only notes them (it may take no lock).
        self._stop_signal: int | None = None
        self._second_signal: int | None = None
        #: Set while shutting down: a signal then lets the lock's release finish.
        self._releasing = False
        #: Why the passes fail (while they do), since when, and the next back-off.
        self.failing: str | None = None
        self._failing_since = 0.0
        self._backoff = 0.1

    def request_stop(self) -> None:
        """Stop after the current step (what SIGINT and SIGTERM do)."""
        self.stopping = True
        self.wake.set()

    def run(self, *, burst: bool, standby: bool, hooked: bool) -> str | None:
        """Run until stopped; the name of the scheduler that took the lock if that is why it stopped.

        ``hooked``: the scheduler's ``enqueue_jobs()`` or ``calculate_sleep_interval()`` is
        overridden; each pass then calls them, as rq's loop does (and builds no runs ahead).
        """
        # A stop asked for before the loop started (a worker stopping at once) is kept: it stops at once.
        self._stop_signal = self._second_signal = None
        self._releasing = False
        started = False
        superseded_by: str | None = None
        previous = self.scheduler._install_signal_handlers()
        try:
            if not burst:
                self.listener.start()
            try:
                while True:
                    if standby and not burst:
                        self._wait_for_lock()
                    else:
                        self.scheduler.register_birth()
                    started = True
                    if self.stopping:
                        break
                    try:
                        self._loop(burst, hooked)
                        break
                    except LockLostError as exc:
                        if not standby or self.stopping:
                            superseded_by = exc.holder
                            raise
                        # Superseded (e.g. after a pause): stand by again rather than exit.
                        self.log.warning("Scheduler %s: lost the lock; standing by again", self.name)
            except StopRequested:
                self.log.info("Scheduler %s: stop requested", self.name)
            except KeyboardInterrupt:
                if self._second_signal is not None:
                    self.log.warning("Scheduler %s: second signal %s; exiting at once", self.name, self._second_signal)
                else:
                    self.log.info("Scheduler %s: interrupted", self.name)
            finally:
                self._shut_down(started)
        finally:
            # A subclass (or rq's tests) may replace the step with one that returns no handlers.
            for sig, handler in previous.items() if isinstance(previous, dict) else ():
                signal.signal(sig, handler)
            self.stopping = False  # a later start() runs again
        return superseded_by

    def _shut_down(self, started: bool) -> None:
        self._releasing = True
        if self._stop_signal is not None:
            # Logged here, not in the handler, which must take no lock.
            self.log.info(
                "Scheduler %s: received signal %s; stopped after the current step", self.name, self._stop_signal
            )
        self.listener.stop()
        self.scheduler.register_death()
        self._releasing = False
        if started:
            self.log.info("Scheduler %s: shutdown complete", self.name)

    def _wait_for_lock(self) -> None:
        """Standby: retry register_birth() until it succeeds or a stop is requested."""
        announced: str | None = None
        while not self.stopping:
            self.wake.clear()
            try:
                self.scheduler.register_birth()
                return
            except SchedulerLockedError as exc:
                if exc.holder != announced:
                    self.log.info("Scheduler %s: standing by; the lock is held by %s", self.name, exc.holder)
                    announced = exc.holder
                wait = 1.0
            except Exception as exc:
                wait = self._on_failure(exc)
            # A release is published, so a graceful handover is immediate; a crashed holder's lock
            # just expires, which the periodic retry notices.
            self.wake.wait(wait)

    def _loop(self, burst: bool, hooked: bool) -> None:
        # A pass through overridden hooks has no look-ahead: rq's hooks know nothing of runs built ahead.
        self.lookahead.enabled = not burst and not hooked
        self.lookahead.reset()
        while not self.stopping:
            self.wake.clear()
            try:
                if self.leadership.heartbeat_due():
                    self.scheduler.heartbeat()
                sleep = self._hooked_pass() if hooked else self.scheduler.run_once()
                if self.failing is not None:
                    self.log.warning(
                        "Scheduler %s: recovered after %.1fs (%s)",
                        self.name,
                        time.monotonic() - self._failing_since,
                        self.failing,
                    )
                    self.failing = None
                    self._backoff = 0.1
            except StopRequested:
                raise
            except Exception as exc:
                if burst or (hooked and not isinstance(exc, (*CONNECTION_ERRORS, RedisError))):
                    raise  # an overriding hook's own error is its caller's, as in rq's loop
                sleep = self._on_failure(exc)
            if burst and sleep > 0:
                return
            if sleep > 0 and not self.stopping:
                self.wake.wait(sleep)

    def _hooked_pass(self) -> float:
        """rq's pass, through the overridden hooks: enqueue what is due, then ask how long to wait."""
        self.scheduler.enqueue_jobs()
        return float(self.scheduler.calculate_sleep_interval())

    def _on_failure(self, exc: Exception) -> float:
        """Log a failure once per kind, and return how long to back off before the next try."""
        self.stats.failed_passes += 1
        kind = "Redis unreachable" if isinstance(exc, CONNECTION_ERRORS) else type(exc).__name__
        if kind != self.failing:
            if self.failing is None:
                self._failing_since = time.monotonic()
            self.failing = kind
            if isinstance(exc, CONNECTION_ERRORS):
                self.log.error("Scheduler %s: Redis unreachable (%s); retrying with back-off", self.name, exc)
            elif isinstance(exc, RedisError):
                # An error reply (NOPERM, OOM, READONLY, BUSY...): Redis says what is wrong, no traceback needed.
                refused = "NOPERM" in str(exc) or isinstance(exc, NoPermissionError)
                hint = " (docs/operations.md lists the ACL rights the scheduler needs)" if refused else ""
                self.log.error(
                    "Scheduler %s: Redis refused a command: %s%s; retrying with back-off", self.name, exc, hint
                )
            else:
                # A bug: keep going, loudly, without crashing.
                self.log.exception("Scheduler %s: pass failed; retrying with back-off", self.name)
        backoff = self._backoff
        self._backoff = min(self._backoff * 2, MAX_BACKOFF)
        # The lock may have expired meanwhile, and Redis may come back as a restarted server that knows
        # no scripts.
        self.leadership.heartbeat_soon()
        self.lookahead.forget_script()
        return backoff

    # -- signals ------------------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Nothing here may take a lock (not even logging's): the main thread, interrupted, may hold it.
        if self._releasing:
            # Shutting down already: releasing the lock takes one round trip (bounded by the socket
            # timeout); let it finish, so a standby takes over at once. A third signal leaves anyway.
            self._releasing = False
            self._second_signal = signum
            return
        if self.stopping:
            # A second signal: the loop is stuck (e.g. Redis hangs); leave now. The lock expires by itself.
            self._second_signal = signum
            raise KeyboardInterrupt
        self._stop_signal = signum
        self.request_stop()

    def install_signal_handlers(self) -> dict[int, Any]:
        """Stop on SIGINT and SIGTERM (in the main thread only); the handlers replaced, to restore after."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
