"""What a due job runs: catch-up after missed slots, the misfire grace time, and the job's end.

Pure functions of a job definition, the slot it is indexed at and the time passed in.

The rules, when the scheduler reaches a job at ``now``:

* The *due* slots are the indexed slot and every later slot whose time (plus its jitter)
  has come. The newest of them is the *current* slot; the older ones are *missed*: they
  fell while no scheduler could run them.
* ``misfire_grace_time=G``: a slot found more than ``G`` seconds late never runs.
* ``catchup="coalesce"`` (default): the missed slots and the current one become one run,
  of the current slot.
* ``catchup="skip"``: missed slots are dropped; the current slot runs only if it is on
  time (at most :data:`ON_TIME` seconds late), else the job waits for its next slot.
* ``catchup="all"``: every due slot runs, oldest first, one per pass, but at most the
  newest :data:`CATCHUP_LIMIT` of them; older ones are dropped.

Every slot that does not run is counted and recorded with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .clock import format_time, from_epoch
from .schedule import IntervalSchedule

if TYPE_CHECKING:
    from .job import RedisCronJob

#: Most missed slots ``catchup="all"`` runs after one outage (the newest ones).
CATCHUP_LIMIT = 100
#: Missed cron slots are counted one by one up to this many; past it the count is a lower bound.
COUNT_LIMIT = 1000
#: How late (seconds) a slot may be found and still count as on time, for ``catchup="skip"``.
ON_TIME = 5.0


@dataclass(frozen=True)
class Drop:
    """Slots of one job that were not run, from ``first`` to ``last``."""

    first: int
    last: int
    slots: int
    #: False when ``slots`` is a lower bound (more than :data:`COUNT_LIMIT` cron slots).
    exact: bool
    reason: str

    def record(self, now: float) -> dict[str, Any]:
        """The form kept in the job's ``drop_log``."""
        return {
            "at": format_time(from_epoch(now)),
            "from": format_time(from_epoch(self.first)),
            "to": format_time(from_epoch(self.last)),
            "slots": self.slots,
            "exact": self.exact,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """What one fire of a due job does."""

    #: The slot to enqueue, or None.
    run: int | None
    #: The slot to index next, or None: the job has ended.
    next_slot: int | None
    drop: Drop | None
    #: This run is the job's last (``max_runs``).
    final: bool = False


class _Slots:
    """A job's slots around a known one (``anchor``), with their fire times."""

    def __init__(self, job: RedisCronJob, anchor: int) -> None:
        self.job = job
        self.schedule = job.schedule
        self.anchor = anchor

    def after(self, slot: int) -> int:
        if isinstance(self.schedule, IntervalSchedule):
            return slot + self.schedule.seconds
        return self.schedule.next_after(slot)

    def at_or_before(self, t: float) -> int:
        """The latest slot at or before ``t`` (never before the anchor)."""
        if isinstance(self.schedule, IntervalSchedule):
            steps = math.floor((t - self.anchor) / self.schedule.seconds)
            return self.anchor + max(0, steps) * self.schedule.seconds
        return max(self.anchor, self.schedule.prev_at_or_before(t))

    def late(self, slot: int, now: float) -> float:
        return now - self.job.score(slot)

    def count(self, first: int, last: int) -> tuple[int, bool]:
        """Slots in [first, last]: (count, exact)."""
        if last < first:
            return 0, True
        if isinstance(self.schedule, IntervalSchedule):
            return (last - first) // self.schedule.seconds + 1, True
        n, slot = 1, first
        while slot < last:
            if n >= COUNT_LIMIT:
                return n, False
            slot = self.after(slot)
            n += 1
        return n, True


def plan(job: RedisCronJob, slot: int, now: float) -> Plan:
    """What to do with ``job``, indexed at ``slot``, found due at ``now``."""
    if job.past_end(slot):
        return Plan(None, None, None)
    slots = _Slots(job, slot)
    grace = math.inf if job.misfire_grace_time is None else job.misfire_grace_time
    current = slot
    following = slots.after(slot)
    if job.score(following) <= now:  # more than one slot is due: the scheduler was away
        current = slots.at_or_before(now)
        if current > slot and job.score(current) > now:
            current = slots.at_or_before(current - 1)
    if job.end_time is not None and job.past_end(current):
        current = slots.at_or_before(job.end_time.timestamp())

    if job.catchup == "all" and current > slot:
        run, reason = _oldest_to_run(slots, slot, current, now, grace)
        last_dropped = slots.at_or_before(run - 1) if run > slot else None
        drop = _drop(slots, slot, last_dropped, reason) if last_dropped is not None else None
        if slots.late(run, now) > grace:  # only when run == current
            return _finish(job, None, slots.after(run), _drop(slots, slot, run, "misfired"))
        return _finish(job, run, slots.after(run), drop)

    late = slots.late(current, now)
    tolerance = min(grace, ON_TIME) if job.catchup == "skip" else grace
    runs = late <= tolerance
    reason = "misfired" if late > grace else ("skipped" if job.catchup == "skip" else "coalesced")
    last_dropped = current if not runs else (slots.at_or_before(current - 1) if current > slot else None)
    drop = _drop(slots, slot, last_dropped, reason) if last_dropped is not None else None
    return _finish(job, current if runs else None, following if current == slot else slots.after(current), drop)


def _oldest_to_run(slots: _Slots, slot: int, current: int, now: float, grace: float) -> tuple[int, str]:
    """For ``catchup="all"``: the oldest due slot that may still run, and why older ones may not."""
    first, reason = slot, "misfired"
    if slots.late(first, now) > grace:
        first = max(slot, slots.after(slots.at_or_before(math.ceil(now - grace) - 1)))
        while first < current and slots.late(first, now) > grace:
            first = slots.after(first)
    count, exact = slots.count(first, current)
    if not exact or count > CATCHUP_LIMIT:
        newest = current
        for _ in range(CATCHUP_LIMIT - 1):
            newest = slots.at_or_before(newest - 1)
        first, reason = max(first, newest), f"over the catch-up limit of {CATCHUP_LIMIT}"
    return min(first, current), reason


def _drop(slots: _Slots, first: int, last: int, reason: str) -> Drop:
    count, exact = slots.count(first, last)
    return Drop(first, last, count, exact, reason)


def _finish(job: RedisCronJob, run: int | None, next_slot: int, drop: Drop | None) -> Plan:
    final = run is not None and job.max_runs is not None and job.run_count + 1 >= job.max_runs
    return Plan(run, None if job.past_end(next_slot) else next_slot, drop, final)
