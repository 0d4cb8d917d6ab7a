"""The next runs of a schedule, with what daylight saving time does to them (``rqrcron preview``, ``show --next``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .clock import from_epoch
from .schedule import Schedule, zone

#: The most runs one preview lists.
MAX_RUNS = 1000


@dataclass(frozen=True)
class Run:
    """One upcoming run: its moment, in the job's zone, and what DST does to it ("" if nothing)."""

    at: datetime
    local: datetime
    note: str


def upcoming(schedule: Schedule, after: float, n: int) -> list[int]:
    """The first ``n`` slots (epoch seconds) of ``schedule`` after ``after``."""
    return slots_from(schedule, schedule.next_after_fire(math.floor(after), after), n)


def slots_from(schedule: Schedule, first: int, n: int, past_end: Callable[[int], bool] | None = None) -> list[int]:
    """``first`` and the slots after it, ``n`` at most (and MAX_RUNS), up to the first ``past_end``."""
    slots: list[int] = []
    slot = first
    while len(slots) < min(n, MAX_RUNS) and not (past_end is not None and past_end(slot)):
        slots.append(slot)
        slot = schedule.next_after_fire(slot, slot)
    return slots


def runs(slots: list[int], zone_name: str) -> list[Run]:
    """Each slot in ``zone_name``, noting a run moved by a skipped hour or placed in a repeated one."""
    tz = zone(zone_name)
    out = []
    for slot in slots:
        at = from_epoch(slot)
        local = at.astimezone(tz)
        out.append(Run(at, local, _note(at, local)))
    return out


def _note(at: datetime, local: datetime) -> str:
    offset, earlier = local.utcoffset(), (at - timedelta(seconds=1)).astimezone(local.tzinfo).utcoffset()
    if offset is not None and earlier is not None and offset > earlier:
        return "at the clock change: the wall time it names was skipped that day, so it runs at the change"
    wall = local.replace(tzinfo=None)
    first, second = wall.replace(fold=0, tzinfo=local.tzinfo), wall.replace(fold=1, tzinfo=local.tzinfo)
    if first.utcoffset() != second.utcoffset():
        return "in the repeated hour: it runs once, at the first occurrence"
    return ""
