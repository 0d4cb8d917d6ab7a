"""Run the benchmark suite and print the table: ``python -m benchmarks [--quick] [--url URL]``.

rediscron is measured side by side with rq's in-memory ``rq.cron.CronScheduler`` and with
the floor, rq's pipelined ``Queue.enqueue_many`` of the same number of jobs. Figures are
medians of repeats; compare ratios across machines, not absolute times.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import redis
from rich.console import Console
from rich.table import Table

from rediscron.testing import RedisServer

from . import listing, live, static, web, worker
from .common import Results, machine

SECTIONS = ("register", "idle", "burst", "slot-burst", "propagation", "steady", "web", "worker", "listing")
#: Past this N, only what a registry of that size is about is measured: register, memory, idle pass, listings.
LARGEST_FIRED = 100_000
#: From this N on, the listings (info's first screen, export) are measured.
LISTED_FROM = 100_000
COLUMNS = ("measure", "N", "rediscron", "rq CronScheduler", "floor: enqueue_many", "target", "")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="N up to 10,000, one repeat, 4 s windows, fewer probes (< 1 min)"
    )
    parser.add_argument("--url", help="an existing Redis to use (it is FLUSHED); default: a throwaway server")
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(x) for x in text.split(",")],
        help="comma-separated N (default 1000,10000,100000; quick: 1000,10000)",
    )
    parser.add_argument("--repeats", type=int, help="repeats per figure (default 3; quick: 1); 1 at N > 10,000")
    parser.add_argument("--seconds", type=float, help="steady-state window (default 30; quick: 4)")
    parser.add_argument("--probes", type=int, help="edits per propagation measurement (default 100; quick: 8)")
    parser.add_argument(
        "--only",
        type=lambda text: set(text.split(",")),
        default=set(SECTIONS),
        help=f"comma-separated sections to run, of: {','.join(SECTIONS)}",
    )
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown to this file")
    args = parser.parse_args()
    args.sizes = args.sizes or ([1000, 10_000] if args.quick else [1000, 10_000, 100_000])
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.seconds = args.seconds or (4.0 if args.quick else 30.0)
    args.probes = args.probes if args.probes is not None else (8 if args.quick else 100)
    args.one_by_one = 2000 if args.quick else static.ONE_BY_ONE_CAP
    return args


def run(args: argparse.Namespace, url: str, results: Results, console: Console) -> None:
    static.quiet()
    for n in args.sizes if "register" in args.only else []:
        console.print(f"register and memory, N={n:,}")
        static.register(url, n, args.repeats if n <= 10_000 else 1, results, args.one_by_one)
    if "idle" in args.only:
        console.print("idle pass")
        static.idle(url, args.sizes, results)
    fired = [n for n in args.sizes if n <= LARGEST_FIRED]
    for n in fired if "burst" in args.only else []:
        console.print(f"burst, N={n:,}")
        static.burst(url, n, args.repeats if n <= 10_000 else 1, results)
        if n <= 10_000:
            static.replicated(n, results)
    for n in fired if "slot-burst" in args.only else []:
        console.print(f"burst at its slot, running scheduler, N={n:,}")
        live.slot_burst(url, n, results)
        static.ahead_memory(url, n, results)
    if "propagation" in args.only:
        console.print("edit propagation, idle scheduler")
        live.idle_propagation(url, args.probes, results)
    if "steady" in args.only:
        console.print(f"steady state, {args.seconds:.0f} s windows (edit propagation, busy, meanwhile)")
        live.steady(url, args.seconds, results, args.probes)
    first: dict[str, float] = {}
    for n in fired if "web" in args.only else []:
        console.print(f"web page, N={n:,}")
        web.pages(url, n, results, first)
    for n in [n for n in args.sizes if n >= LISTED_FROM] if "listing" in args.only else []:
        console.print(f"listings (info's first screen, export), N={n:,}")
        listing.listings(url, n, results)
    if "worker" in args.only:
        console.print("a leading CronWorker against a plain rq Worker")
        worker.leading_worker(url, 300 if args.quick else 1000, results)


def table(results: Results, title: str) -> Table:
    out = Table(title=title, title_justify="left")
    for column in COLUMNS:
        out.add_column(column, justify="right" if column in ("N",) else "left")
    for row in results.rows:
        verdict = "" if row.passed is None else ("[green]PASS[/]" if row.passed else "[red]FAIL[/]")
        out.add_row(row.measure, row.n, row.rediscron, row.rq_cron, row.floor, row.target, verdict)
    return out


def markdown(results: Results, title: str) -> str:
    lines = [title, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in results.rows:
        verdict = "" if row.passed is None else ("beaten" if row.passed else "not yet")
        cells = (row.measure, row.n, row.rediscron, row.rq_cron, row.floor, row.target, verdict)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    args = parse()
    console = Console(stderr=True)
    server = None
    if args.url:
        url = args.url
    else:
        server = RedisServer()
        server.start()
        url = server.url
    results = Results()
    began = time.monotonic()
    try:
        about = machine(redis.Redis.from_url(url))
        run(args, url, results, console)
    finally:
        if server is not None:
            server.cleanup()
    title = f"rediscron benchmarks ({'quick' if args.quick else 'full'}, {time.monotonic() - began:.0f} s): {about}"
    Console(width=200).print(table(results, title))
    if args.markdown:
        args.markdown.write_text(markdown(results, title))
    failed = [row.measure for row in results.rows if row.passed is False]
    print(f"{len(failed)} target(s) missed" + (": " + "; ".join(failed) if failed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
