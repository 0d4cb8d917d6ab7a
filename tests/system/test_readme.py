"""The README's usage example runs as written (only the Redis URL points at the test server)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import redis

from rediscron.job import rq_job_id
from tests.system.conftest import ROOT, queue_ids, wait_until


def python_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", readme, flags=re.S)


def test_readme_usage_example(connection: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    blocks = python_blocks()
    tasks = next(b for b in blocks if b.startswith("# myapp/tasks.py"))
    usage = next(b for b in blocks if "scheduler.start()" in b)
    admin = next(b for b in blocks if "RedisCronJob.fetch" in b)
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "myapp" / "tasks.py").write_text(tasks)
    assert usage.count("redis://localhost:6379/0") == 1
    (tmp_path / "app.py").write_text(usage.replace("redis://localhost:6379/0", redis_url))
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    proc = subprocess.Popen(
        [sys.executable, "app.py"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        slot = wait_until(lambda: queue_ids(connection, "metrics"), what="the README job to be enqueued")
        assert slot < 10
        job_id = queue_ids(connection, "metrics")[0]
        assert job_id.startswith(rq_job_id("metric:pm25", 0).rsplit("-", 1)[0])
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=10)[0].decode()
    assert proc.returncode == 0, output
    # The admin snippet, run in another process against the job the app registered.
    assert admin.count("redis://localhost:6379/0") == 1
    script = admin.replace("redis://localhost:6379/0", redis_url)  # it runs as written
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not connection.exists("rq:cron_job:metric:pm25")
