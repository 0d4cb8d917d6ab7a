"""The Redis server's instructions per run of a fire, counted by valgrind's callgrind.

Timings on a shared machine move by 20-50 % from one run to the next; the instructions the server
runs for the same work repeat to about 0.1 %. This counts them for N runs sharing a slot, built
ahead by the look-ahead and fired (what `make bench`'s "burst at its slot" measures), with
callgrind switched on only around the fire::

    python -m benchmarks.instructions            # N = 2,000
    python -m benchmarks.instructions --runs 500

It needs valgrind (``callgrind_control`` included); the server runs some 50 times slower under it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from rediscron.testing import find_redis_server, free_port

from .common import EPOCH
from .static import slot_coming


def fire_instructions(runs: int) -> float:
    """Instructions the Redis server runs per run while ``runs`` runs built ahead are fired."""
    port = free_port()
    out = Path(tempfile.mkdtemp(prefix="rediscron-callgrind-")) / "callgrind.out"
    server = subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            find_redis_server(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        connection = redis.Redis(port=port)
        deadline = time.monotonic() + 60
        while True:
            try:
                connection.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        now = [EPOCH]
        scheduler, slot = slot_coming(connection, runs, now)
        while len(scheduler.lookahead.runs) < runs:
            scheduler.run_once()
            scheduler.heartbeat()
        now[0] = slot + 0.001
        subprocess.run(["callgrind_control", "-i", "on", str(server.pid)], check=True, capture_output=True)
        while int(connection.llen("rq:queue:default")) < runs:
            scheduler.run_once()
        subprocess.run(["callgrind_control", "-i", "off", str(server.pid)], check=True, capture_output=True)
        connection.shutdown(nosave=True)
    finally:
        if server.poll() is None:
            server.terminate()
        server.wait(timeout=60)
    totals = re.search(r"^totals: (\d+)", out.read_text(), re.MULTILINE)
    shutil.rmtree(out.parent, ignore_errors=True)
    if totals is None:
        raise RuntimeError("callgrind wrote no totals")
    return int(totals.group(1)) / runs


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="runs sharing the slot (default 2,000)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    print(f"Redis server instructions per run of a fire: {fire_instructions(args.runs):,.0f}")


if __name__ == "__main__":
    main()
