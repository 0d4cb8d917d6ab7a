"""design.md §4: what Redis holds is data, never code, for the scheduler and for every viewer.

The hostile material is real: a module that records being imported (tests/tripwire.py), and
an RQ job hash holding a pickle that, if loaded, would import it and call it.
"""

from __future__ import annotations

import json
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result
from rq.job import Job

from rediscron import RedisCronJob, RedisCronScheduler
from rediscron import keys as k
from rediscron.cli import main
from rediscron.errors import ImportNotAllowed
from rediscron.imports import ImportAllowlist
from rediscron.job import rq_job_id
from rediscron.scheduler import QUARANTINE_RETRY_INTERVAL
from tests import jobs
from tests.integration.test_policies import T0, Clock

PAYLOAD = b"ctests.tripwire\nfire\n(S'unpickled'\ntR."


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The file tests/tripwire.py writes to when it is imported or called; it must stay absent."""
    path = tmp_path / "tripwire.log"
    monkeypatch.setenv("REDISCRON_TRIPWIRE", str(path))
    sys.modules.pop("tests.tripwire", None)
    yield path
    sys.modules.pop("tests.tripwire", None)


def assert_untouched(marker: Path) -> None:
    assert "tests.tripwire" not in sys.modules
    assert not marker.exists(), marker.read_text()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def scheduler(connection: redis.Redis, clock: Clock) -> Iterator[RedisCronScheduler]:
    s = RedisCronScheduler(connection, name="trust", clock=clock, logging_level="CRITICAL")
    s.register_birth()
    yield s
    s.register_death()


def plant(connection: redis.Redis, job_id: str, **fields: str) -> None:
    """A job as anyone with write access to Redis could leave it (valid, but naming other code)."""
    job = RedisCronJob(id=job_id, queue_name="q", func=jobs.noop, interval=60, connection=connection)
    job.clock = lambda: T0 + 0.25
    job.save()
    if fields:
        connection.hset(k.job(job_id), mapping=fields)


def rq_hash(connection: redis.Redis, rq_id: str) -> dict[bytes, bytes]:
    return {key: value for key, value in connection.hgetall(k.rq_job(rq_id)).items()}  # type: ignore[union-attr]


class TestTheScheduler:
    def test_enqueues_the_function_by_path_without_importing_it(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, marker: Path
    ) -> None:
        plant(
            connection,
            "planted",
            func_name="tests.tripwire.fire",
            on_success="tests.tripwire.fire",
            on_failure='{"func":"tests.tripwire.fire","timeout":5}',
        )
        assert [j.id for j in scheduler.enqueue_jobs()] == ["planted"]
        assert_untouched(marker)
        fields = rq_hash(connection, rq_job_id("planted", T0))
        assert fields[b"success_callback_name"] == b"tests.tripwire.fire"
        assert fields[b"failure_callback_name"] == b"tests.tripwire.fire"
        # What the worker reads back: the same dotted path, for it to import.
        assert Job.fetch(rq_job_id("planted", T0), connection=connection).func_name == "tests.tripwire.fire"

    def test_a_module_that_exits_on_import_is_never_imported(
        self, scheduler: RedisCronScheduler, connection: redis.Redis
    ) -> None:
        plant(connection, "exits", func_name="tests.exiting_module.never")
        assert [j.id for j in scheduler.enqueue_jobs()] == ["exits"]  # and this process is still here
        assert "tests.exiting_module" not in sys.modules

    @pytest.mark.parametrize("option", ["job_class", "queue_class", "serializer"])
    def test_classes_outside_the_allowlist_are_quarantined_not_imported(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, marker: Path, option: str
    ) -> None:
        plant(connection, "good")
        plant(connection, "planted", **{option: "tests.tripwire.Evil"})
        assert [j.id for j in scheduler.enqueue_jobs()] == ["good"]
        assert_untouched(marker)
        error = connection.hget(k.job("planted"), "last_error").decode()  # type: ignore[union-attr]
        assert f"{option} tests.tripwire.Evil is outside" in error
        assert "--allow-import tests.tripwire" in error
        assert connection.zscore(k.schedule(), "planted") == float("inf")

    def test_a_scheduler_allowed_to_import_a_class_lifts_its_quarantine(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock
    ) -> None:
        plant(connection, "audited", job_class="tests.custom_rq.AuditJob")
        assert scheduler.enqueue_jobs() == []
        scheduler.register_death()
        wider = RedisCronScheduler(
            connection, name="wider", clock=clock, logging_level="CRITICAL", allow_import=["rq", "tests.custom_rq"]
        )
        wider.register_birth()
        wider.run_once()  # a new leader re-reads the quarantined at once, then fires what is due
        assert connection.hget(k.job("audited"), "last_error") is None
        assert connection.lrange("rq:queue:q", 0, -1) == [rq_job_id("audited", T0).encode()]
        assert connection.hget(k.rq_job(rq_job_id("audited", T0)), "status") == b"queued"
        wider.register_death()
        scheduler.register_birth()

    def test_the_allowlist_matches_whole_dotted_parts(self) -> None:
        allow = ImportAllowlist(["myapp.jobs"])
        assert allow.allows("myapp.jobs.AuditJob") and allow.allows("myapp.jobs")
        assert not allow.allows("myapp.jobsx.Evil") and not allow.allows("myapp.Evil")
        with pytest.raises(ImportNotAllowed, match="outside"):
            allow.load("os.system", "x", "job_class")
        with pytest.raises(ValueError, match="dotted"):
            ImportAllowlist(["my app"])

    def test_the_error_is_cut_and_the_record_kept(
        self, scheduler: RedisCronScheduler, connection: redis.Redis, clock: Clock
    ) -> None:
        plant(connection, "long", cron="x" * 900, interval="")
        scheduler.enqueue_jobs()
        error = connection.hget(k.job("long"), "last_error").decode()  # type: ignore[union-attr]
        assert len(error) <= 300 and error.endswith("…")
        assert connection.hget(k.job("long"), "cron") == b"x" * 900  # nothing of the record is lost
        connection.hset(k.job("long"), mapping={"cron": "", "interval": "60"})
        clock.now += QUARANTINE_RETRY_INTERVAL
        assert scheduler.retry_quarantined() == ["long"]


@pytest.fixture
def rqrcron(redis_url: str) -> Any:
    def run(*args: str, user: str = "") -> Result:
        url = redis_url.replace("redis://", f"redis://{user}@") if user else redis_url
        return CliRunner().invoke(main, ["-u", url, *args])

    return run


@pytest.fixture
def hostile(connection: redis.Redis, clock: Clock) -> None:
    """A job naming tripwire code everywhere, whose history holds an RQ job of pickled payloads."""
    plant(
        connection,
        "hostile",
        func_name="tests.tripwire.fire",
        on_success="tests.tripwire.fire",
        job_class="tests.tripwire.Evil",
        description="\x1b[2Jcleared\x1b]0;owned\x07",
        last_error="scheduler x: \x1b[31mred\u202eevil",
    )
    rq_id = rq_job_id("hostile", T0)
    connection.hset(
        k.rq_job(rq_id),
        mapping={
            "status": "finished",
            "meta": PAYLOAD,
            "data": zlib.compress(PAYLOAD),
            "result": PAYLOAD,
            "exc_info": zlib.compress(PAYLOAD),
            "created_at": "2030-03-17T17:20:00.000000Z",
            "ended_at": "2030-03-17T17:20:01.000000Z",
        },
    )
    connection.zadd(k.history("hostile"), {rq_id: T0})


class TestViewers:
    @pytest.mark.parametrize(
        "command",
        [
            ["info"],
            ["info", "--json"],
            ["info", "-R"],
            ["show", "hostile"],
            ["show", "hostile", "--json"],
            ["history", "hostile"],
            ["export"],
            ["status"],
        ],
    )
    def test_import_and_unpickle_nothing_and_escape_control_characters(
        self, rqrcron: Any, hostile: None, marker: Path, command: list[str]
    ) -> None:
        result = rqrcron(*command)
        assert result.exit_code in (0, 1), result.output  # status: 1 when no scheduler runs
        assert_untouched(marker)
        assert "\x1b" not in result.output and "\u202e" not in result.output and "\x07" not in result.output
        if command[0] in ("info", "show") and "--json" not in command:
            assert "\\x1b" in result.output

    def test_history_reads_status_and_times_field_by_field(
        self, connection: redis.Redis, hostile: None, marker: Path
    ) -> None:
        job = RedisCronJob.fetch("hostile", connection)
        [entry] = job.get_history()
        assert (entry.status, entry.slot) == ("finished", T0)
        assert entry.ended_at is not None and entry.ended_at.year == 2030
        assert job.get_stats().last_status == "finished"
        assert_untouched(marker)

    def test_listings_never_write(self, rqrcron: Any, connection: redis.Redis, hostile: None) -> None:
        connection.sadd(k.ids(), "dangling")  # its hash is gone: only the scheduler prunes it
        connection.zadd(k.schedule(), {"dangling": T0})
        connection.execute_command(
            "ACL", "SETUSER", "viewer", "on", ">pw", "~*", "&*", "-@all", "+@read", "+@connection", "+time"
        )
        try:
            for command in (
                ["info"],
                ["info", "--json"],
                ["show", "hostile"],
                ["history", "hostile"],
                ["export"],
                ["status"],
            ):
                result = rqrcron(*command, user="viewer:pw")
                assert result.exit_code in (0, 1) and "NOPERM" not in result.output, (command, result.output)
                assert "Traceback" not in result.output
            assert connection.sismember(k.ids(), "dangling")
            denied = rqrcron("disable", "hostile", user="viewer:pw")
            assert denied.exit_code == 1 and "ACL" in denied.output and "Traceback" not in denied.output
        finally:
            connection.execute_command("ACL", "DELUSER", "viewer")


class TestCommandLine:
    def test_add_checks_a_function_only_where_its_package_imports(self, rqrcron: Any, connection: redis.Redis) -> None:
        result = rqrcron("add", "elsewhere", "billing_app.tasks.invoice", "-q", "q", "--interval", "60")
        assert result.exit_code == 0, result.output
        assert "not checked here" in result.output and "billing_app.tasks.invoice" in result.output
        assert RedisCronJob.fetch("elsewhere", connection).func_name == "billing_app.tasks.invoice"
        typo = rqrcron("add", "typo", "tests.jbos.noop", "-q", "q", "--interval", "60")
        assert typo.exit_code == 2 and "no module 'tests.jbos'" in typo.output
        module = rqrcron("add", "module", "tests.jobs", "-q", "q", "--interval", "60")
        assert module.exit_code == 2 and "is a module" in module.output
        missing = rqrcron("add", "missing", "tests.jobs.nope", "-q", "q", "--interval", "60")
        assert missing.exit_code == 2 and "has no attribute 'nope'" in missing.output
        assert not RedisCronJob.exists("typo", connection) and not RedisCronJob.exists("module", connection)

    def test_long_arguments_from_a_file_or_standard_input(
        self, rqrcron: Any, connection: redis.Redis, tmp_path: Path, redis_url: str
    ) -> None:
        params = {"rows": list(range(3000))}
        (tmp_path / "kwargs.json").write_text(json.dumps(params))
        result = rqrcron(
            "add", "a", "tests.jobs.noop", "-q", "q", "--interval", "60", "--kwargs-file", str(tmp_path / "kwargs.json")
        )
        assert result.exit_code == 0, result.output
        assert RedisCronJob.fetch("a", connection).kwargs == params
        result = rqrcron(
            "add", "b", "tests.jobs.noop", "-q", "q", "--interval", "60", "--args", f"@{tmp_path / 'kwargs.json'}"
        )
        assert result.exit_code == 2 and "args" in result.output  # a JSON object is no argument list
        result = CliRunner().invoke(
            main,
            ["-u", redis_url, "add", "c", "tests.jobs.noop", "-q", "q", "--interval", "60", "--args", "-"],
            input="[1, 2, 3]",
        )
        assert result.exit_code == 0, result.output
        assert RedisCronJob.fetch("c", connection).args == (1, 2, 3)
        big = {"blob": "x" * 70_000}
        (tmp_path / "big.json").write_text(json.dumps(big))
        result = rqrcron(
            "add", "d", "tests.jobs.noop", "-q", "q", "--interval", "60", "--kwargs-file", str(tmp_path / "big.json")
        )
        assert result.exit_code == 2 and "65,536" in result.output and "'d'" in result.output
        assert not RedisCronJob.exists("d", connection)

    def test_ids_with_spaces_and_rm_of_a_history_key(self, rqrcron: Any, connection: redis.Redis, clock: Clock) -> None:
        result = rqrcron("add", "Monthly report: EMEA", "tests.jobs.noop", "-q", "q", "--interval", "60")
        assert result.exit_code == 0, result.output
        assert "Monthly report: EMEA" in rqrcron("info").output
        scheduler = RedisCronScheduler(connection, name="s", clock=clock, logging_level="CRITICAL")
        scheduler.register(jobs.noop, "q", id="foo", interval=60)
        scheduler.register_birth()
        scheduler.enqueue_jobs()
        scheduler.register_death()
        assert connection.zcard(k.history("foo")) == 1
        # "foo:jobs" names foo's history key; rm of it must not delete that history.
        result = rqrcron("rm", "foo:jobs")
        assert result.exit_code == 1 and "does not exist" in result.output
        connection.sadd(k.ids(), "foo:jobs")  # a stray entry left by hand
        result = rqrcron("rm", "foo:jobs")
        assert result.exit_code == 0 and "stray index entries" in result.output
        assert connection.zcard(k.history("foo")) == 1
        assert not connection.sismember(k.ids(), "foo:jobs")
        assert rqrcron("rm", "Monthly report: EMEA").exit_code == 0

    def test_enable_quarantined_lifts_every_quarantine_at_once(
        self, rqrcron: Any, connection: redis.Redis, scheduler: RedisCronScheduler
    ) -> None:
        for job_id in ("a", "b", "c"):
            plant(connection, job_id, cron="bad", interval="")
        plant(connection, "d")
        scheduler.enqueue_jobs()
        assert connection.zcount(k.schedule(), "+inf", "+inf") == 3
        for job_id in ("a", "b"):
            connection.hset(k.job(job_id), mapping={"cron": "*/5 * * * *"})
        result = rqrcron("enable", "--quarantined")
        assert result.exit_code == 1  # c still cannot be read
        assert "a: enabled" in result.output and "b: enabled" in result.output
        assert "c: not enabled" in result.output and "2 quarantined job(s) enabled, 1 could not be" in result.output
        assert connection.zcount(k.schedule(), "+inf", "+inf") == 1
        assert rqrcron("enable").exit_code == 2
        assert rqrcron("enable", "a", "--quarantined").exit_code == 2
