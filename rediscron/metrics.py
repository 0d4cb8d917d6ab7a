"""An optional Prometheus endpoint for a running scheduler (text format, no extra dependency).

``rqrcron scheduler --metrics-port 9108``, or from Python::

    server = MetricsServer(scheduler, port=9108)
    server.start()
    scheduler.start()

It listens on 127.0.0.1 unless told otherwise, reads Redis through a small pool of its own
(never the scheduler's), serves at most ``max_clients`` requests at once (a connection over
that is closed at once) and gives each ``timeout`` seconds: slow or idle clients cannot
delay a fire.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from redis import Redis

from . import keys
from .clock import epoch_of_time_reply
from .connection import own_client
from .stats import Stats

log = logging.getLogger("rediscron.metrics")

#: Requests served at once; a connection beyond them is closed without a reply.
MAX_CLIENTS = 8
#: Seconds a client has to send its request, and Redis to answer the endpoint's reads.
REQUEST_TIMEOUT = 5.0


def _metric(name: str, kind: str, help_text: str, *samples: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


class Observed(Protocol):
    """What the endpoint reads of a scheduler (``RedisCronScheduler`` is one)."""

    connection: Redis
    stats: Stats

    @property
    def lock_epoch(self) -> int | None: ...

    @property
    def registry_lost(self) -> int | None: ...


def render(scheduler: Observed, connection: Redis | None = None) -> str:
    """The metrics of ``scheduler`` in Prometheus' text format; Redis is read through ``connection``."""
    stats = scheduler.stats
    lines = [
        *_metric(
            "rediscron_fires_total",
            "counter",
            "Runs enqueued for their slot by this scheduler.",
            f"rediscron_fires_total {stats.fired}",
        ),
        *_metric(
            "rediscron_missed_slots_total",
            "counter",
            "Slots not run (coalesced, skipped, misfired, over the catch-up limit).",
            f"rediscron_missed_slots_total {stats.missed}",
        ),
        *_metric(
            "rediscron_overlap_skips_total",
            "counter",
            "Slots skipped because the previous run was still in progress.",
            f"rediscron_overlap_skips_total {stats.overlap_skipped}",
        ),
        *_metric(
            "rediscron_unreplicated_runs_total",
            "counter",
            "Runs enqueued that wait_replicas replicas did not acknowledge within 100 ms.",
            f"rediscron_unreplicated_runs_total {stats.unreplicated}",
        ),
        *_metric(
            "rediscron_disabled_for_failing_total",
            "counter",
            "Jobs this scheduler disabled because their runs failed max_consecutive_failures times in a row.",
            f"rediscron_disabled_for_failing_total {stats.disabled_for_failing}",
        ),
        *_metric(
            "rediscron_quarantined_total",
            "counter",
            "Jobs this scheduler quarantined.",
            f"rediscron_quarantined_total {stats.quarantined}",
        ),
        *_metric(
            "rediscron_failed_passes_total",
            "counter",
            "Passes of the loop that failed (Redis unreachable, an error reply); each is retried with back-off.",
            f"rediscron_failed_passes_total {stats.failed_passes}",
        ),
        *_metric(
            "rediscron_lag_seconds",
            "histogram",
            "Enqueue time minus slot time.",
            *stats.lag_histogram.lines("rediscron_lag_seconds"),
        ),
        *_metric(
            "rediscron_lock_held",
            "gauge",
            "1 while this scheduler holds the lock.",
            f"rediscron_lock_held {1 if scheduler.lock_epoch is not None else 0}",
        ),
        *_metric(
            "rediscron_fencing_epoch",
            "gauge",
            "The fencing epoch of the lock this scheduler holds (0: none).",
            f"rediscron_fencing_epoch {scheduler.lock_epoch or 0}",
        ),
        *_metric(
            "rediscron_registry_lost",
            "gauge",
            "1 while the registry is empty after having had jobs (Redis lost its data).",
            f"rediscron_registry_lost {1 if scheduler.registry_lost else 0}",
        ),
    ]
    try:
        with (connection or scheduler.connection).pipeline(transaction=False) as pipe:
            pipe.time()
            pipe.scard(keys.ids())
            pipe.zcard(keys.schedule())
            pipe.zcount(keys.schedule(), "+inf", "+inf")
            pipe.zrange(keys.schedule(), 0, 0, withscores=True)
            pipe.zcard(keys.failing())
            pipe.exists(keys.paused())
            now_reply, registered, indexed, quarantined, soonest, failing, paused = pipe.execute()
        now = epoch_of_time_reply(now_reply)
        first = float(soonest[0][1]) if soonest else math.inf
        # Counted by Redis, not the loop: a loop that is stuck cannot report its own stall.
        overdue = max(0.0, now - first) if math.isfinite(first) else 0.0
        lines += [
            *_metric(
                "rediscron_jobs",
                "gauge",
                "Cron jobs in the registry.",
                f'rediscron_jobs{{state="registered"}} {registered}',
                f'rediscron_jobs{{state="scheduled"}} {int(indexed) - int(quarantined)}',
                f'rediscron_jobs{{state="quarantined"}} {quarantined}',
                f'rediscron_jobs{{state="failing"}} {failing}',
            ),
            *_metric(
                "rediscron_oldest_overdue_seconds",
                "gauge",
                "How long the most overdue slot has been due (0: none); grows while no scheduler fires.",
                f"rediscron_oldest_overdue_seconds {overdue:.3f}",
            ),
            *_metric(
                "rediscron_paused",
                "gauge",
                "1 while every fire is paused registry-wide (`rqrcron pause`).",
                f"rediscron_paused {1 if paused else 0}",
            ),
            *_metric("rediscron_redis_up", "gauge", "1 if this endpoint could read Redis.", "rediscron_redis_up 1"),
        ]
    except Exception:  # a scrape during an outage still answers, and says so
        lines += _metric("rediscron_redis_up", "gauge", "1 if this endpoint could read Redis.", "rediscron_redis_up 0")
    return "\n".join(lines) + "\n"


