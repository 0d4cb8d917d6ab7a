"""Look-ahead: the runs of slots about to be due, built before their slot so that only the fire is left at it.

One part of `RedisCronScheduler`'s running loop. Each pass reads the jobs due within
``LOOKAHEAD`` seconds (further when a crowded slot is coming: `plan()`) and builds their
runs (plan, RQ job, rq's enqueue commands) as if fired on time; at the slot, `fire()` sends
them. The fire script still checks the lock, the revision and the indexed slot, so a run
built before an edit or a lost lock is never enqueued: its job is planned again. A plan that
stops holding (the slot is now too late for its misfire grace, or the next slot is due too)
is built again at the real time."""

from __future__ import annotations

import time
from typing import Any

from rq.utils import as_text

from . import enqueue, scripts, store
from .dispatch import Dispatch

#: How far ahead (seconds) the running loop reads the jobs about to be due and builds their runs,
#: at least.
LOOKAHEAD = 1.0
#: At most this far ahead (seconds), when many runs are coming and building them takes longer.
MAX_LOOKAHEAD = 60.0
#: The entries due within this many seconds are counted at every tick, to see a crowded slot coming.
HORIZON = 60.0
#: What building one run is taken to cost (seconds) until the loop has measured it.
FIRST_COST = 150e-6
#: Most runs built ahead at once (each holds about 1 KB).
AHEAD_LIMIT = 100_000


class LookAhead:
    """Runs built ahead of their slots, by job id, fired through ``dispatch``.

    It reads ``LOOKAHEAD`` seconds ahead; when the runs due within ``HORIZON`` would take longer
    than that to build (a slot shared by 100,000 jobs), it reads further, up to ``MAX_LOOKAHEAD``:
    twice the time building them is measured to take, so they are built before their slot.
    """

    def __init__(self, dispatch: Dispatch) -> None:
        self.dispatch = dispatch
        self._enabled = False
        self.runs: dict[str, enqueue.Slot] = {}
        #: The field lists of the runs built, each kept once (`Slot.compact`).
        self._fields: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        #: Whether the fire script is known to be loaded on the server the loop talks to.
        self._script_loaded = False
        #: Seconds one run took to build, as measured (a moving average).
        self.cost = FIRST_COST
        self._seconds = LOOKAHEAD

    @property
    def enabled(self) -> bool:
        """Whether the loop builds runs ahead (not in burst mode, nor with rq's overridden hooks)."""
        return self._enabled

    @enabled.setter
    def enabled(self, enabled: bool) -> None:
        self._enabled = enabled
        self.dispatch.horizon = HORIZON if enabled else 0.0

    @property
    def seconds(self) -> float:
        """How far ahead the loop reads: ``LOOKAHEAD`` or more while enabled (see `plan()`), else 0."""
        return self._seconds if self._enabled else 0.0

    def plan(self, coming: int) -> None:
        """Read far enough ahead to build the ``coming`` runs (those due within ``HORIZON``) in time."""
        needed = 2 * coming * self.cost
        self._seconds = min(MAX_LOOKAHEAD, max(LOOKAHEAD, needed))

    def reset(self) -> None:
        """Forget every run built (they were built against another server, or another lock)."""
        self.runs.clear()
        self._fields.clear()
        self._script_loaded = False

    def forget_script(self) -> None:
        """The server may have restarted and forgotten the fire script: load it before the next build."""
        self._script_loaded = False

    def soonest(self) -> float | None:
        """The score of the soonest run built, if any."""
        return min((float(s.score) for s in self.runs.values()), default=None)

    def build(self, entries: list[store.Due]) -> None:
        """Build the runs of tick entries not yet due (and of further entries within the look-ahead)."""
        if not self._script_loaded:
            # Firing at the slot must not be the moment Redis turns out not to know the script.
            scripts.load(self.dispatch.connection, "fire")
            self._script_loaded = True
        offset = 0
        soonest = self.soonest()
        while entries:
            fresh = [entry for entry in entries if not self._built(entry)]
            started = time.perf_counter()
            for job, score, revision in self.dispatch.read_due(fresh):
                slot = self.dispatch.prepare(job, score, revision, float(score))
                if slot is not None and slot.plan.run is not None and slot.plan.drop is None:
                    slot.compact(self._fields)  # what the fire needs, and no more
                    self.runs[job.id] = slot
                    soonest = float(slot.score) if soonest is None else min(soonest, float(slot.score))
            if fresh:
                self.cost = 0.8 * self.cost + 0.2 * (time.perf_counter() - started) / len(fresh)
            if len(entries) < self.dispatch.batch_size or len(self.runs) >= AHEAD_LIMIT or self._must_stop(soonest):
                return
            offset += len(entries)
            entries = self.dispatch.tick(self.seconds, offset).entries

    def _must_stop(self, soonest: float | None) -> bool:
        """Whether a long build must give the loop back: a heartbeat is due (the lock must not lapse), or
        the soonest run built has reached its slot. The next pass builds on from where this one stopped."""
        if time.monotonic() >= self.dispatch.leadership.next_heartbeat:
            return True
        return soonest is not None and self.dispatch.estimated_now() >= soonest

    def _built(self, entry: store.Due) -> bool:
        """Whether the run of a tick entry is already built, for the same record and slot."""
        try:
            built = self.runs.get(as_text(entry.id))
        except UnicodeDecodeError:
            return False  # no id rediscron wrote: the pass that finds it due drops it
        return built is not None and entry.score == built.score and entry.revision == built.revision

    def fire(self, now: float) -> None:
        """Fire the runs whose slots have come; one whose plan no longer holds is left to be planned again."""
        ready = [s for s in self.runs.values() if float(s.score) <= now]
        for s in ready:
            del self.runs[s.owner.id]
        if len(self._fields) > len(self.runs):
            # Most of them were those of runs gone (each run keeps its own): shared from afresh.
            self._fields.clear()
        self.dispatch.fire_batches([s for s in ready if now < s.valid_until], now)
