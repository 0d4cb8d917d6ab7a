"""An optional Prometheus endpoint for a running scheduler (text format, no extra dependency).

``rqrcron scheduler --metrics-port 9108``, or from Python::

    server = MetricsServer(scheduler, port=9108)
    server.start()
    scheduler.start()
"""

from __future__ import annotations

import bisect
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from . import keys

if TYPE_CHECKING:
    from .scheduler import RedisCronScheduler

log = logging.getLogger("rediscron.metrics")

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
        with self._lock:
            counts, total, n = list(self.counts), self.total, self.n
        out, running = [], 0
        for bound, count in zip((*map(str, LAG_BUCKETS), "+Inf"), counts, strict=True):
            running += count
            out.append(f'{name}_bucket{{le="{bound}"}} {running}')
        return [*out, f"{name}_sum {total:.6f}", f"{name}_count {n}"]


def render(scheduler: RedisCronScheduler) -> str:
    """The metrics of ``scheduler`` in Prometheus' text format."""
    lines = [
        "# HELP rediscron_fires_total Runs enqueued for their slot by this scheduler.",
        "# TYPE rediscron_fires_total counter",
        f"rediscron_fires_total {scheduler.fired}",
        "# HELP rediscron_missed_slots_total Slots not run (coalesced, skipped, misfired, over the catch-up limit).",
        "# TYPE rediscron_missed_slots_total counter",
        f"rediscron_missed_slots_total {scheduler.missed}",
        "# HELP rediscron_overlap_skips_total Slots skipped because the previous run was still in progress.",
        "# TYPE rediscron_overlap_skips_total counter",
        f"rediscron_overlap_skips_total {scheduler.overlap_skipped}",
        "# HELP rediscron_quarantined_total Jobs this scheduler quarantined.",
        "# TYPE rediscron_quarantined_total counter",
        f"rediscron_quarantined_total {scheduler.quarantined}",
        "# HELP rediscron_lag_seconds Enqueue time minus slot time.",
        "# TYPE rediscron_lag_seconds histogram",
        *scheduler.lag_histogram.lines("rediscron_lag_seconds"),
        "# HELP rediscron_lock_held 1 while this scheduler holds the lock.",
        "# TYPE rediscron_lock_held gauge",
        f"rediscron_lock_held {1 if scheduler.lock_epoch is not None else 0}",
        "# HELP rediscron_fencing_epoch The fencing epoch of the lock this scheduler holds (0: none).",
        "# TYPE rediscron_fencing_epoch gauge",
        f"rediscron_fencing_epoch {scheduler.lock_epoch or 0}",
    ]
    try:
        with scheduler.connection.pipeline(transaction=False) as pipe:
            pipe.scard(keys.ids())
            pipe.zcard(keys.schedule())
            pipe.zcount(keys.schedule(), "+inf", "+inf")
            registered, indexed, quarantined = pipe.execute()
        lines += [
            "# HELP rediscron_jobs Cron jobs in the registry.",
            "# TYPE rediscron_jobs gauge",
            f'rediscron_jobs{{state="registered"}} {registered}',
            f'rediscron_jobs{{state="scheduled"}} {int(indexed) - int(quarantined)}',
            f'rediscron_jobs{{state="quarantined"}} {quarantined}',
            "rediscron_redis_up 1",
        ]
    except Exception:  # a scrape during an outage still answers, and says so
        lines.append("rediscron_redis_up 0")
    return "\n".join(lines) + "\n"


class MetricsServer:
    """Serves ``/metrics`` for one scheduler from a daemon thread."""

    def __init__(self, scheduler: RedisCronScheduler, port: int, host: str = "0.0.0.0") -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                body = render(outer.scheduler).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("metrics: " + format, *args)

        self.scheduler = scheduler
        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on (useful with port 0)."""
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="rediscron-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()
