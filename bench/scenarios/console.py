"""7. Console: ``servin tui``'s CPU while idle with N running containers (the real CLI in a
160x48 tmux terminal, its process's CPU time read from /proc), and the time to apply a filter
(Textual's Pilot driving the console in-process against the same real daemon, 160x48)."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.env import Environment
from bench.measure import Measure
from bench.measure import run as run_command
from bench.model import Row, ScenarioResult
from bench.peers import ensure_binaries, wait_until
from bench.procfs import cpu_seconds
from servin.api.servin.v1 import containers_pb2
from servin.client.sync import Client
from servin.devtools.daemonproc import REPO

NAME = "console"
TITLE = "Console"
WORKERS = 2
FILTERS = ("bench-tui-1", "", "/-4[0-9]$/", "", "state=running bench-tui-2", "")
SIZE = (160, 48)  # the terminal: the split view (log tail and graphs) is on


def start_running(host: str, count: int) -> None:
    """``count`` running ``sleep`` containers named bench-tui-N, through the API."""
    spec = containers_pb2.ContainerSpec(
        image="busybox", cmd=["sleep", "100000"], network_mode="none"
    )

    def make(i: int) -> None:
        with Client(host) as client:
            for j in range(i, count, WORKERS):
                req = containers_pb2.CreateContainerRequest(name=f"bench-tui-{j}", spec=spec)
                cid = client.containers.Create(req).id
                client.containers.Start(containers_pb2.StartContainerRequest(id=cid))

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(make, range(WORKERS)))


class Tmux:
    """One tmux server on a private socket running the console in a SIZE terminal."""

    def __init__(self, name: str) -> None:
        self.name = name

    def cmd(self, *args: str) -> str:
        return run_command(["tmux", "-L", self.name, *args], stdout=subprocess.PIPE,
                           timeout=30).stdout.decode()  # fmt: skip

    def start(self, argv: list[str]) -> int:
        """Start ``argv`` in the session; returns its PID."""
        path = shlex.quote(os.environ.get("PYTHONPATH", str(REPO)))
        env = f"-u COLUMNS -u LINES PYTHONPATH={path} TERM=xterm-256color"
        line = f"cd {shlex.quote(str(REPO))} && exec env {env} {shlex.join(argv)}"
        width, height = (str(n) for n in SIZE)
        self.cmd("new-session", "-d", "-s", "tui", "-x", width, "-y", height, line)
        return int(self.cmd("display", "-p", "-t", "tui", "#{pane_pid}").strip())

    def screen(self) -> str:
        return self.cmd("capture-pane", "-p", "-t", "tui")

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.name, "kill-server"], capture_output=True, timeout=30)


def idle_cpu(env: Environment, count: int, settle: float, window: float) -> Measure:
    """% of one core ``servin tui`` uses while it only shows ``count`` containers."""
    ensure_binaries("tmux")
    tmux = Tmux(f"servin-bench-{os.getpid()}")
    try:
        pid = tmux.start([*env.servin.argv, "tui"])
        wait_until(lambda: f"{count} containers" in tmux.screen() or "bench-tui-" in tmux.screen(),
                   "the console showing the containers", timeout=120)  # fmt: skip
        time.sleep(settle)
        m = Measure("% of a core")
        for _ in range(3):
            before, start = cpu_seconds(pid), time.monotonic()
            time.sleep(window / 3)
            m.add(100 * (cpu_seconds(pid) - before) / (time.monotonic() - start))
        return m
    finally:
        tmux.kill()


async def filter_times(host: str, count: int, rounds: int) -> Measure:
    """Milliseconds from ``apply_filter`` until the console shows the filtered rows, redrawn
    (with many containers the rows are computed in a worker thread)."""
    from servin.tui.app import ServinApp
    from servin.tui.source import Source, client_factory

    app = ServinApp(Source(client_factory(host), host))
    m = Measure("ms")
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.monotonic() + 120
        while app.screen.table.row_count < count:
            if time.monotonic() > deadline:
                raise RuntimeError("the console never listed every container")
            await pilot.pause(0.1)
        await pilot.pause(1.0)
        screen: Any = app.screen
        for _ in range(rounds):
            for text in FILTERS:
                start = time.perf_counter()
                if not screen.apply_filter(text):
                    raise RuntimeError(f"the console refused the filter {text!r}")
                while not screen.filter_settled():
                    await asyncio.sleep(0.0005)
                await pilot.pause()
                m.add((time.perf_counter() - start) * 1000)
    return m


def run(env: Environment, result: ScenarioResult) -> None:
    # 30 s in three windows: /proc counts CPU in 10 ms ticks, 0.1% of a core over 10 s.
    count, settle, window, rounds = (3, 1.0, 3.0, 1) if env.quick else (500, 5.0, 30.0, 3)
    host = env.daemon.host
    start_running(host, count)
    try:
        cpu = idle_cpu(env, count, settle, window)
        size = "x".join(str(n) for n in SIZE)
        result.add(Row(f"`servin tui` idle CPU, {count} running, {size}", cpu, target="< 1%"))
        filt = asyncio.run(filter_times(host, count, rounds))
        result.add(Row(f"console: apply a filter, {count} containers", filt, target="< 50 ms"))
        result.notes.append(
            f"filters applied in turn: {', '.join(repr(f) for f in FILTERS)} ('' clears); "
            f"no peer has a console to compare with. Python {sys.version.split()[0]}"
        )
    finally:
        env.servin.remove_all()
