"""The web page at N jobs: how long each page takes to serve, and how big it is.

Served in-process (Starlette's test client: routing, Redis reads and rendering, no network). A page
never reads the whole registry, so its time should stay flat as N grows.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import redis

from rediscron.registry import Registry

from .common import EPOCH, Results, median

PAGES = {
    "jobs page, first screen": "/",
    "jobs page, a filter matching nothing (one scan budget)": "/?queue=no-such-queue",
    "jobs page, disabled jobs": "/?state=disabled",
    "a job's page": "/job?id=bench:7",
    "live state (polled every second)": "/api/state",
}
REPEATS = 5
#: Every page, at any N: a filter that matches nothing stops at its scan budget, so it is bounded too.
LIMIT = 0.1


def pages(url: str, n: int, results: Results, first: dict[str, float]) -> None:
    """Time and size of each page at N jobs (one in ten disabled); ``first`` keeps the first N's times."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

        from rediscron.web import create_app

    connection = redis.Redis.from_url(url)
    connection.flushall()
    registry = Registry(connection, clock=lambda: EPOCH)
    items: list[dict[str, Any]] = [
        {"func": "benchmarks.tasks.noop", "queue_name": "default", "id": f"bench:{i}", "interval": 60 + i % 600}
        for i in range(n)
    ]
    for item in items[::10]:
        item["enabled"] = False
    registry.register_many(items)
    client = TestClient(create_app(connection))
    for label, path in PAGES.items():
        client.get(path)  # warm: templates compiled, connections open
        times, size = [], 0
        for _ in range(REPEATS):
            start = time.perf_counter()
            response = client.get(path)
            times.append(time.perf_counter() - start)
            if response.status_code != 200:
                raise AssertionError(f"{path} answered {response.status_code}")
            size = len(response.content)
        took = median(times)
        first.setdefault(label, took)
        results.add(
            f"web: {label}",
            n,
            f"{took * 1000:,.1f} ms, {size / 1024:,.1f} KiB (x{took / first[label]:.2f} of the smallest N)",
            "",
            "",
            f"<= {LIMIT * 1000:.0f} ms",
            took <= LIMIT,
        )
    connection.flushall()
