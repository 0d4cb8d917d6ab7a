"""What ``rqrcron status`` shows: the leader, its health, fires and lag, and the registry's counts.

Everything comes from one pipelined read, whatever the number of jobs.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from redis import Redis
from rq import cron_scheduler_registry

from . import keys
from .clock import epoch_of_time_reply, parse_time, to_epoch
from .enqueue import FIRES_KEPT
from .lock import LockHolder
from .registry import read_pause
from .text import printable

#: The window ``rqrcron status`` computes rates and lag over.
WINDOW = 300.0
#: A due slot older than this (seconds) is a problem: no scheduler is firing.
MAX_OVERDUE = 60.0
#: Jobs with consecutive failures listed by name.
FAILING_SHOWN = 5


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
    #: How long the most overdue slot has been due (0: none is).
    oldest_overdue: float = 0.0
    lock_ttl: int | None = None
    #: False when the leader is known dead: it ran on this host and its process is gone.
    leader_alive: bool | None = None
    #: Jobs the leader saw before the registry came back empty (None: not so).
    registry_lost: int | None = None
    #: Jobs whose runs failed in a row, and the worst few (id, failures).
    failing: int = 0
    most_failing: list[tuple[str, int]] = field(default_factory=list)
    #: While every fire is paused (`rqrcron pause`): when (epoch seconds), by whom, why; else None.
    paused: dict[str, Any] | None = None
    #: What is wrong, one sentence each; empty when healthy.
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        # Strict JSON has no Infinity or NaN.
        return {
            key: None if isinstance(value, float) and not math.isfinite(value) else value
            for key, value in asdict(self).items()
        }


def _percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))]


def read_status(connection: Redis, window: float = WINDOW, max_overdue: float = MAX_OVERDUE) -> Status:
    """Two round trips whatever the number of jobs: the lock, the leader's hash and heartbeat, counts,
    totals and recent fires; and the problems they show (see `Status.problems`)."""
    with connection.pipeline(transaction=False) as pipe:
        pipe.time()
        pipe.get(keys.lock())
        pipe.pttl(keys.lock())
        pipe.scard(keys.ids())
        pipe.zcard(keys.schedule())
        pipe.zcount(keys.schedule(), "+inf", "+inf")
        pipe.zrange(keys.schedule(), 0, 0, withscores=True)
        pipe.hgetall(keys.stats())
        pipe.lrange(keys.fires(), 0, FIRES_KEPT - 1)  # a list grown by hand stays a bounded read
        pipe.zcard(keys.failing())
        pipe.zrevrange(keys.failing(), 0, FAILING_SHOWN - 1, withscores=True)
        pipe.get(keys.paused())
        (
            time_reply,
            lock_value,
            ttl_ms,
            registered,
            indexed,
            quarantined,
            soonest,
            totals,
            fires,
            failing,
            most_failing,
            pause,
        ) = pipe.execute()
    now = epoch_of_time_reply(time_reply)
    holder = LockHolder.parse(_text(lock_value), int(ttl_ms)) if lock_value else None
    host = pid = age = started = lock_ttl = lost = None
    if holder is not None:
        with connection.pipeline(transaction=False) as pipe:
            pipe.hmget(
                f"{keys.prefix()}:cron_scheduler:{holder.name}",
                "hostname",
                "pid",
                "created_at",
                "lock_ttl",
                "registry_lost",
            )
            pipe.zscore(cron_scheduler_registry.get_registry_key(), holder.name)
            (host_raw, pid_raw, created_raw, ttl_raw, lost_raw), seen = pipe.execute()
        host = _text(host_raw) if host_raw else None
        pid = _whole(pid_raw)
        lock_ttl = _whole(ttl_raw)
        lost = _whole(lost_raw)
        age = max(0.0, now - float(seen)) if seen is not None and math.isfinite(float(seen)) else None
        try:
            started = to_epoch(parse_time(_text(created_raw))) if created_raw else None
        except ValueError:
            started = None
    recent: list[tuple[float, float]] = []
    for entry in cast(list[Any], fires):
        try:
            at, lag = (float(part) for part in _text(entry).split(" "))
        except ValueError:
            continue
        if math.isfinite(at) and math.isfinite(lag):
            recent.append((at, lag))
    span = window
    if started is not None and now - started < window:
        span = max(1.0, now - started)  # the leader has not been up for the whole window: its fires only
    in_window = [(at, lag) for at, lag in recent if at >= now - span]
    if len(recent) >= FIRES_KEPT and len(in_window) == len(recent):
        # The list is full and younger than the window: measure over the time it covers.
        span = min(span, max(1.0, now - min(at for at, _ in in_window)))
    lags = sorted(lag for _, lag in in_window)
    total = {_text(k): whole for k, v in cast(dict[Any, Any], totals).items() if (whole := _whole(v)) is not None}
    next_due = float(soonest[0][1]) - now if soonest and math.isfinite(float(soonest[0][1])) else None
    status = Status(
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
        oldest_overdue=max(0.0, -next_due) if next_due is not None else 0.0,
        lock_ttl=lock_ttl,
        leader_alive=_alive_here(host, pid),
        registry_lost=lost,
        failing=int(failing),
        most_failing=[(_text(job_id), int(score)) for job_id, score in most_failing if math.isfinite(score)],
        paused=read_pause(pause),
    )
    status.problems = _problems(status, max_overdue)
    return status


def _text(raw: Any) -> str:
    """Text of a reply, whatever bytes it holds (a hostile value is shown, escaped, never fatal)."""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _whole(raw: Any) -> int | None:
    """A whole number rediscron wrote (ASCII digits, optionally negative), else None."""
    text = _text(raw) if raw is not None else ""
    digits = text[1:] if text.startswith("-") else text
    return int(text) if digits.isascii() and digits.isdigit() and len(digits) < 19 else None


def _alive_here(host: str | None, pid: int | None) -> bool | None:
    """Whether the leader's process is running, when it runs on this host (None: can't tell from here)."""
    if host is None or pid is None or host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except (OverflowError, ValueError, OSError):
        return None  # no pid this system can have: can't tell
    return True


def _problems(status: Status, max_overdue: float) -> list[str]:
    problems = []
    if status.leader is None:
        problems.append("no scheduler holds the lock: nothing is being enqueued")
    elif status.heartbeat_age is None:
        problems.append(
            f"the lock's holder {status.leader} has no heartbeat in rq's scheduler registry: it is not a "
            "running rediscron scheduler, or it stopped heartbeating"
        )
    elif status.leader_alive is False:
        problems.append(
            f"the leader's process (pid {status.pid} on this host) is gone; its lock expires in "
            f"{_seconds(status.lock_ttl_left)}, then a standby takes over"
        )
    elif status.heartbeat_age is not None and status.lock_ttl and status.heartbeat_age > status.lock_ttl * 2 / 3:
        problems.append(
            f"the leader's last heartbeat was {_seconds(status.heartbeat_age)} ago (it beats every "
            f"{_seconds(status.lock_ttl / 3)}): it is stuck or paused"
        )
    if status.oldest_overdue > max_overdue and status.paused is None:  # paused: slots wait on purpose
        problems.append(
            f"a slot has been due for {_seconds(status.oldest_overdue)} (more than "
            f"{_seconds(max_overdue)}): no scheduler is firing"
        )
    if status.registry_lost:
        problems.append(
            f"the registry is empty, and had {status.registry_lost} job(s): Redis lost its data; "
            "register the jobs again (for example with `rqrcron apply`)"
        )
    return problems


def describe_pause(pause: dict[str, Any], now: float) -> str:
    """``every fire, for 4.2 min, by ops@host: deploying``."""
    at = pause.get("at")
    since = f", for {_seconds(now - at)}" if isinstance(at, (int, float)) and math.isfinite(at) else ""
    reason = f": {pause['reason']}" if pause.get("reason") else ""
    return f"every fire{since}, by {pause.get('by', '?')}{reason} (`rqrcron resume` lifts it)"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) < 1:
        return f"{value * 1000:.0f} ms"
    if abs(value) < 100:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min" if abs(value) < 7200 else f"{value / 3600:.1f} h"


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
        (
            "fires",
            f"{status.fires_per_minute:.1f}/min over the last "
            + (f"{minutes:.0f} min" if minutes >= 1 else f"{status.window:.0f} s"),
        ),
        ("lag", f"p50 {_seconds(status.lag_p50)}, p99 {_seconds(status.lag_p99)}, max {_seconds(status.lag_max)}"),
        ("jobs", f"{status.registered} registered, {status.scheduled} scheduled, {status.quarantined} quarantined"),
        (
            "next due",
            "-"
            if status.next_due_in is None
            else f"in {_seconds(status.next_due_in)}"
            if status.next_due_in >= 0
            else f"overdue by {_seconds(-status.next_due_in)}",
        ),
        (
            "totals",
            f"{status.fired_total} fired, {status.missed_total} slots missed, "
            f"{status.overlap_skipped_total} skipped for overlap",
        ),
        (
            "failing",
            "-"
            if not status.failing
            else f"{status.failing} job(s) whose latest runs failed: "
            + ", ".join(f"{job_id} ({count} in a row)" for job_id, count in status.most_failing)
            + (", ..." if status.failing > len(status.most_failing) else ""),
        ),
    ]
    if status.oldest_overdue > 1:
        lines.insert(7, ("overdue", f"the oldest due slot waits for {_seconds(status.oldest_overdue)}"))
    if status.paused is not None:
        lines.insert(0, ("paused", describe_pause(status.paused, status.now)))
    lines += [("problem", problem) for problem in status.problems]
    width = max(len(name) for name, _ in lines)
    return "\n".join(f"{name.ljust(width)}  {printable(value)}" for name, value in lines)
