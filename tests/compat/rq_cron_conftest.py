"""Copied as ``conftest.py`` into rq's own test tree: rq's cron tests then run against rediscron.

rq's ``CronJob`` and ``CronScheduler`` become rediscron's subclasses, adapted in one way only:
rediscron requires a stable id, which rq's tests do not give, so a construction or
``register()`` call with neither ``id`` nor rq's ``name`` gets a fresh one (as rq adds a new
job on every call); jobs of an rq cron config get theirs from rediscron (name, else the
function's path).
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import rq.cron
from redis import Redis

from rediscron import RedisCronJob, RedisCronScheduler

_ids = itertools.count(1)


def _with_id(kwargs: dict[str, Any]) -> dict[str, Any]:
    if kwargs.get("id") is None and not kwargs.get("name"):
        kwargs["id"] = f"rq-test-{next(_ids)}"
    return kwargs


class CronJob(RedisCronJob):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs = _with_id(kwargs)
        if args:  # rq's positional order starts with queue_name, rediscron's with id
            super().__init__(kwargs.pop("id", None), *args, **kwargs)
        else:
            super().__init__(**kwargs)


class CronScheduler(RedisCronScheduler):
    cron_job_class = CronJob
    #: Jobs of an rq cron config get their ids from rediscron itself (name, else function path).
    _loading = False

    def load_config_from_file(self, config_path: str) -> None:
        self._loading = True
        try:
            super().load_config_from_file(config_path)
        finally:
            self._loading = False

    def register(self, *args: Any, **kwargs: Any) -> RedisCronJob:  # type: ignore[override]
        return super().register(*args, **(kwargs if self._loading else _with_id(kwargs)))


rq.cron.CronJob = CronJob  # type: ignore[misc]
rq.cron.CronScheduler = CronScheduler  # type: ignore[misc]


def _test_database(ssl: bool = False) -> Redis:
    """rq's tests look for an empty database on localhost:6379; use the server the harness started."""
    return Redis.from_url(os.environ["REDISCRON_RQ_TESTS_URL"])


import tests  # noqa: E402 - rq's test package, importable once this file sits at its root

tests.find_empty_redis_database = _test_database
