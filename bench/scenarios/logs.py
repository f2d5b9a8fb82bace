"""5. Logs: a container writing N MB to stdout (time until it has exited, and the daemon's
CPU time meanwhile), and ``logs`` reading a big log back to /dev/null."""

from __future__ import annotations

import re
import subprocess
import time
from datetime import datetime

from bench.engines import CliEngine
from bench.env import Environment
from bench.measure import Measure, timed
from bench.model import Row, ScenarioResult
from bench.procfs import cpu_seconds

NAME = "logs"
TITLE = "Logs"
READ_MB = 100
LINE = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopq"


def writer_command(size: int) -> list[str]:
    """A shell line printing ``size`` bytes of 90-byte text lines."""
    return ["sh", "-c", f"yes {LINE} | head -c {size}"]


def write_log(engine: CliEngine, name: str, size: int) -> float:
    """Seconds from ``run -d`` until the writer has exited (``wait`` returned)."""

    def go() -> None:
        engine.run_detached(name, *writer_command(size))
        engine.run("wait", name, timeout=1800)

    return timed(go)


def run(env: Environment, result: ScenarioResult) -> None:
    # READ_MB (the row) keeps docker's three reads to about a minute; the notes give
    # each engine's rate (tests/containers/test_biglog.py reads a 1 GiB log through).
    write_mb, read_mb, rounds = (5, 5, 1) if env.quick else (200, READ_MB, 3)
    servin = env.servin
    assert env.daemon.proc is not None
    daemon_pid = env.daemon.proc.pid
    docker = env.docker()
    podman = env.podman()
    engines: list[tuple[CliEngine, int | None]] = [(servin, daemon_pid)]
    if docker is not None:
        engines.append((docker.engine, docker.pid))
    if podman is not None:
        engines.append((podman.engine, None))  # no daemon: conmon writes podman's logs
    elapsed = {e.name: Measure("s") for e, _ in engines}
    cpu = {e.name: Measure("s") for e, pid in engines if pid is not None}
    for i in range(rounds):
        for engine, pid in engines:
            before = cpu_seconds(pid) if pid is not None else 0.0
            elapsed[engine.name].add(write_log(engine, f"bench-log-{i}", write_mb << 20))
            if pid is not None:
                cpu[engine.name].add(cpu_seconds(pid) - before)
            engine.run("rm", "-f", f"bench-log-{i}")
    metric = f"container writes {write_mb} MB to stdout: time to exit"
    cpu_metric = f"container writes {write_mb} MB to stdout: daemon CPU"
    if len(engines) == 1:
        result.add(Row(metric, elapsed["servin"]))
        result.add(Row(cpu_metric, cpu["servin"]))
    for engine, pid in engines[1:]:
        target = "<= 1x" if engine.name == "podman" else ""
        result.add(Row(metric, elapsed["servin"], engine.name, elapsed[engine.name], target))
        if pid is not None:
            result.add(Row(cpu_metric, cpu["servin"], f"{engine.name}d", cpu[engine.name]))
    result.notes.append(
        "daemon CPU: the daemon process only (Servin's monitor and podman's conmon write the "
        "log file outside any daemon; dockerd copies it from containerd's shim itself)"
    )

    readers = [servin] + ([docker.engine] if docker is not None else [])
    reads = {e.name: Measure("s") for e in readers}
    for engine in readers:
        write_log(engine, "bench-biglog", read_mb << 20)
    try:
        for _ in range(rounds):
            for engine in readers:
                reads[engine.name].add(engine.time("logs", "bench-biglog", timeout=1800))
    finally:
        for engine in readers:
            engine.run("rm", "-f", "bench-biglog")
    metric = f"`logs` of a {read_mb} MB log to /dev/null"
    for name, m in reads.items():
        rate = read_mb / m.median
        result.notes.append(f"{name} logs: {rate:.1f} MB/s (a 1 GB log: ~{1000 / rate:.0f} s)")
    if len(readers) == 1:
        result.add(Row(metric, reads["servin"]))
    else:
        result.add(Row(metric, reads["servin"], "docker", reads["docker"], "<= 0.5x"))
    follow_latency(env, result, [servin, *env.peers()], 15 if env.quick else 40)


def follow_latency(env: Environment, result: ScenarioResult, engines: list[CliEngine],
                   lines: int) -> None:  # fmt: skip
    """``logs -f -t``: how long after its log entry's time each line reaches the follower."""
    latency = {e.name: Measure("ms") for e in engines}
    for engine in engines:
        script = (f"sleep 2; i=0; while [ $i -lt {lines} ]; do echo tick$i; i=$((i+1)); "
                  "sleep 0.1; done")
        engine.run_detached("bench-follow", "sh", "-c", script)
        follower = subprocess.Popen(engine.cmd("logs", "-f", "-t", "bench-follow"), env=engine.env,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            assert follower.stdout is not None
            for i, raw in enumerate(follower.stdout):
                arrived = time.time()
                if i >= 2:  # the first lines may have been written before the follower started
                    latency[engine.name].add((arrived - entry_time(raw.split()[0])) * 1000)
        finally:
            follower.kill()
            follower.wait()
            engine.run("rm", "-f", "bench-follow")
    metric = "`logs -f`: entry written to line on the follower's stdout"
    if len(engines) == 1:
        result.add(Row(metric, latency["servin"], target="< 50 ms"))
    for engine in engines[1:]:
        result.add(Row(metric, latency["servin"], engine.name, latency[engine.name], "< 50 ms"))


def entry_time(stamp: bytes) -> float:
    """Seconds since the epoch of an RFC 3339 timestamp as ``logs -t`` prints it (any number
    of decimals, ``Z`` or an offset)."""
    m = re.fullmatch(r"([0-9T:-]+)(\.\d+)?(Z|[+-]\d\d:\d\d)", stamp.decode())
    if m is None:
        raise ValueError(f"not a timestamp: {stamp!r}")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(m.group(1) + zone).timestamp() + float(m.group(2) or 0)
