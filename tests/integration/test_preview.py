"""`rqrcron preview` and `rqrcron show --next`: next runs in UTC and the job's zone, DST gaps and folds said."""

from __future__ import annotations

import json

import redis
from click.testing import CliRunner

from rediscron.cli import main
from rediscron.registry import Registry
from tests import jobs


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_preview_notes_a_skipped_and_a_repeated_hour() -> None:
    code, out = run("preview", "30 2 * * *", "--timezone", "Europe/Berlin", "--after", "2026-03-27", "-n", "3")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "at 02:30 every day (Europe/Berlin)"
    assert lines[3].startswith("2026-03-29T01:00:00Z  2026-03-29 03:00:00 CEST") and "skipped" in lines[3]
    code, out = run("preview", "30 2 * * *", "--timezone", "Europe/Berlin", "--after", "2026-10-25", "-n", "1")
    assert "02:30:00 CEST" in out and "repeated hour" in out


def test_preview_json_and_interval() -> None:
    code, out = run("preview", "--interval", "90", "--after", "2026-01-01", "-n", "2", "--json")
    assert code == 0 and [row["at"] for row in json.loads(out)] == [
        "2026-01-01T00:01:30+00:00",
        "2026-01-01T00:03:00+00:00",
    ]


def test_preview_refuses_bad_input_by_field() -> None:
    for args, field in (
        (["0 25 * * *"], "cron:"),
        (["0 9 * * *", "--timezone", "Mars/Olympus"], "timezone:"),
        (["--interval", "soon"], "interval:"),
        ([], "schedule:"),
        (["* * * * *", "--interval", "5"], "schedule:"),
    ):
        code, out = run("preview", *args)
        assert code == 2 and field in out, (args, out)


def test_show_next_lists_a_jobs_runs_in_its_zone(connection: redis.Redis, redis_url: str) -> None:
    Registry(connection).register(jobs.noop, "q", id="daily", cron="0 9 * * 1-5", timezone="Europe/Berlin")
    code, out = run("-u", redis_url, "show", "daily", "--next", "3")
    assert code == 0, out
    listed = out.split("next 3 runs:")[1].strip().splitlines()
    assert len(listed) == 3 and all("09:00:00 CE" in line for line in listed)
    code, out = run("-u", redis_url, "show", "daily", "--next", "2", "--json")
    assert len(json.loads(out)["next_runs"]) == 2