class MetricsServer:
    """Serves ``/metrics`` for one scheduler from a daemon thread.

    ``host`` defaults to the loopback address: say ``"0.0.0.0"`` to serve other hosts.
    """

    def __init__(
        self,
        scheduler: Observed,
        port: int,
        host: str = "127.0.0.1",
        *,
        max_clients: int = MAX_CLIENTS,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.scheduler = scheduler
        self.connection = own_client(scheduler.connection, max_clients, timeout)
        slots = threading.BoundedSemaphore(max_clients)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                super().setup()
                self.connection.settimeout(timeout)  # a silent client is dropped
                # And one that trickles its request a byte at a time: the whole request has `timeout` seconds.
                self._deadline = threading.Timer(timeout, self._cut)
                self._deadline.daemon = True
                self._deadline.start()

            def _cut(self) -> None:
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

            def finish(self) -> None:
                self._deadline.cancel()
                with contextlib.suppress(OSError):
                    super().finish()

            def do_GET(self) -> None:
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                body = render(outer.scheduler, outer.connection).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("metrics: " + format, *args)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            # A burst of connections waits in the kernel's queue for the accept loop, not in SYN retries.
            request_queue_size = 128

            def process_request(self, request: Any, client_address: Any) -> None:
                if not slots.acquire(blocking=False):
                    self.shutdown_request(request)  # busy: refuse at once rather than queue up
                    return
                try:
                    super().process_request(request, client_address)
                except BaseException:
                    slots.release()
                    raise

            def process_request_thread(self, request: Any, client_address: Any) -> None:
                try:
                    super().process_request_thread(request, client_address)
                finally:
                    slots.release()

            def handle_error(self, request: Any, client_address: Any) -> None:
                log.debug("metrics: request from %s failed", client_address, exc_info=True)

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        Server.address_family = family
        self.httpd = Server((host, port), Handler)
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
        """Stop serving and close the socket and the endpoint's Redis connections."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.connection.close()
        self.connection.connection_pool.disconnect()
