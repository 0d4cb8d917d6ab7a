"""The audit log: every change, who made it and what it changed, written with the change; rollback from it."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from rediscron import RedisCronJob, RedisCronScheduler
from rediscron import keys as k
from rediscron.audit import AUDIT_LENGTH, acting_as, process_actor, read
from rediscron.cli import main
from rediscron.errors import InvalidJobError, RediscronError
from rediscron.registry import Registry
from tests import jobs


@pytest.fixture
def scheduler(connection: redis.Redis) -> RedisCronScheduler:
    return RedisCronScheduler(connection, logging_level="WARNING")


def test_each_change_is_recorded_with_its_fields_and_who_made_it(
    connection: redis.Redis, scheduler: RedisCronScheduler
) -> None:
    scheduler.register(jobs.noop, "metrics", id="pm25", interval=300, args=["pm25"])
    scheduler.register(jobs.noop, "metrics", id="pm25", interval=300, args=["pm25"])  # no change: not recorded
    with acting_as("alice"):
        scheduler.register(jobs.noop, "metrics", id="pm25", interval=600, args=["pm25"])
    job = RedisCronJob.fetch("pm25", connection)
    job.disable()
    job.disable()  # already disabled: no change
    job.enable()
    job.delete()
    entries = read(connection, "pm25")
    assert [e.action for e in entries] == ["deleted", "enabled", "disabled", "updated", "created"]
    deleted, enabled, disabled, updated, created = entries
    assert created.actor == process_actor() and updated.actor == "alice"
    assert created.changes["interval"] == (None, "300") and created.changes["args"] == (None, '["pm25"]')
    assert updated.changes == {"interval": ("300", "600")}
    assert disabled.changes == {"enabled": ("1", "0")} and enabled.changes == {"enabled": ("0", "1")}
    assert deleted.changes["interval"] == ("600", None) and "run_count" not in deleted.changes
    assert created.revision is not None and updated.revision is not None and updated.revision > created.revision
    assert [e.at for e in entries] == sorted((e.at for e in entries), reverse=True)


def test_pause_and_resume_are_recorded(connection: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry(connection)
    monkeypatch.setenv("REDISCRON_ACTOR", "deploy-bot")
    registry.pause(reason="migrating the database")
    registry.resume()
    resumed, paused = read(connection)
    assert (paused.action, paused.actor, paused.detail, paused.job_id) == (
        "paused",
        "deploy-bot",
        "migrating the database",
        None,
    )
    assert (resumed.action, resumed.actor) == ("resumed", "deploy-bot")


def test_a_rollback_restores_a_definition_as_a_new_revision(
    connection: redis.Redis, scheduler: RedisCronScheduler
) -> None:
    scheduler.register(jobs.noop, "metrics", id="pm25", interval=300, args=["pm25"], job_timeout=60)
    first = RedisCronJob.fetch("pm25", connection).revision
    scheduler.register(jobs.noop, "metrics", id="pm25", interval=600, args=["pm10"])
    scheduler.register(jobs.noop, "other", id="pm25", cron="*/5 * * * *", args=["pm10"], meta={"team": "air"})
    job = RedisCronJob.fetch("pm25", connection)
    job.disable()
    new = job.rollback(first)
    back = RedisCronJob.fetch("pm25", connection)
    assert new == back.revision and new > first
    assert (back.interval, back.cron, back.args, back.queue_name, back.job_timeout, back.meta) == (
        300,
        None,
        ("pm25",),
        "metrics",
        60,
        None,
    )
    assert not back.enabled  # the enabled state is the job's own: not rolled back
    latest = read(connection, "pm25")[0]
    assert latest.action == "rolled_back" and latest.changes["interval"] == (None, "300")
    assert latest.changes["cron"] == ("*/5 * * * *", None)


def test_a_rollback_to_a_revision_not_in_the_log_is_refused(
    connection: redis.Redis, scheduler: RedisCronScheduler
) -> None:
    scheduler.register(jobs.noop, "q", id="a", interval=60)
    scheduler.register(jobs.noop, "q", id="b", interval=60)
    other = RedisCronJob.fetch("b", connection).revision
    job = RedisCronJob.fetch("a", connection)
    with pytest.raises(InvalidJobError, match=rf"'a': revision: {other} is not one of this job's revisions"):
        job.rollback(other)
    with pytest.raises(InvalidJobError, match=r"revision: must be a whole number"):
        job.rollback("1")  # type: ignore[arg-type]


def test_hostile_log_contents_never_stop_a_change_nor_a_reader(
    connection: redis.Redis, scheduler: RedisCronScheduler
) -> None:
    connection.xadd(k.audit(), {"junk": b"\xff\xfe", "changes": "[1, 2"})
    connection.xadd(k.audit(), {"action": "updated", "id": "x", "changes": json.dumps({"f": [1, {}]})})
    scheduler.register(jobs.noop, "q", id="x", interval=60)
    entries = read(connection)
    assert [e.action for e in entries] == ["created", "updated", "?"]
    assert entries[1].changes == {} and entries[2].changes == {}
    connection.delete(k.audit())
    connection.set(k.audit(), "not a stream")
    scheduler.register(jobs.noop, "q", id="x", interval=120)  # the change itself is made
    assert RedisCronJob.fetch("x", connection).interval == 120
    with pytest.raises(RediscronError, match="is not a stream"):
        read(connection)


def test_the_log_is_capped(connection: redis.Redis) -> None:
    pipe = connection.pipeline(transaction=False)
    for i in range(AUDIT_LENGTH + 500):
        pipe.xadd(k.audit(), {"action": "updated", "id": f"j{i}"})
    pipe.execute()
    RedisCronScheduler(connection, logging_level="WARNING").register(jobs.noop, "q", id="last", interval=60)
    assert AUDIT_LENGTH <= connection.xlen(k.audit()) < AUDIT_LENGTH + 500


def test_the_command_line(redis_url: str, connection: redis.Redis, scheduler: RedisCronScheduler) -> None:
    runner = CliRunner()

    def rqrcron(*args: str) -> Any:
        return runner.invoke(main, ["-u", redis_url, *args], catch_exceptions=False)

    scheduler.register(jobs.noop, "metrics", id="pm25", interval=300)
    first = RedisCronJob.fetch("pm25", connection).revision
    scheduler.register(jobs.noop, "metrics", id="pm25", interval=600)
    shown = rqrcron("log", "pm25")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert "updated  pm25" in lines[0] and f"by {process_actor()}" in lines[0]
    assert lines[1] == "    interval: 300 -> 600"
    assert any("created  pm25" in line for line in lines)
    back = rqrcron("rollback", "pm25", "--to", str(first))
    assert back.exit_code == 0, back.output
    assert f"definition of revision {first} restored as revision" in back.output
    assert RedisCronJob.fetch("pm25", connection).interval == 300
    as_json = json.loads(rqrcron("log", "--json", "-n", "1").output)
    assert as_json[0]["action"] == "rolled_back" and as_json[0]["changes"]["interval"] == {"old": "600", "new": "300"}
    missing = rqrcron("rollback", "pm25", "--to", "999999")
    assert missing.exit_code == 2 and "is not one of this job's revisions" in missing.output
    assert rqrcron("log", "nope").output == "nope: no changes recorded\n"


def test_a_rollback_reaches_back_across_a_delete_and_refuses_what_no_longer_passes(
    connection: redis.Redis, scheduler: RedisCronScheduler
) -> None:
    scheduler.register(jobs.noop, "q", id="dr", interval=300)
    old = RedisCronJob.fetch("dr", connection).revision
    RedisCronJob.fetch("dr", connection).delete()
    scheduler.register(jobs.noop, "other", id="dr", cron="0 * * * *")
    job = RedisCronJob.fetch("dr", connection)
    job.rollback(old)
    back = RedisCronJob.fetch("dr", connection)
    assert (back.interval, back.cron, back.queue_name) == (300, None, "q")
    now = back.revision
    assert back.rollback(now) == now  # already that definition: nothing written
    assert RedisCronJob.fetch("dr", connection).revision == now
    connection.xadd(
        k.audit(),
        {
            "id": "dr",
            "action": "updated",
            "revision": str(now + 100),
            "changes": json.dumps({"timezone": ["Mars/Olympus", "UTC"]}),
        },
    )
    connection.hset(k.job("dr"), "revision", str(now + 100))
    with pytest.raises(InvalidJobError, match=rf"revision: {now}: that definition cannot be restored .*timezone"):
        RedisCronJob.fetch("dr", connection).rollback(now)


def test_odd_audit_entries_and_actors_are_read_safely(
    connection: redis.Redis, scheduler: RedisCronScheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection.xadd(k.audit(), {"id": "deep", "action": "updated", "changes": "[" * 100_000})
    connection.xadd(k.audit(), {"id": "big", "revision": "1" * 5000})
    connection.xadd(k.audit(), {"id": "sup", "revision": "²"})
    assert [(e.job_id, e.revision, e.changes) for e in read(connection)] == [
        ("sup", None, {}),
        ("big", None, {}),
        ("deep", None, {}),
    ]
    monkeypatch.setenv("REDISCRON_ACTOR", "b\udcffad" + "x" * 500)  # bytes that are not UTF-8, and long
    scheduler.register(jobs.noop, "q", id="who", interval=60)
    actor = read(connection, "who")[0].actor
    assert actor.startswith("b\\udcffad") and len(actor) == 200
