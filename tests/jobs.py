"""Job functions the tests schedule; importable by scheduler and worker processes."""

from __future__ import annotations

import os
from typing import Any

import redis


def noop(*args: Any, **kwargs: Any) -> None:
    return None


def record(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Return its arguments, so a test can read them back from the RQ job result."""
    return {"args": list(args), "kwargs": kwargs}


def append_to(key: str, value: str) -> None:
    """Append ``value`` to the Redis list ``key`` on the server named by REDISCRON_TEST_URL."""
    client = redis.Redis.from_url(os.environ["REDISCRON_TEST_URL"])
    client.rpush(key, value)


class Tasks:
    @staticmethod
    def static_task() -> str:
        return "static"


class Holder:
    def instance_method(self) -> None:
        pass

    @classmethod
    def class_method(cls) -> None:
        pass


def fail(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("this job always fails")


def on_success(job: Any, connection: Any, result: Any, *args: Any, **kwargs: Any) -> None:
    connection.rpush("callbacks", f"success:{job.id}")


def sleep_for(seconds: float) -> None:
    """A slow job, for overlap tests."""
    import time

    time.sleep(seconds)
