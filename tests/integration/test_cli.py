"""The rqrcron command line, driven with click's CliRunner against a real Redis."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import click
import pytest
import redis
from click.testing import CliRunner, Result

from rediscron import RedisCronJob, RedisCronScheduler
from rediscron import keys as k
from rediscron.cli import ADD_OPTIONS, add, main
from rediscron.fields import FIELDS
from tests import jobs
from tests.unit.test_fields import SAMPLES, sample_job


@pytest.fixture
def rqrcron(redis_url: str, connection: redis.Redis) -> Any:
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, ["-u", redis_url, *args], catch_exceptions=False)

    return run


@pytest.fixture
def registered(connection: redis.Redis) -> RedisCronScheduler:
    s = RedisCronScheduler(connection, logging_level="WARNING")
    s.register(jobs.noop, "analytics", id="visits", cron="*/1 * * * *")
    s.register(jobs.noop, "maintenance", id="vacuum", interval=10)
    return s


def lines(result: Result) -> list[str]:
    return result.output.splitlines()


class TestInfo:
    def test_spec_layout(self, rqrcron: Any, registered: RedisCronScheduler, connection: redis.Redis) -> None:
        result = rqrcron("info")
        assert result.exit_code == 0, result.output
        out = lines(result)
        vacuum = RedisCronJob.fetch("vacuum", connection).to_dict()["next_enqueue_time"]
        visits = RedisCronJob.fetch("visits", connection).to_dict()["next_enqueue_time"]
        # The specification's columns, then how far the next run is (a due interval job: "now", or some seconds
        # ago on a machine slow enough that a second passes between the registration and the listing).
        vacuum_row = rf"vacuum  every 10s    enabled   {re.escape(vacuum)}  maintenance  (now|\d+ s ago)"
        assert re.fullmatch(vacuum_row, out[0]), out[0]
        visits_row = rf"visits  \*/1 \* \* \* \*  enabled   {visits}  analytics    (now|in \d+ s|in 1 min)"
        assert re.fullmatch(visits_row, out[1]), out[1]
        assert out[2] == "2 scheduled jobs total"
        assert out[3].startswith("Scheduler: none running")
        assert out[4] == ""
        assert out[5].startswith("Updated: 20")

    def test_by_queue(self, rqrcron: Any, registered: RedisCronScheduler, connection: redis.Redis) -> None:
        out = lines(rqrcron("info", "-R"))
        vacuum = RedisCronJob.fetch("vacuum", connection).to_dict()["next_enqueue_time"]
        assert out[:6] == [
            "analytics:",
            out[1],
            "",
            "maintenance:",
            f"  vacuum  every 10s  enabled   {vacuum}  now",
            "",
        ]
        assert out[1].startswith("  visits  */1 * * * *  enabled   20")
        assert out[6] == "2 queues, 2 scheduled jobs total"

    def test_queue_filter_and_disabled(self, rqrcron: Any, registered: RedisCronScheduler) -> None:
        RedisCronJob.fetch("vacuum", registered.connection).disable()
        out = lines(rqrcron("info", "maintenance"))
        assert out[0].split() == ["vacuum", "every", "10s", "disabled", "-", "maintenance"]
        assert out[1] == "1 scheduled job total"

    def test_json_and_lock_holder(self, rqrcron: Any, registered: RedisCronScheduler) -> None:
        registered.register_birth()
        data = json.loads(rqrcron("info", "--json").output)
        assert [row["id"] for row in data["jobs"]] == ["vacuum", "visits"]
        assert data["jobs"][0]["enabled"] is True
        assert data["scheduler"]["name"] == registered.name
        assert data["scheduler"]["fencing_epoch"] == 1
        assert "Scheduler: " + registered.name in rqrcron("info").output
        registered.register_death()

    def test_a_function_that_only_this_process_cannot_import_is_not_invalid(
        self, rqrcron: Any, registered: RedisCronScheduler, connection: redis.Redis
    ) -> None:
        # An operator's host without the app's code: the jobs are fine, the scheduler imports them.
        connection.hset(k.job("vacuum"), "func_name", "elsewhere_only.tasks.vacuum")
        row = next(line for line in lines(rqrcron("info")) if line.startswith("vacuum"))
        assert "enabled" in row and "invalid" not in row
        connection.hset(k.job("vacuum"), "last_error", "function elsewhere_only.tasks.vacuum cannot be imported")
        row = next(line for line in lines(rqrcron("info")) if line.startswith("vacuum"))
        assert "invalid" in row and "cannot be imported" in row

    def test_quarantined_and_corrupt_jobs_show_their_error(
        self, rqrcron: Any, registered: RedisCronScheduler, connection: redis.Redis
    ) -> None:
        connection.hset(k.job("broken"), mapping={"queue_name": "q", "func_name": "tests.jobs.noop", "cron": "bad"})
        connection.sadd(k.ids(), "broken")
        connection.set(k.job("str"), "x")
        connection.sadd(k.ids(), "str")
        result = rqrcron("info")
        assert result.exit_code == 0
        broken = next(line for line in lines(result) if line.startswith("broken"))
        assert "invalid" in broken and "error:" in broken and "bad" in broken
        assert any(line.startswith("str ") and "error:" in line for line in lines(result))
        assert "4 scheduled jobs total" in result.output

    def test_enable_lifts_a_quarantine_and_says_so(
        self, rqrcron: Any, registered: RedisCronScheduler, connection: redis.Redis
    ) -> None:
        connection.hset(k.job("vacuum"), "last_error", "function myapp.tasks.vacuum cannot be imported")
        connection.zadd(k.schedule(), {"vacuum": float("inf")})
        result = rqrcron("enable", "vacuum")
        assert result.exit_code == 0
        assert lines(result)[0] == "vacuum: enabled"
        assert "quarantined (function myapp.tasks.vacuum cannot be imported)" in result.output
        assert connection.zscore(k.schedule(), "vacuum") != float("inf")
        assert lines(rqrcron("enable", "vacuum")) == ["vacuum: enabled"]

    def test_empty(self, rqrcron: Any) -> None:
        assert lines(rqrcron("info"))[0] == "0 scheduled jobs total"


class TestOperate:
    def test_add_show_disable_enable_trigger_rm(self, rqrcron: Any, connection: redis.Redis) -> None:
        result = rqrcron(
            "add",
            "metric:pm25",
            "tests.jobs.record",
            "-q",
            "metrics",
            "--interval",
            "300",
            "--args",
            '["pm25"]',
            "--kwargs",
            '{"meta": 1}',
            "--timeout",
            "30",
            "--meta",
            '{"a": 1}',
        )
        assert result.exit_code == 0, result.output
        assert result.output.startswith("metric:pm25: every 300s on metrics, enabled, next run 20")
        job = RedisCronJob.fetch("metric:pm25", connection)
        assert (job.args, job.kwargs, job.job_timeout, job.meta) == (("pm25",), {"meta": 1}, 30, {"a": 1})

        shown = rqrcron("show", "metric:pm25").output
        assert "\nfunction     tests.jobs.record\n" in shown
        assert "\nschedule     every 300s\n" in shown
        assert "\njob_timeout  30\n" in shown

        assert rqrcron("disable", "metric:pm25").output == "metric:pm25: disabled\n"
        assert RedisCronJob.fetch("metric:pm25", connection).enabled is False
        # Upsert keeps the disabled state unless --disabled says otherwise.
        rqrcron("add", "metric:pm25", "tests.jobs.record", "-q", "metrics", "--interval", "600")
        assert RedisCronJob.fetch("metric:pm25", connection).enabled is False
        assert rqrcron("enable", "metric:pm25").exit_code == 0
        assert RedisCronJob.fetch("metric:pm25", connection).enabled is True

        before = connection.zscore(k.schedule(), "metric:pm25")
        triggered = rqrcron("trigger", "metric:pm25")
        assert triggered.exit_code == 0
        assert connection.llen("rq:queue:metrics") == 1
        assert "-manual-" in rqrcron("history", "metric:pm25").output
        assert connection.zscore(k.schedule(), "metric:pm25") == before

        assert rqrcron("rm", "metric:pm25").output == "metric:pm25: deleted\n"
        assert not connection.exists(k.job("metric:pm25"))

    def test_history(self, rqrcron: Any, connection: redis.Redis) -> None:
        now = [2_000_000_000.0]
        s = RedisCronScheduler(connection, clock=lambda: now[0], logging_level="WARNING")
        s.register(jobs.noop, "q", id="h", interval=60)
        s.register_birth()
        for _ in range(3):
            s.enqueue_jobs()
            now[0] += 60
        s.register_death()
        out = lines(rqrcron("history", "h", "-n", "2"))
        assert len(out) == 3
        assert "slot 2033-05-18T03:35:20Z" in out[0] and "queued" in out[0]
        assert out[2] == "last fire 2033-05-18T03:35:20Z, last status queued, 0 consecutive failure(s)"
        assert "recent runs:" in rqrcron("show", "h").output

    @pytest.mark.parametrize(
        ("args", "code", "message"),
        [
            (["add", "x", "tests.jobs.noop", "-q", "q"], 2, "exactly one of --cron and --interval"),
            (["add", "x", "tests.jobs.noop", "-q", "q", "--interval", "5", "--cron", "* * * * *"], 2, "exactly one"),
            (["add", "x", "tests.jobs.noop", "-q", "q", "--interval", "5", "--args", "[1,"], 2, "not valid JSON"),
            (["add", "x", "tests.jobs.noop", "-q", "q", "--interval", "0"], 2, "'x': interval: must be positive"),
            (["add", "x", "tests.jobs.noop", "-q", "q", "--cron", "61 * * * *"], 2, "'x': cron:"),
            (["add", "x", "tests.jobs.gone", "-q", "q", "--interval", "5"], 2, "'x': func_name:"),
            (["add", "x", "tests.jobs.noop", "-q", "q", "--interval", "5", "--args", '{"a": 1}'], 2, "'x': args:"),
            (["add", "x:jobs", "tests.jobs.noop", "-q", "q", "--interval", "5"], 2, "id: must not end with ':jobs'"),
            (["show", "nope"], 1, "'nope' does not exist"),
            (["rm", "nope"], 1, "'nope' does not exist"),
            (["enable", "nope"], 1, "'nope' does not exist"),
            (["disable", "nope"], 1, "'nope' does not exist"),
            (["trigger", "nope"], 1, "'nope' does not exist"),
            (["history", "nope"], 1, "'nope' does not exist"),
            (["info", "-i", "0"], 2, "Invalid value"),
            (["scheduler", "--lock-ttl", "2"], 2, "Invalid value"),
            (["scheduler", "--burst", "--standby"], 2, "exclude each other"),
            (["frobnicate"], 2, "No such command"),
        ],
    )
    def test_errors_are_one_line_and_change_nothing(
        self, rqrcron: Any, connection: redis.Redis, args: list[str], code: int, message: str
    ) -> None:
        result = rqrcron(*args)
        assert result.exit_code == code, result.output
        assert message in result.output
        assert "Traceback" not in result.output
        assert connection.smembers(k.ids()) == set()

    def test_unreachable_redis(self) -> None:
        result = CliRunner().invoke(main, ["-u", "redis://127.0.0.1:1/0", "info"])
        assert result.exit_code == 1
        assert result.output.startswith("Error: cannot reach Redis at redis://127.0.0.1:1/0")
        assert len(result.output.strip().splitlines()) == 1

    @pytest.mark.parametrize("url", ["localhost:6379", "http://localhost:6379", "redis+sentinel://h:x/m"])
    def test_a_malformed_url_is_a_usage_error(self, url: str) -> None:
        result = CliRunner().invoke(main, ["-u", url, "info"])
        assert result.exit_code == 2
        assert "cannot reach" not in result.output
        assert f"the Redis URL {url} " in result.output

    def test_a_connection_option_after_the_command_says_where_it_goes(self) -> None:
        result = CliRunner().invoke(main, ["scheduler", "--burst", "-P", "/tmp"])
        assert result.exit_code == 2
        assert "it goes before the command: rqrcron -P" in result.output
        other = CliRunner().invoke(main, ["info", "--bogus"]).output  # click's own words, which vary by version
        assert "--bogus" in other and "before the command" not in other

    def test_url_from_environment_and_config_module(
        self, redis_url: str, registered: RedisCronScheduler, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        runner = CliRunner()
        result = runner.invoke(main, ["info"], env={"RQ_REDIS_URL": redis_url, "REDIS_URL": "redis://127.0.0.1:1"})
        assert "2 scheduled jobs total" in result.output
        (tmp_path / "rqsettings.py").write_text(f"REDIS_URL = {redis_url!r}\n")
        result = runner.invoke(main, ["-P", str(tmp_path), "-c", "rqsettings", "info"], env={"RQ_REDIS_URL": ""})
        assert "2 scheduled jobs total" in result.output, result.output
        result = runner.invoke(main, ["-c", "no_such_settings_module", "info"])
        assert result.exit_code == 1 and "cannot import config module" in result.output

    def test_every_command_has_help_with_an_example(self) -> None:
        runner = CliRunner()
        for command in (
            "info",
            "show",
            "history",
            "add",
            "rm",
            "enable",
            "disable",
            "trigger",
            "scheduler",
            "run",
            "export",
            "apply",
        ):
            result = runner.invoke(main, [command, "--help"])
            assert result.exit_code == 0
            assert "Example" in result.output, command

    def test_burst_scheduler(self, rqrcron: Any, registered: RedisCronScheduler, connection: redis.Redis) -> None:
        result = rqrcron("scheduler", "--burst", "-l", "WARNING")
        assert result.exit_code == 0, result.output
        assert connection.llen("rq:queue:maintenance") == 1
        assert not connection.exists(k.lock())

    def test_scheduler_refused_while_locked(self, rqrcron: Any, registered: RedisCronScheduler) -> None:
        registered.register_birth()
        result = rqrcron("scheduler", "-l", "WARNING")
        assert result.exit_code == 1
        assert registered.name in result.output
        registered.register_death()


def test_unix_socket_url() -> None:
    from rediscron.testing import RedisServer

    server = RedisServer(unixsocket=True)
    server.start()
    try:
        result = CliRunner().invoke(main, ["-u", f"unix://{server.socket_path}?db=0", "info"])
        assert result.exit_code == 0, result.output
        assert "0 scheduled jobs total" in result.output
    finally:
        server.cleanup()


class TestHostile:
    """Findings of an adversarial review of the command line, kept as regressions."""

    def test_prune_never_deletes_a_job_remade_by_hand(
        self, rqrcron: Any, connection: redis.Redis, tmp_path: Any
    ) -> None:
        file = tmp_path / "s.json"
        file.write_text(json.dumps([{"id": "x", "func": "tests.jobs.noop", "queue": "q", "interval": 60}]))
        rqrcron("apply", str(file))
        rqrcron("rm", "x")
        rqrcron("add", "x", "tests.jobs.noop", "-q", "runtime", "--interval", "7")
        file.write_text("[]")
        result = rqrcron("apply", str(file), "--prune")
        assert result.exit_code == 2 and "lists no jobs" in result.output
        file.write_text(json.dumps([{"id": "y", "func": "tests.jobs.noop", "queue": "q", "interval": 60}]))
        assert "0 to delete" in rqrcron("apply", str(file), "--prune").output
        assert RedisCronJob.fetch("x", connection).queue_name == "runtime"

    @pytest.mark.parametrize("option", ["--timeout", "--result-ttl", "--ttl", "--failure-ttl"])
    def test_numbers_that_could_not_be_read_back_are_refused(
        self, rqrcron: Any, connection: redis.Redis, option: str
    ) -> None:
        result = rqrcron("add", "t", "tests.jobs.noop", "-q", "q", "--interval", "5", option, "9223372036854775807")
        assert result.exit_code == 2 and "at most" in result.output
        assert not connection.exists(k.job("t"))

    @pytest.mark.parametrize(
        ("source", "message"),
        [
            ("raise RuntimeError('boom in config')", "cannot import config module"),
            ("this is not python", "cannot import config module"),
            ("import sys\nsys.exit(3)", "cannot import config module"),
            ("REDIS_URL = 12345", "unusable Redis settings"),
            ("SENTINEL = 'garbage'", "unusable Redis settings"),
        ],
    )
    def test_broken_config_modules(self, tmp_path: Any, source: str, message: str) -> None:
        (tmp_path / "badcfg.py").write_text(source + "\n")
        result = CliRunner().invoke(main, ["-P", str(tmp_path), "-c", "badcfg", "info"], env={"RQ_REDIS_URL": ""})
        assert result.exit_code == 1, result.output
        assert message in result.output
        assert "Traceback" not in result.output

    def test_no_tracebacks_for_odd_values(self, rqrcron: Any, tmp_path: Any) -> None:
        deep = "[" * 5000 + "]" * 5000
        # Refused by the JSON parser (2) or by validation (1), depending on the Python version.
        result = rqrcron("add", "d", "tests.jobs.noop", "-q", "q", "--interval", "5", "--args", deep)
        assert result.exit_code in (1, 2) and "Traceback" not in result.output
        assert rqrcron("info", "-i", "nan").exit_code == 2
        assert rqrcron("info", "-i", "inf").exit_code == 2
        assert rqrcron("scheduler", "--max-sleep-interval", "inf").exit_code == 2
        assert rqrcron("scheduler", "--name", "two\nlines").exit_code == 2
        result = rqrcron("export", "-o", "/nonexistent/dir/f.json")
        assert result.exit_code == 1 and "cannot write" in result.output
        binary = tmp_path / "b.json"
        binary.write_bytes(b"\xff\xfe\x00garbage")
        result = rqrcron("apply", str(binary))
        assert result.exit_code == 2 and "not UTF-8" in result.output

    def test_a_job_whose_id_is_not_text_can_be_removed(self, connection: redis.Redis, redis_url: str) -> None:
        connection.hset(b"rq:cron_job:\xff\xfebin", "queue_name", "q")
        connection.sadd(k.ids(), b"\xff\xfebin")
        listing = CliRunner().invoke(main, ["-u", redis_url, "info"]).output
        assert "not UTF-8" in listing
        stray = b"\xff\xfebin".decode("utf-8", "surrogateescape")  # how Python hands a shell's bytes over
        result = CliRunner().invoke(main, ["-u", redis_url, "rm", stray])
        assert result.exit_code == 0, result.output
        assert not connection.exists(b"rq:cron_job:\xff\xfebin")
        assert connection.smembers(k.ids()) == set()

    def test_passwords_are_not_printed(self) -> None:
        result = CliRunner().invoke(main, ["-u", "redis://admin:s3cret@127.0.0.1:1/0", "info"])
        assert result.exit_code == 1
        assert "s3cret" not in result.output and "admin:***@" in result.output

    def test_export_warns_about_unreadable_records(
        self, rqrcron: Any, registered: RedisCronScheduler, connection: redis.Redis
    ) -> None:
        connection.hset(k.job("broken"), mapping={"queue_name": "q", "func_name": "tests.jobs.noop", "cron": "x"})
        connection.sadd(k.ids(), "broken")
        result = rqrcron("export")  # the warning goes to stderr, which CliRunner shows with stdout
        assert result.exit_code == 0
        assert "1 unreadable record(s)" in result.output and "broken" in result.output


class TestSecrets:
    @pytest.mark.parametrize(
        "url",
        [
            "redis://:p@ss/w0rd@127.0.0.1:1/0",  # unencoded '/' in the password: refused, never parsed
            "redis://:s3cr3t@127.0.0.1:1/0",
            "redis://127.0.0.1:1/0?password=s3cr3t",
            "redis+sentinel://:s3cr3t@127.0.0.1:1/m?sentinel_password=s3cr3t",
        ],
    )
    def test_no_message_shows_a_password(self, url: str) -> None:
        result = CliRunner().invoke(main, ["-u", url, "info"])
        assert result.exit_code in (1, 2), result.output
        assert "s3cr3t" not in result.output and "w0rd" not in result.output and "p@ss" not in result.output
        assert "***" in result.output


class TestShowTimes:
    def test_next_run_in_the_jobs_zone_and_relative(self, rqrcron: Any, connection: redis.Redis) -> None:
        RedisCronScheduler(connection, logging_level="WARNING").register(
            jobs.noop, "q", id="berlin", cron="0 9 * * *", timezone="Europe/Berlin"
        )
        row = next(line for line in lines(rqrcron("show", "berlin")) if line.startswith("next run"))
        assert re.search(r"Z \(20\d\d-\d\d-\d\d 09:00:00 CES?T in Europe/Berlin, in \d+ (h|min|s)\)$", row), row

    def test_a_corrupt_record_shows_its_raw_fields_and_the_error(self, rqrcron: Any, connection: redis.Redis) -> None:
        RedisCronScheduler(connection, logging_level="WARNING").register(jobs.noop, "q", id="bad", interval=60)
        connection.hset(k.job("bad"), mapping={"interval": "soon", "note": "\x1b[31mred"})
        result = rqrcron("show", "bad")
        assert result.exit_code == 1
        assert "cannot be read: field interval='soon' is invalid" in result.output
        assert "  interval" in result.output and "soon" in result.output and "\\x1b[31mred" in result.output
        assert "\x1b" not in result.output
        data = json.loads(rqrcron("show", "bad", "--json").output)
        assert data["raw"]["interval"] == "soon" and "interval" in data["error"]


class TestText:
    def test_wide_ids_line_up_and_export_keeps_characters(self, rqrcron: Any, connection: redis.Redis) -> None:
        s = RedisCronScheduler(connection, logging_level="WARNING")
        for job_id in ("日報", "report", "📈 metrics"):
            s.register(jobs.noop, "q", id=job_id, interval=60)
        rows = [line for line in lines(rqrcron("info")) if "every 60s" in line]
        from rich.cells import cell_len

        starts = {cell_len(row[: row.index("every")]) for row in rows}
        assert len(rows) == 3 and len(starts) == 1, rows  # the schedule column starts at one place
        exported = rqrcron("export").output
        assert '"日報"' in exported and "📈 metrics" in exported and "\\\\u" not in exported


def test_a_queue_filter_keeps_the_jobs_that_need_attention(rqrcron: Any, connection: redis.Redis) -> None:
    RedisCronScheduler(connection, logging_level="WARNING").register(jobs.noop, "maintenance", id="v", interval=60)
    connection.hset(k.job("v"), "kwargs", "{not json")
    row = next(line for line in lines(rqrcron("info", "maintenance")) if line.startswith("v "))
    assert "invalid" in row and "kwargs" in row
    assert "maintenance:" in rqrcron("info", "-R").output


def test_rqrcron_add_sets_every_field(redis_url: str) -> None:
    """Each option of ``rqrcron add`` reaches its field (the sample of every field, given on the command line)."""
    flags = {param.name: param for param in add.params if isinstance(param, click.Option)}
    line = ["-u", redis_url, "add", SAMPLES["id"], SAMPLES["func_name"]]
    for name in ADD_OPTIONS:
        value, option = SAMPLES[name], flags[name]
        if value is None:
            continue
        if option.is_flag:
            line.append(option.opts[0] if value is True or value == option.flag_value else option.secondary_opts[0])
        elif option.multiple:  # --label NAME=VALUE, once per label
            line += [part for label in value.items() for part in (option.opts[0], "=".join(label))]
        elif isinstance(value, (list, tuple, dict)):
            line += [option.opts[0], json.dumps(value)]
        else:
            line += [option.opts[0], value.isoformat() if isinstance(value, datetime) else str(value)]
    result = CliRunner().invoke(main, line)
    assert result.exit_code == 0, result.output
    stored = RedisCronJob.fetch(SAMPLES["id"], redis.Redis.from_url(redis_url))
    expected = sample_job()
    for name in FIELDS:
        assert getattr(stored, name) == getattr(expected, name), name
