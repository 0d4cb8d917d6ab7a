"""`make demo` as a newcomer meets it: it runs, shows live pickup, and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from rediscron import keys as k
from tests.system.conftest import ROOT

pytestmark = pytest.mark.system


def session_processes(sid: int) -> list[int]:
    """Pids of the live processes of a session (what a terminal's Ctrl-C reaches)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def start_demo(tmp_path: Path, ignore_sigint: bool = False, **env: str) -> subprocess.Popen[str]:
    def ignore() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell does for a job started with &

    return subprocess.Popen(
        [sys.executable, "-m", "examples.demo"],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=ignore if ignore_sigint else None,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path), **env},
    )


def test_the_demo_ends_cleanly_in_the_background(redis_url: str, connection: redis.Redis, tmp_path: Path) -> None:
    # Its children inherit the ignored SIGINT, so the live view cannot be stopped with it.
    demo = start_demo(tmp_path, ignore_sigint=True, REDIS_URL=redis_url, DEMO_SECONDS="3")
    out, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0, out
    assert "Traceback" not in out
    assert "Each change reached the running scheduler" in out
    assert "Web page, while the demo runs: http://127.0.0.1:" in out and "sign in with token" in out
    assert session_processes(demo.pid) == []


def test_the_demo_shows_live_edits_and_cleans_up_an_existing_redis(
    redis_url: str, connection: redis.Redis, tmp_path: Path
) -> None:
    connection.set("user:data", "kept")
    demo = start_demo(tmp_path, REDIS_URL=redis_url, DEMO_SECONDS="6")
    out, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0, out
    for seen in (
        "Registered: greet",
        "Europe/Berlin",
        "edit 'greet'",
        "add 'heartbeat'",
        "delete 'report'",
        "pause every fire",
        "resume:",
        "Preview: standup runs next on",
        "hello, rediscron",
        "Each change reached the running scheduler",
    ):
        assert seen in out, (seen, out)
    # The live view listed the jobs, and the added one appeared in it.
    assert "standup" in out and "heartbeat" in out
    assert "Traceback" not in out
    assert session_processes(demo.pid) == []
    assert list(tmp_path.iterdir()) == []
    left = sorted(key.decode() for key in connection.keys("*") if not key.startswith(b"rq:worker"))
    assert connection.get("user:data") == b"kept"
    assert not [key for key in left if key.startswith(("demo:", k.job("")))], left
    assert connection.llen("rq:queue:demo") == 0
    assert connection.zcard(k.schedule()) == 0
    assert not [key for key in left if key.endswith(":demo") or key.startswith("rq:job:")], left
    assert b"rq:queue:demo" not in connection.smembers("rq:queues")


def test_ctrl_c_leaves_nothing_running(tmp_path: Path) -> None:
    demo = start_demo(tmp_path, DEMO_SECONDS="30")
    assert demo.stdout is not None
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = demo.stdout.readline()
        lines.append(line)
        if line.startswith("Watching") or not line:
            break
    time.sleep(2.5)  # the viewer and the editor are running too
    assert len(session_processes(demo.pid)) >= 5, "".join(lines)
    os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends: the whole foreground group
    out, _ = demo.communicate(timeout=30)
    assert demo.returncode == 130, "".join(lines) + out
    assert "Interrupted; stopping everything" in out
    assert session_processes(demo.pid) == []
    assert list(tmp_path.iterdir()) == []


def test_the_demo_says_when_it_cannot_run_on_a_users_redis(
    redis_url: str, connection: redis.Redis, tmp_path: Path
) -> None:
    from rediscron import RedisCronJob, RedisCronScheduler
    from tests import jobs

    theirs = RedisCronScheduler(connection, name="their-scheduler", logging_level="WARNING")
    theirs.register_birth()
    demo = start_demo(tmp_path, REDIS_URL=redis_url, DEMO_SECONDS="3")
    out, _ = demo.communicate(timeout=60)
    assert demo.returncode == 1, out
    assert "their-scheduler" in out and "holds the lock" in out and "Traceback" not in out
    assert connection.zcard(k.schedule()) == 0  # nothing written
    theirs.register_death()
    theirs.register(jobs.noop, "q", id="greet", interval=60)  # a job of theirs with a demo id
    demo = start_demo(tmp_path, REDIS_URL=redis_url, DEMO_SECONDS="3")
    out, _ = demo.communicate(timeout=60)
    assert demo.returncode == 1 and "would overwrite" in out, out
    assert connection.hget(k.job("greet"), "func_name") == b"tests.jobs.noop"  # untouched
    RedisCronJob.fetch("greet", connection).delete()
    theirs.register(jobs.noop, "q", id="theirs", interval=1)  # the demo's scheduler would run it too
    demo = start_demo(tmp_path, REDIS_URL=redis_url, DEMO_SECONDS="3")
    out, _ = demo.communicate(timeout=60)
    assert demo.returncode == 1 and "already has 1 cron job(s)" in out, out
    assert connection.llen("rq:queue:q") == 0
