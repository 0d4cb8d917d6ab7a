"""What one scheduler has done: counters and the lag histogram (for logs, ``/metrics`` and tests)."""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field

#: Upper bounds (seconds) of the lag histogram's buckets.
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class LagHistogram:
    """Cumulative counts of lags (enqueue time - slot time), thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts = [0] * (len(LAG_BUCKETS) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, lag: float) -> None:
        with self._lock:
            self.counts[bisect.bisect_left(LAG_BUCKETS, lag)] += 1
            self.total += lag
            self.n += 1

    def lines(self, name: str) -> list[str]:
        """The histogram in Prometheus' text format, as metric ``name``."""
        with self._lock:
            counts, total, n = list(self.counts), self.total, self.n
        out, running = [], 0
        for bound, count in zip((*map(str, LAG_BUCKETS), "+Inf"), counts, strict=True):
            running += count
            out.append(f'{name}_bucket{{le="{bound}"}} {running}')
        return [*out, f"{name}_sum {total:.6f}", f"{name}_count {n}"]


@dataclass
class Stats:
    """Counts since the scheduler was built; they only grow."""

    #: Runs enqueued for their slot.
    fired: int = 0
    #: Jobs quarantined (their record or their run could not be used).
    quarantined: int = 0
    #: Slots not run: coalesced, skipped, misfired, over the catch-up limit.
    missed: int = 0
    #: Slots skipped because the previous run was still in progress.
    overlap_skipped: int = 0
    #: Runs enqueued that the replicas (``wait_replicas``) did not acknowledge in time.
    unreplicated: int = 0
    #: Jobs disabled because their runs failed ``max_consecutive_failures`` times in a row.
    disabled_for_failing: int = 0
    #: Passes of the loop that failed (each is retried with back-off).
    failed_passes: int = 0
    lag_histogram: LagHistogram = field(default_factory=LagHistogram)
