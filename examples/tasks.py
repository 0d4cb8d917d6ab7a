"""Job functions for the demo: they live in a module so the scheduler and workers can import them."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from redis import Redis


def greet(name: str) -> str:
    """Record a greeting in the demo's Redis list, as a real job would do its work."""
    line = f"{datetime.now(timezone.utc):%H:%M:%S} hello, {name}"
    Redis.from_url(os.environ["DEMO_REDIS_URL"]).rpush("demo:log", line)
    return line
