"""What ``rqrcron status`` shows: the leader, its health, fires and lag, and the registry's counts.

Everything comes from one pipelined read, whatever the number of jobs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, cast

from redis import Redis
from rq import cron_scheduler_registry
from rq.utils import as_text

from . import keys
from .clock import epoch_of_time_reply, parse_time, to_epoch
from .enqueue import FIRES_KEPT
from .lock import LockHolder
from .text import printable

#: The window ``rqrcron status`` computes rates and lag over.
WINDOW = 300.0


@dataclass
class Status:
    """A health report of the registry and its scheduler."""

    now: float
    leader: str | None
    host: str | None
    pid: int | None
    fencing_epoch: int | None
    lock_ttl_left: float | None
    heartbeat_age: float | None
    #: Fires per minute and lag (enqueue time - slot time, seconds) over the last ``window`` seconds.
    window: float
    fires_per_minute: float
    lag_p50: float | None
    lag_p99: float | None
    lag_max: float | None
    registered: int
    scheduled: int
    quarantined: int
    next_due_in: float | None
    #: Running totals since the registry was created.
    fired_total: int
    missed_total: int
    overlap_skipped_total: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))]


def read_status(connection: Redis, window: float = WINDOW) -> Status:
    """One round trip: the lock, the leader's hash and heartbeat, counts, totals and recent fires."""
    with connection.pipeline(transaction=False) as pipe:
        pipe.time()
        pipe.get(keys.lock())
        pipe.pttl(keys.lock())
        pipe.scard(keys.ids())
        pipe.zcard(keys.schedule())
        pipe.zcount(keys.schedule(), "+inf", "+inf")
        pipe.zrange(keys.schedule(), 0, 0, withscores=True)
        pipe.hgetall(keys.stats())
        pipe.lrange(keys.fires(), 0, -1)
        (time_reply, lock_value, ttl_ms, registered, indexed, quarantined, soonest, totals,
         fires) = pipe.execute()
    now = epoch_of_time_reply(time_reply)
    holder = LockHolder.parse(as_text(lock_value), int(ttl_ms)) if lock_value else None
    host = pid = age = started = None
    if holder is not None:
        with connection.pipeline(transaction=False) as pipe:
            pipe.hmget(f"{keys.prefix()}:cron_scheduler:{holder.name}", "hostname", "pid", "created_at")
            pipe.zscore(cron_scheduler_registry.get_registry_key(), holder.name)
            (host_raw, pid_raw, created_raw), seen = pipe.execute()
        host = as_text(host_raw) if host_raw else None
        pid = int(pid_raw) if pid_raw and as_text(pid_raw).isdigit() else None
        age = max(0.0, now - float(seen)) if seen is not None else None
        try:
            started = to_epoch(parse_time(as_text(created_raw))) if created_raw else None
        except ValueError:
            started = None
    recent: list[tuple[float, float]] = []
    for entry in cast(list[Any], fires):
        try:
            at, lag = as_text(entry).split(" ")
            recent.append((float(at), float(lag)))
        except ValueError:
            continue
    in_window = [(at, lag) for at, lag in recent if at >= now - window]
    span = window
    if started is not None and now - started < window:
        span = max(1.0, now - started)  # the leader has not been up for the whole window
    if len(recent) >= FIRES_KEPT and len(in_window) == len(recent):
        # The list is full and younger than the window: measure over the time it covers.
        span = min(span, max(1.0, now - min(at for at, _ in in_window)))
    lags = sorted(lag for _, lag in in_window)
    total = {as_text(k): int(v) for k, v in cast(dict[Any, Any], totals).items() if as_text(v).lstrip("-").isdigit()}
    next_due = float(soonest[0][1]) - now if soonest and math.isfinite(float(soonest[0][1])) else None
    return Status(
        now=now,
        leader=holder.name if holder else None,
        host=host,
        pid=pid,
        fencing_epoch=holder.epoch if holder else None,
        lock_ttl_left=holder.ttl_ms / 1000 if holder and holder.ttl_ms >= 0 else None,
        heartbeat_age=age,
        window=span,
        fires_per_minute=len(in_window) * 60.0 / span,
        lag_p50=_percentile(lags, 0.5) if lags else None,
        lag_p99=_percentile(lags, 0.99) if lags else None,
        lag_max=lags[-1] if lags else None,
        registered=int(registered),
        scheduled=int(indexed) - int(quarantined),
        quarantined=int(quarantined),
        next_due_in=next_due,
        fired_total=total.get("fired", 0),
        missed_total=total.get("missed", 0),
        overlap_skipped_total=total.get("overlap_skipped", 0),
    )


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.1f} s"


def render_status(status: Status) -> str:
    """Plain text, one fact per line."""
    if status.leader is None:
        leader = "none (the lock is free): no scheduler is running"
    else:
        where = f" on {status.host}" if status.host else ""
        pid = f" pid {status.pid}" if status.pid is not None else ""
        leader = f"{status.leader}{where}{pid}, fencing epoch {status.fencing_epoch}"
    minutes = status.window / 60
    lines = [
        ("leader", leader),
        ("lock", f"expires in {_seconds(status.lock_ttl_left)}" if status.leader else "-"),
        ("heartbeat", f"{_seconds(status.heartbeat_age)} ago" if status.heartbeat_age is not None else "-"),
        ("fires", f"{status.fires_per_minute:.1f}/min over the last "
                  + (f"{minutes:.0f} min" if minutes >= 1 else f"{status.window:.0f} s")),
        ("lag", f"p50 {_seconds(status.lag_p50)}, p99 {_seconds(status.lag_p99)}, max {_seconds(status.lag_max)}"),
        ("jobs", f"{status.registered} registered, {status.scheduled} scheduled, {status.quarantined} quarantined"),
        ("next due", f"in {_seconds(status.next_due_in)}" if status.next_due_in is not None else "-"),
        ("totals", f"{status.fired_total} fired, {status.missed_total} slots missed, "
                   f"{status.overlap_skipped_total} skipped for overlap"),
    ]
    width = max(len(name) for name, _ in lines)
    return "\n".join(f"{name.ljust(width)}  {printable(value)}" for name, value in lines)
