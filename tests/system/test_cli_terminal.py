"""`rqrcron info -i` in a real (pseudo) terminal: the screen is redrawn in place."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import pyte
import redis

from rediscron import RedisCronScheduler
from tests import jobs
from tests.system.conftest import ROOT

COLUMNS, LINES = 120, 30


def test_info_interval_redraws_in_place(redis_url: str, connection: redis.Redis) -> None:
    admin = RedisCronScheduler(connection, logging_level="WARNING")
    admin.register(jobs.noop, "analytics", id="visits", cron="*/1 * * * *")
    admin.register(jobs.noop, "maintenance", id="vacuum", interval=10)
    fd, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    env = {
        **os.environ,
        "TERM": "xterm-256color",
        "COLUMNS": str(COLUMNS),
        "LINES": str(LINES),
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "rediscron", "-u", redis_url, "info", "-R", "-i", "0.2"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
        close_fds=True,
    )
    os.close(terminal)
    screen = pyte.Screen(COLUMNS, LINES)
    stream = pyte.ByteStream(screen)
    raw = bytearray()

    def pump(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    return
                raw.extend(chunk)
                stream.feed(chunk)

    try:
        pump(1.5)
        admin.register(jobs.noop, "analytics", id="added", interval=60)
        pump(1.5)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        # Keep reading while it exits: a full pty buffer would block its last writes.
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            pump(0.1)
        pump(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
        code = proc.wait(10)
        os.close(fd)
    assert code == 0, raw.decode(errors="replace")[-2000:]
    shown = [line.rstrip() for line in screen.display]
    text = "\n".join(shown)
    # Redrawn many times, yet the screen holds one listing: the new state, nothing scrolled.
    assert raw.count(b"Updated:") >= 5
    assert sum(line.startswith("Updated:") for line in shown) == 1, text
    assert "2 queues, 3 scheduled jobs total" in text
    assert "2 queues, 2 scheduled jobs total" not in text
    assert any(line.startswith("  added   every 60s") for line in shown), text
    assert "Traceback" not in text
