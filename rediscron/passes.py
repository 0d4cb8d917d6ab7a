"""One pass of the scheduler's loop: fire what is due, build what is about to be, say how long to wait.

One part of `RedisCronScheduler`; `Runner` calls it (through ``run_once()``) between sleeps.
It reads the index (`Dispatch.tick`), notes a changed registry for the scheduler hash
(`Presence`), fires runs built ahead (`LookAhead`) and the due slots (`Dispatch`), and
heartbeats first when the lock may have lapsed or Redis's master moved.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .dispatch import Dispatch
from .events import EventListener
from .leadership import Leadership
from .lookahead import LookAhead
from .presence import Presence
from .store import Tick

#: The loop does its monitoring chores (the scheduler hash) only when the next wake is at least this far.
IDLE_ENOUGH = 0.25


class Pass:
    """The pass the loop runs; ``heartbeat`` and ``save`` are the scheduler's own steps (rq's names)."""

    def __init__(
        self,
        dispatch: Dispatch,
        lookahead: LookAhead,
        leadership: Leadership,
        presence: Presence,
        listener: EventListener,
        *,
        max_sleep: Callable[[], float],
        heartbeat: Callable[[], None],
        save: Callable[[], None],
        log: logging.Logger,
    ) -> None:
        self.dispatch = dispatch
        self.lookahead = lookahead
        self.leadership = leadership
        self.presence = presence
        self.listener = listener
        self.max_sleep = max_sleep
        self.heartbeat = heartbeat
        self.save = save
        self.log = log
        #: The registry's change marker last read (None before the first tick).
        self.marker: str | None = None

    def tick(self, lookahead: float = 0.0) -> Tick:
        """A tick of the index (`Dispatch.tick`), noting whether the registry changed since the last one."""
        tick = self.dispatch.tick(lookahead)
        if tick.marker != self.marker:
            if self.marker is not None:
                # The first reading follows register_birth(), which has just written the scheduler hash.
                self.log.debug("Registry changed (marker %s -> %s)", self.marker, tick.marker)
                self.presence.dirty = True
            self.marker = tick.marker
        return tick

    def sleep_for(self, now: float, upcoming: float | None) -> float:
        """How long to wait at ``now`` for a slot at ``upcoming`` (None: none known), at most ``max_sleep``."""
        longest = self.max_sleep()
        sleep = longest if upcoming is None else max(0.0, upcoming - now)
        return min(sleep, longest)

    def run(self) -> float:
        """One pass: fire what is due, build what is about to be; return how long to wait before the next."""
        leadership, lookahead, dispatch = self.leadership, self.lookahead, self.dispatch
        if leadership.master_moved():
            self.listener.resubscribe()
            # Built against the old master's clock and records: build again from the new one.
            lookahead.reset()
            self.heartbeat()
        if leadership.may_have_expired():
            # Our lock may have expired unnoticed (a long pause); re-check it before firing.
            self.heartbeat()
        if lookahead.runs:
            lookahead.fire(dispatch.estimated_now())
        if dispatch.retry_due():
            dispatch.retry_quarantined()
        now, _marker, upcoming, entries = self.tick(lookahead.seconds)
        lookahead.plan(dispatch.coming)
        due = [entry for entry in entries if float(entry.score) <= now]
        _fired, more = dispatch.fire_due(now, due)
        held = leadership.fence is not None
        if dispatch.paused and due:
            # Paused registry-wide: the due slots wait; the resume's event wakes the loop (or the next pass).
            return min(self.sleep_for(now, None), max(0.0, leadership.next_heartbeat - time.monotonic()))
        if more or (due and not held):
            return 0.0
        ahead = [entry for entry in entries if float(entry.score) > now] if due else entries
        if ahead and held:
            # Also after firing what was due: a scheduler that only fires at the real time never catches up.
            lookahead.build(ahead)
            soonest = lookahead.soonest()
            if soonest is not None:
                upcoming = soonest if upcoming is None else min(upcoming, soonest)
        elif not entries and upcoming is not None:
            # Nothing within the look-ahead yet: wake when the next slot enters it, to build its runs in time.
            upcoming -= lookahead.seconds
        if dispatch.stale:
            # A job changed between read and fire; it is still due, so look again shortly.
            return 0.01
        if dispatch.advanced_to is not None:
            # The slots just fired moved on; their next one may come before anything read in the tick.
            # Fired cold, they were not built ahead: wake in time to build their next run.
            advanced = dispatch.advanced_to - lookahead.seconds
            upcoming = advanced if upcoming is None else min(upcoming, advanced)
        # Building runs ahead takes time: count the wait from now, not from the tick.
        sleep = self.sleep_for(dispatch.estimated_now(), upcoming)
        # rq's and django-rq's cron pages read next/latest runs from the scheduler hash: refresh it after fires.
        if self.presence.due(idle=sleep > IDLE_ENOUGH):
            # Monitoring only, and it reads up to 1,000 jobs: done while idle, not between a slot's fires
            # (unless the loop has not been idle for a minute).
            self.save()
            sleep = self.sleep_for(dispatch.estimated_now(), upcoming)
        until_heartbeat = max(0.0, leadership.next_heartbeat - time.monotonic())
        return min(sleep, until_heartbeat)
