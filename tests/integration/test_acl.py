"""The ACL rules docs/operations.md gives are enough, and a missing right is named, never a traceback.

The rules are read from the docs page itself, so the page and the code cannot drift apart.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result
from rq import Queue, SimpleWorker

from rediscron import RedisCronJob, RedisCronScheduler, audit
from rediscron.cli import main
from tests import jobs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def documented_rule(name: str) -> list[str]:
    """The words of the ``ACL SETUSER`` line that follows ``<!-- acl:NAME -->`` in the docs."""
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(rf"<!-- acl:{name} -->\s*```\s*\n(ACL SETUSER [^\n]+)\n```", text)
    assert found, f"docs/operations.md has no ACL rule block for {name}"
    return found.group(1).split()[2:]


@pytest.fixture
def users(connection: redis.Redis) -> Iterator[dict[str, list[str]]]:
    rules = {name: documented_rule(name) for name in ("scheduler", "viewer")}
    version = tuple(int(x) for x in str(connection.info("server")["redis_version"]).split(".")[:2])
    if version < (7, 2):
        # As the docs say: servers before 7.2 have no CLIENT SETINFO (redis-py does without it).
        rules = {name: [w for w in words if w != "+client|setinfo"] for name, words in rules.items()}
    for words in rules.values():
        connection.execute_command("ACL", "SETUSER", *[w.replace(">CHANGE-ME", ">pw") for w in words])
    yield rules
    for words in rules.values():
        connection.execute_command("ACL", "DELUSER", words[0])


def url_as(redis_url: str, user: str) -> str:
    return redis_url.replace("redis://", f"redis://{user}:pw@")


def cli(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["-u", url, *args])


def test_a_scheduler_and_a_writer_need_nothing_more(
    connection: redis.Redis, redis_url: str, users: dict[str, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    user = users["scheduler"][0]
    as_user = redis.Redis.from_url(url_as(redis_url, user))
    scheduler = RedisCronScheduler(as_user, name="acl", lock_ttl=3, logging_level="WARNING")
    scheduler.register(
        jobs.noop,
        "q",
        id="every",
        interval=1,
        overlap="skip",
        ttl=600,
        at_front=True,
        failure_ttl=60,
        retry=2,
        description="options rq writes",
    )
    scheduler.register(jobs.fail, "q", id="failing", cron="* * * * * *", jitter=0)
    scheduler.register_many([{"func": jobs.noop, "queue_name": "q", "id": f"m{i}", "interval": 5} for i in range(3)])
    with caplog.at_level(logging.WARNING, logger="rediscron"):
        runner = threading.Thread(target=scheduler.start)
        runner.start()
        worker = SimpleWorker([Queue("q", connection=connection)], connection=connection)
        time.sleep(1.2)
        worker.work(burst=True)  # a failed run, for the failure count of the next fire
        RedisCronJob.fetch("every", as_user).disable()
        RedisCronJob.fetch("every", as_user).enable()
        scheduler.trigger("m0")
        time.sleep(1.2)
        scheduler.request_stop()
        runner.join(10)
    assert not runner.is_alive()
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [p for p in problems if "NOPERM" in p or "refused" in p], problems
    assert scheduler.stats.fired >= 4
    assert connection.zscore("rq:cron_jobs:failing", "failing") is not None
    for args in (
        ["add", "x", "tests.jobs.noop", "-q", "q", "--interval", "5"],
        ["disable", "x"],
        ["enable", "x"],
        ["trigger", "x"],
        ["backfill", "x", "--from", _ago(60), "--to", _ago(30)],
        ["log", "x"],
        ["enable", "--quarantined"],
        ["rm", "x"],
    ):
        result = cli(url_as(redis_url, user), *args)
        assert result.exit_code == 0, (args, result.output)
    # The writer's changes are in the audit log (its XADD allowed), newest first.
    assert [e.action for e in audit.read(connection, "x")] == ["deleted", "enabled", "disabled", "created"]


def _ago(seconds: float) -> str:
    """An ISO time ``seconds`` ago."""
    return datetime.fromtimestamp(time.time() - seconds, timezone.utc).isoformat()


def test_a_viewer_reads_everything_and_writes_nothing(
    connection: redis.Redis, redis_url: str, users: dict[str, list[str]], tmp_path: Path
) -> None:
    scheduler = RedisCronScheduler(connection, name="leader", logging_level="WARNING")
    scheduler.register(jobs.noop, "q", id="a", interval=60)
    scheduler.register_birth()
    scheduler.enqueue_jobs()
    url = url_as(redis_url, users["viewer"][0])
    (tmp_path / "s.json").write_text('[{"id": "a", "func": "tests.jobs.noop", "queue": "q", "interval": 30}]')
    for args in (
        ["info"],
        ["info", "--json"],
        ["info", "-R"],
        ["show", "a"],
        ["history", "a"],
        ["log"],
        ["log", "a"],
        ["export"],
        ["status"],
        ["apply", str(tmp_path / "s.json"), "--dry-run"],
    ):
        result = cli(url, *args)
        assert result.exit_code == 0, (args, result.output)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from rediscron.web import create_app

    page = TestClient(create_app(redis.Redis.from_url(url)))  # the web page, read-only
    for path in ("/", "/?state=disabled", "/?q=a", "/?queue=q", "/job?id=a", "/job/live?id=a", "/api/state?id=a"):
        assert page.get(path).status_code == 200, path
    scheduler.register_death()


@pytest.mark.parametrize(
    ("removed", "args"),
    [
        ("hset", ["add", "x", "tests.jobs.noop", "-q", "q", "--interval", "5"]),
        ("evalsha", ["disable", "a"]),
        ("hgetall", ["show", "a"]),
    ],
)
def test_a_missing_right_is_named_in_one_line(
    connection: redis.Redis, redis_url: str, users: dict[str, list[str]], removed: str, args: list[str]
) -> None:
    RedisCronScheduler(connection, logging_level="WARNING").register(jobs.noop, "q", id="a", interval=60)
    user = users["scheduler"][0]
    connection.execute_command("ACL", "SETUSER", user, f"-{removed}")
    result = cli(url_as(redis_url, user), *args)
    assert result.exit_code == 1, result.output
    assert removed in result.output.lower() and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_scheduler_logs_a_refusal_without_a_traceback(
    connection: redis.Redis, redis_url: str, users: dict[str, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    user = users["scheduler"][0]
    as_user = redis.Redis.from_url(url_as(redis_url, user))
    scheduler = RedisCronScheduler(as_user, name="acl2", logging_level="WARNING")
    scheduler.register(jobs.noop, "q", id="a", interval=1)
    connection.execute_command("ACL", "SETUSER", user, "-rpush")  # rq's enqueue, inside the fire script
    with caplog.at_level(logging.ERROR, logger="rediscron"):
        failure: list[Any] = []
        stopper = threading.Timer(1.5, scheduler.request_stop)
        stopper.start()
        try:
            scheduler.start()
        except Exception as exc:  # pragma: no cover - the test fails below
            failure.append(exc)
        stopper.join()
    assert not failure
    assert scheduler.stats.failed_passes >= 1  # counted (rediscron_failed_passes_total)
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert refused and "rpush" in refused[0].getMessage().lower() and refused[0].exc_info is None
    assert "ACL" in refused[0].getMessage()
