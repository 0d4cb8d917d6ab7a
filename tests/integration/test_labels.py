"""Labels: jobs selected by ``{name: value}`` in listings, exports and actions on many jobs at once."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from rediscron import RedisCronJob, RedisCronScheduler
from rediscron import keys as k
from rediscron.audit import read
from rediscron.cli import main
from rediscron.errors import InvalidJobError
from rediscron.registry import Registry
from tests import jobs


@pytest.fixture
def team_jobs(connection: redis.Redis) -> RedisCronScheduler:
    s = RedisCronScheduler(connection, logging_level="WARNING")
    s.register(jobs.noop, "q", id="bill:1", interval=60, labels={"team": "billing", "env": "prod"})
    s.register(jobs.noop, "q", id="bill:2", interval=60, labels={"team": "billing", "env": "staging"})
    s.register(jobs.noop, "q", id="ops:1", interval=60, labels={"team": "ops"})
    s.register(jobs.noop, "q", id="plain", interval=60)
    return s


def test_labels_are_kept_sorted_and_select_jobs(connection: redis.Redis, team_jobs: RedisCronScheduler) -> None:
    job = RedisCronJob.fetch("bill:1", connection)
    assert job.labels == {"env": "prod", "team": "billing"} and list(job.labels) == ["env", "team"]
    assert RedisCronJob.fetch("plain", connection).labels is None
    registry = Registry(connection)
    assert registry.select({"team": "billing"}) == ["bill:1", "bill:2"]
    assert registry.select({"team": "billing", "env": "prod"}) == ["bill:1"]
    assert registry.select({"team": "nobody"}) == []
    connection.hset(k.job("ops:1"), "labels", "{not json")  # hostile: read as no labels, never a crash
    assert registry.select({"team": "ops"}) == []


@pytest.mark.parametrize(
    ("labels", "says"),
    [
        ({"": "x"}, "name '' is not"),
        ({"team name": "x"}, "name 'team name' is not"),
        ({"team": 1}, "team: must be text"),
        ({"team": "a\x1b[2J"}, "team: must be text of at most 200 characters without control characters"),
        ({f"l{i}": "x" for i in range(21)}, "holds 21 labels; at most 20"),
        (["team"], "must be a dict of name: value text"),
    ],
)
def test_bad_labels_are_refused_naming_the_job_and_field(connection: redis.Redis, labels: Any, says: str) -> None:
    with pytest.raises(InvalidJobError, match=r"'x': labels: .*" + says.replace("[", r"\[")):
        RedisCronScheduler(connection).register(jobs.noop, "q", id="x", interval=60, labels=labels)
    assert not connection.exists(k.job("x"))


def test_the_command_line_filters_and_acts_by_label(
    redis_url: str, connection: redis.Redis, team_jobs: RedisCronScheduler
) -> None:
    runner = CliRunner()

    def rqrcron(*args: str) -> Any:
        return runner.invoke(main, ["-u", redis_url, *args], catch_exceptions=False)

    listed = rqrcron("info", "--label", "team=billing")
    assert listed.exit_code == 0, listed.output
    ids = [line.split()[0] for line in listed.output.splitlines() if line.startswith(("bill", "ops", "plain"))]
    assert ids == ["bill:1", "bill:2"] and "2 scheduled jobs total" in listed.output
    as_json = json.loads(rqrcron("info", "--json", "--label", "team=billing", "--label", "env=prod").output)
    assert [row["id"] for row in as_json["jobs"]] == ["bill:1"]
    exported = json.loads(rqrcron("export", "--label", "team=ops").output)
    assert [entry["id"] for entry in exported["jobs"]] == ["ops:1"] and exported["jobs"][0]["labels"] == {"team": "ops"}

    dry = rqrcron("disable", "--label", "team=billing", "--dry-run")
    assert dry.output.splitlines() == [
        "bill:1: would be disabled",
        "bill:2: would be disabled",
        "2 job(s) with team=billing would be disabled",
    ]
    assert RedisCronJob.fetch("bill:1", connection).enabled
    done = rqrcron("disable", "--label", "team=billing")
    assert done.exit_code == 0 and done.output.splitlines()[-1] == "2 job(s) with team=billing disabled"
    assert [RedisCronJob.fetch(i, connection).enabled for i in ("bill:1", "bill:2", "ops:1")] == [False, False, True]
    assert read(connection, "bill:2")[0].action == "disabled"  # each in its own atomic step, each in the log
    assert rqrcron("enable", "--label", "team=billing").output.splitlines()[-1] == "2 job(s) with team=billing enabled"
    triggered = rqrcron("trigger", "--label", "team=ops")
    assert triggered.output.splitlines()[-1] == "1 job(s) with team=ops triggered"
    assert connection.llen("rq:queue:q") == 1

    added = rqrcron("add", "new", "tests.jobs.noop", "-q", "q", "--interval", "60", "--label", "team=ops")
    assert added.exit_code == 0, added.output
    assert RedisCronJob.fetch("new", connection).labels == {"team": "ops"}
    assert rqrcron("disable", "--label", "team").exit_code == 2  # not NAME=VALUE
    assert rqrcron("disable").exit_code == 2  # neither an ID nor --label
    assert rqrcron("disable", "plain", "--label", "team=ops").exit_code == 2  # both
