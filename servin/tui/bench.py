"""Measure the console's cost against a real daemon: idle CPU and time to show a filter result.

``measure_console(host)`` runs the real console (the real Source over a real AsyncClient, the
real screens) headless in this process, waits until the Containers table holds every
container, then measures

- ``idle_cpu_percent``: this process's CPU time (every thread: Textual, the gRPC client)
  over ``idle_seconds`` of doing nothing but receiving the live stats and events, as a
  percentage of one core;
- ``filter_ms``: from applying a filter (what typing in the ``/`` prompt does once the
  debounce fires) to the screen's next refresh showing the filtered rows: the median over
  ``filter_runs`` filters matching one container each and as many clears (every row back);
- ``startup_ms``: from start to the first full table.

The headless driver skips only the final write to a terminal; layout and rendering run.

Command line (creates N ``sleep`` containers, measures, removes them)::

    python -m servin.tui.bench --host unix:///tmp/d/run/servin.sock --containers 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

PREFIX = "tuibench-"


@dataclass
class ConsoleMeasurement:
    """What ``measure_console`` found."""

    containers: int
    running: int
    idle_seconds: float
    idle_cpu_percent: float
    filter_ms: float
    filter_runs: int
    startup_ms: float


async def _measure(
    host: str, idle_seconds: float, filter_runs: int, size: tuple[int, int]
) -> ConsoleMeasurement:
    from servin.tui.app import ServinApp
    from servin.tui.screens.containers import ContainersScreen
    from servin.tui.source import Source, client_factory

    source = Source(client_factory(host), host)
    app = ServinApp(source)
    started = time.perf_counter()
    async with app.run_test(headless=True, size=size) as pilot:
        await source.wait_connected(30)
        total = len(source.state.containers)
        screen = app.screen
        assert isinstance(screen, ContainersScreen)
        table = screen.table
        deadline = time.monotonic() + 60
        while table.row_count < total and time.monotonic() < deadline:
            await pilot.pause(0.01)
        startup_ms = (time.perf_counter() - started) * 1000
        # Let the first stats batches and the events backlog land, then sit idle.
        await asyncio.sleep(3.0)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(idle_seconds)
        cpu1, wall1 = time.process_time(), time.perf_counter()
        idle = (cpu1 - cpu0) / (wall1 - wall0) * 100

        names = sorted(c.name for c in source.state.containers.values())
        picks = [names[i * len(names) // filter_runs] for i in range(filter_runs)] if names else []
        times = []
        for name in picks:
            for text, rows in ((f"/^{name}$/", 1), ("", total)):
                times.append(await _filter_ms(app, screen, text))
                if table.row_count != rows:
                    raise RuntimeError(f"the filter {text!r} showed {table.row_count} rows")
                await pilot.pause()
        running = sum(1 for c in source.state.containers.values() if c.state == "running")
    return ConsoleMeasurement(
        containers=total,
        running=running,
        idle_seconds=idle_seconds,
        idle_cpu_percent=round(idle, 2),
        filter_ms=round(statistics.median(times), 1) if times else 0.0,
        filter_runs=len(times),
        startup_ms=round(startup_ms, 1),
    )


async def _filter_ms(app: Any, screen: Any, text: str) -> float:
    """Milliseconds from applying ``text`` to the refresh that shows its rows."""
    t0 = time.perf_counter()
    screen.apply_filter(text, quiet=True)
    while not screen.filter_settled():  # the rows come from a worker thread
        await asyncio.sleep(0.0005)
    redrawn = asyncio.Event()
    app.call_after_refresh(redrawn.set)
    await redrawn.wait()
    return (time.perf_counter() - t0) * 1000


def measure_console(
    host: str,
    *,
    idle_seconds: float = 10.0,
    filter_runs: int = 5,
    size: tuple[int, int] = (160, 48),
) -> ConsoleMeasurement:
    """Measure the console against the daemon at ``host`` (see the module docstring)."""
    return asyncio.run(_measure(host, idle_seconds, filter_runs, size))


def _cli(host: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "servin", "-H", host, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def start_sleepers(host: str, count: int, image: str = "busybox", workers: int = 4) -> list[str]:
    """Run ``count`` containers sleeping forever; their names (errors raise RuntimeError)."""
    names = [f"{PREFIX}{i:04d}" for i in range(count)]

    def one(name: str) -> str:
        out = _cli(host, "run", "-d", "--name", name, image, "sleep", "100000")
        return "" if out.returncode == 0 else f"{name}: {out.stderr.strip()}"

    with ThreadPoolExecutor(workers) as pool:
        errors = [e for e in pool.map(one, names) if e]
    if errors:
        remove_sleepers(host)
        raise RuntimeError(f"{len(errors)} containers failed to start; first: {errors[0]}")
    return names


def remove_sleepers(host: str) -> None:
    """Remove every container this tool made (names starting with ``tuibench-``)."""
    out = _cli(host, "ps", "-aq", "--no-trunc", "--filter", f"name={PREFIX}")
    ids = out.stdout.split()
    for i in range(0, len(ids), 50):
        _cli(host, "rm", "-f", *ids[i : i + 50])


def main(argv: list[str] | None = None) -> int:
    """Command line: optionally start N sleepers, measure, clean up, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", required=True, help="the daemon (unix:///path/servin.sock)")
    parser.add_argument("--containers", type=int, default=0, help="sleep containers to run")
    parser.add_argument("--image", default="busybox")
    parser.add_argument("--idle", type=float, default=10.0, help="idle seconds measured")
    parser.add_argument("--keep", action="store_true", help="keep the containers afterwards")
    parser.add_argument("--size", default="160x48", help="terminal size (default 160x48)")
    args = parser.parse_args(argv)
    width, _, height = args.size.partition("x")
    try:
        if args.containers:
            t0 = time.perf_counter()
            start_sleepers(args.host, args.containers, args.image)
            print(
                f"started {args.containers} containers in {time.perf_counter() - t0:.0f}s",
                file=sys.stderr,
            )
        result = measure_console(args.host, idle_seconds=args.idle, size=(int(width), int(height)))
    finally:
        if args.containers and not args.keep:
            remove_sleepers(args.host)
    print(json.dumps(asdict(result), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
