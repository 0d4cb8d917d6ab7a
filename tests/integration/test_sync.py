"""Schedules as code: export, apply (JSON, YAML, rq cron configs), --prune and --dry-run."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from rq import Retry
from rq.serializers import JSONSerializer

from rediscron import RedisCronJob, RedisCronScheduler
from rediscron import keys as k
from rediscron.cli import main
from rediscron.sync import entry_of
from tests import jobs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def rqrcron(redis_url: str) -> Any:
    runner = CliRunner()
    return lambda *args: runner.invoke(main, ["-u", redis_url, *args], catch_exceptions=False)


def populate(connection: redis.Redis) -> None:
    s = RedisCronScheduler(connection, logging_level="WARNING")
    s.register(
        jobs.record,
        "metrics",
        id="metric:pm25",
        args=("pm25", 2.5, None, [1, {"a": True}]),
        kwargs={"meta": "x"},
        interval=300,
        job_timeout=60,
        result_ttl=0,
        ttl=900,
        failure_ttl=3600,
        meta={"team": "air"},
    )
    s.register(jobs.noop, "maintenance", id="vacuum", cron="*/5 * * * *", enabled=False)
    s.register(jobs.noop, "maintenance", id="ünïcode:ok", cron="@daily", result_ttl=None)
    s.register(
        jobs.noop,
        "reports",
        id="options",
        cron="0 9 * * 1-5 30",
        timezone="Europe/Berlin",
        misfire_grace_time=600,
        catchup="all",
        overlap="skip",
        jitter=30,
        start_time=datetime(2030, 1, 1, tzinfo=timezone.utc),
        end_time=datetime(2031, 1, 1, tzinfo=timezone.utc),
        max_runs=100,
        description="weekday report",
        retry=Retry(max=2, interval=[5, 50]),
        at_front=True,
        on_failure=jobs.noop,
        queue_class="tests.custom_rq.AuditQueue",
        serializer=JSONSerializer,
    )


def definitions(connection: redis.Redis) -> list[dict[str, Any]]:
    return [entry_of(job) for job in RedisCronScheduler(connection, logging_level="WARNING").get_all_jobs()]


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_export_then_apply_to_an_empty_redis_reproduces_the_registry(
    rqrcron: Any, connection: redis.Redis, tmp_path: Path, fmt: str
) -> None:
    populate(connection)
    before = definitions(connection)
    target = tmp_path / f"schedules.{fmt}"
    result = rqrcron("export", "--format", fmt, "-o", str(target))
    assert result.exit_code == 0, result.output
    connection.flushall()
    result = rqrcron("apply", str(target))
    assert result.exit_code == 0, result.output
    assert "4 to create, 0 to update, 0 to delete, 0 unchanged" in result.output
    assert definitions(connection) == before
    # Applying it again changes nothing.
    assert "0 to create, 0 to update, 0 to delete, 4 unchanged" in rqrcron("apply", str(target)).output


def test_export_to_stdout_is_json(rqrcron: Any, connection: redis.Redis) -> None:
    populate(connection)
    data = json.loads(rqrcron("export").output)
    assert data["version"] == 1
    assert [j["id"] for j in data["jobs"]] == ["metric:pm25", "options", "vacuum", "ünïcode:ok"]
    assert data["jobs"][2] == {
        "id": "vacuum",
        "func": "tests.jobs.noop",
        "queue": "maintenance",
        "cron": "*/5 * * * *",
        "enabled": False,
    }
    assert data["jobs"][1]["start_time"] == "2030-01-01T00:00:00+00:00"
    assert data["jobs"][1]["retry"] == {"max": 2, "interval": [5, 50]}


def test_dry_run_prints_the_diff_and_changes_nothing(rqrcron: Any, connection: redis.Redis, tmp_path: Path) -> None:
    populate(connection)
    file = tmp_path / "s.json"
    file.write_text(
        json.dumps(
            {
                "jobs": [
                    {"id": "vacuum", "func": "tests.jobs.noop", "queue": "maintenance", "cron": "*/10 * * * *"},
                    {"id": "new", "func": "tests.jobs.noop", "queue": "q", "interval": 30},
                ]
            }
        )
    )
    snapshot = {key: connection.dump(key) for key in connection.keys("rq:cron*")}
    out = rqrcron("apply", str(file), "--dry-run").output
    assert "+ new: create (every 30s on q)" in out
    assert '~ vacuum: cron "*/5 * * * *" -> "*/10 * * * *"' in out
    assert "(dry run: nothing changed)" in out
    assert {key: connection.dump(key) for key in connection.keys("rq:cron*")} == snapshot
    rqrcron("apply", str(file))
    assert RedisCronJob.fetch("vacuum", connection).cron == "*/10 * * * *"
    assert RedisCronJob.fetch("vacuum", connection).enabled is False  # the file did not say: state kept
    assert RedisCronJob.exists("metric:pm25", connection)  # not in the file, no --prune: untouched


def test_prune_deletes_only_what_apply_created(rqrcron: Any, connection: redis.Redis, tmp_path: Path) -> None:
    RedisCronScheduler(connection, logging_level="WARNING").register(jobs.noop, "q", id="runtime", interval=60)
    file = tmp_path / "s.json"
    file.write_text(
        json.dumps(
            [
                {"id": "a", "func": "tests.jobs.noop", "queue": "q", "interval": 60},
                {"id": "b", "func": "tests.jobs.noop", "queue": "q", "interval": 60},
            ]
        )
    )
    rqrcron("apply", str(file))
    file.write_text(json.dumps([{"id": "a", "func": "tests.jobs.noop", "queue": "q", "interval": 60}]))
    out = rqrcron("apply", str(file), "--prune").output
    assert "- b: delete" in out
    assert not RedisCronJob.exists("b", connection)
    assert RedisCronJob.exists("a", connection)
    assert RedisCronJob.exists("runtime", connection)
    assert connection.smembers(k.applied()) == {b"a"}


def test_a_job_edited_by_hand_is_no_longer_the_files(rqrcron: Any, connection: redis.Redis, tmp_path: Path) -> None:
    file = tmp_path / "s.json"
    file.write_text(
        json.dumps(
            [
                {"id": "a", "func": "tests.jobs.noop", "queue": "q", "interval": 60},
                {"id": "b", "func": "tests.jobs.noop", "queue": "q", "interval": 60},
            ]
        )
    )
    rqrcron("apply", str(file))
    assert connection.smembers(k.applied()) == {b"a", b"b"}
    # An edit from code (or `rqrcron add`): its definition no longer comes from the file.
    RedisCronScheduler(connection, logging_level="WARNING").register(jobs.noop, "q", id="b", interval=30)
    assert connection.smembers(k.applied()) == {b"a"}
    RedisCronJob.fetch("a", connection).disable()  # not an edit of the definition: still the file's
    assert connection.smembers(k.applied()) == {b"a"}
    file.write_text("[]")
    dry = rqrcron("apply", str(file), "--prune", "--dry-run")
    real = rqrcron("apply", str(file), "--prune")
    assert dry.exit_code == real.exit_code == 2 and dry.output == real.output  # the same refusal, dry or not
    file.write_text(json.dumps([{"id": "c", "func": "tests.jobs.noop", "queue": "q", "interval": 60}]))
    dry = rqrcron("apply", str(file), "--prune", "--dry-run")
    assert "- a: delete" in dry.output and "- b" not in dry.output
    assert rqrcron("apply", str(file), "--prune").output.splitlines() == [
        line for line in dry.output.splitlines() if line != "(dry run: nothing changed)"
    ]
    assert not RedisCronJob.exists("a", connection) and RedisCronJob.exists("b", connection)


def test_apply_an_rq_cron_config(rqrcron: Any, connection: redis.Redis) -> None:
    result = rqrcron("apply", str(FIXTURES / "rq_cron_config.py"))
    assert result.exit_code == 0, result.output
    noop = RedisCronJob.fetch("tests.jobs.noop", connection)
    assert (noop.queue_name, noop.interval) == ("default", 60)
    report = RedisCronJob.fetch("tests.jobs.record", connection)
    assert (report.cron, report.args, report.kwargs, report.job_timeout) == (
        "0 6 * * *",
        ("daily",),
        {"fmt": "pdf"},
        300,
    )
    assert "2 unchanged" in rqrcron("apply", "tests.fixtures.rq_cron_config").output  # as a module path too


RQ3 = int(metadata.version("rq").split(".")[0]) >= 3


@pytest.fixture
def host_tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    def set_tz(value: str) -> None:
        monkeypatch.setenv("TZ", value)
        time.tzset()

    yield set_tz
    monkeypatch.undo()
    time.tzset()


def test_an_rq_cron_config_keeps_its_hours_on_a_host_not_on_utc(
    rqrcron: Any, connection: redis.Redis, host_tz: Callable[[str], None]
) -> None:
    host_tz("Europe/Berlin")
    result = rqrcron("apply", str(FIXTURES / "rq_cron_config.py"))
    assert result.exit_code == 0, result.output
    report = RedisCronJob.fetch("tests.jobs.record", connection)
    # rq 3 reads cron in the host's local time, rq 2 in UTC: the job fires when rq fired it.
    assert report.timezone == ("Europe/Berlin" if RQ3 else "UTC")
    assert RedisCronJob.fetch("tests.jobs.noop", connection).timezone == "UTC"  # interval: no zone
    host_tz(":UTC")
    rqrcron("apply", str(FIXTURES / "rq_cron_config.py"))
    assert RedisCronJob.fetch("tests.jobs.record", connection).timezone == "UTC"


def test_an_explicit_zone_for_an_rq_cron_config_wins(
    rqrcron: Any, connection: redis.Redis, host_tz: Callable[[str], None]
) -> None:
    host_tz("Europe/Berlin")
    result = rqrcron("apply", str(FIXTURES / "rq_cron_config.py"), "--tz", "America/New_York")
    assert result.exit_code == 0, result.output
    assert RedisCronJob.fetch("tests.jobs.record", connection).timezone == "America/New_York"
    bad = rqrcron("apply", str(FIXTURES / "rq_cron_config.py"), "--tz", "Mars/Base")
    assert bad.exit_code == 2 and "--timezone" in bad.output and "Mars/Base" in bad.output


@pytest.mark.skipif(not RQ3, reason="rq 2 reads cron in UTC whatever the host's zone")
def test_a_host_zone_without_an_iana_name_is_refused(
    rqrcron: Any, connection: redis.Redis, host_tz: Callable[[str], None]
) -> None:
    host_tz("JST-9")
    result = rqrcron("apply", str(FIXTURES / "rq_cron_config.py"))
    assert result.exit_code == 2
    assert "JST-9" in result.output and "--timezone" in result.output
    assert not RedisCronJob.exists("tests.jobs.record", connection)  # nothing half-applied


def test_timezone_is_only_for_rq_cron_configs(rqrcron: Any, tmp_path: Path) -> None:
    file = tmp_path / "jobs.json"
    file.write_text(json.dumps([{"id": "a", "func": "tests.jobs.noop", "queue": "q", "cron": "0 6 * * *"}]))
    result = rqrcron("apply", str(file), "--tz", "Europe/Berlin")
    assert result.exit_code == 2 and "rq cron configs" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"version": 9, "jobs": []}', "unsupported version 9"),
        (
            '{"jobs": [{"id": "x", "func": "tests.jobs.noop", "queue": "q", "interval": 5, "colour": 1}]}',
            "unknown field(s) ['colour']",
        ),
        (
            '[{"id": "x", "func": "tests.jobs.noop", "queue": "q", "interval": 5}, '
            '{"id": "y", "func": "tests.jobs.noop", "queue": "q", "cron": "bad"}]',
            "'y': cron:",
        ),
        (
            '[{"id": "x", "func": "tests.jobs.noop", "queue": "q", "interval": 5}, '
            '{"id": "x", "func": "tests.jobs.noop", "queue": "q", "interval": 6}]',
            "appears twice",
        ),
        ('[{"id": "x", "queue": "q", "interval": 5}]', "'x': func: is missing"),
        ('"just a string"', "expected a list of jobs"),
    ],
)
def test_a_bad_file_changes_nothing(
    rqrcron: Any, connection: redis.Redis, tmp_path: Path, content: str, message: str
) -> None:
    file = tmp_path / "s.json"
    file.write_text(content)
    result = rqrcron("apply", str(file))
    assert result.exit_code == 2
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    assert connection.keys("rq:cron*") == []


def test_missing_file(rqrcron: Any) -> None:
    result = rqrcron("apply", "/nonexistent/schedules.json")
    assert result.exit_code == 2 and "cannot read /nonexistent/schedules.json" in result.output
    result = rqrcron("apply", "no_such_config_module")
    assert result.exit_code == 2 and "cannot load rq cron config" in result.output


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import sys\nsys.exit(3)\n", "it called sys.exit(3) while being imported"),
        ("raise RuntimeError('boom in config')\n", "boom in config"),
    ],
)
def test_a_config_that_exits_or_raises_gives_one_clear_line(
    rqrcron: Any, tmp_path: Path, source: str, message: str
) -> None:
    config = tmp_path / "bad_config.py"
    config.write_text(source)
    result = rqrcron("apply", str(config))
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_taking_over_a_job_made_otherwise_is_said(rqrcron: Any, connection: redis.Redis, tmp_path: Path) -> None:
    RedisCronScheduler(connection, logging_level="WARNING").register(jobs.noop, "q", id="handmade", interval=60)
    exported = tmp_path / "e.json"
    exported.write_text(rqrcron("export").output)
    dry = rqrcron("apply", str(exported), "--dry-run").output
    assert "= handmade: unchanged, made otherwise; from now on defined by this file" in dry
    assert "1 unchanged (1 taken over)" in dry
    assert not connection.smembers(k.applied())  # a dry run takes nothing over
    assert "taken over" in rqrcron("apply", str(exported)).output
    assert connection.smembers(k.applied()) == {b"handmade"}
    assert "taken over" not in rqrcron("apply", str(exported)).output  # the second time it is the file's


def test_no_import_check_restores_an_export_naming_code_that_no_longer_imports(
    rqrcron: Any, connection: redis.Redis, tmp_path: Path
) -> None:
    file = tmp_path / "e.json"
    file.write_text(json.dumps([{"id": "old", "func": "tests.jobs.renamed_since", "queue": "q", "interval": 60}]))
    refused = rqrcron("apply", str(file))
    assert refused.exit_code == 2 and "has no attribute 'renamed_since'" in refused.output
    restored = rqrcron("apply", str(file), "--no-import-check")
    assert restored.exit_code == 0, restored.output
    assert RedisCronJob.fetch("old", connection).func_name == "tests.jobs.renamed_since"


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_the_streamed_export_is_the_whole_document(connection: redis.Redis, fmt: str) -> None:
    from rediscron import sync

    populate(connection)
    connection.hset("rq:cron_job:broken", mapping={"id": "broken", "interval": "x"})
    connection.sadd("rq:cron_jobs:ids", "broken")
    for size in (1, 2, 1000):
        unreadable: dict[str, str] = {}
        pieces = list(sync.dump_stream(connection, fmt, unreadable, page_size=size))
        assert "".join(pieces) == sync.dump(sync.export(connection), fmt)
        assert set(unreadable) == {"broken"}
