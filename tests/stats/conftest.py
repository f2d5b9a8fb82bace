"""Helpers to read a daemon's stats (the module-scoped `engine` daemon is in tests/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.daemon import DaemonProcess


def run_detached(engine: DaemonProcess, *args: str) -> str:
    """``run -d ARGS``; the new container's full ID."""
    return engine.cli("run", "-d", *args, check=True).stdout.strip()


def stats_json(engine: DaemonProcess, *args: str) -> list[dict[str, str]]:
    """``stats --no-stream --format json ARGS`` parsed, one dict per container."""
    out = engine.cli("stats", "--no-stream", "--format", "json", *args, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def container_pid(engine: DaemonProcess, name: str) -> int:
    """The host PID of a running container's init."""
    return int(engine.cli("inspect", "-f", "{{.State.Pid}}", name, check=True).stdout)


def cgroup_procs(container_id: str) -> set[int]:
    """The PIDs in the container's cgroup, as the kernel lists them (v1 pids or v2)."""
    for candidate in (
        Path("/sys/fs/cgroup/pids/servin") / container_id / "cgroup.procs",
        Path("/sys/fs/cgroup/servin") / container_id / "cgroup.procs",
    ):
        if candidate.exists():
            return {int(p) for p in candidate.read_text().split()}
    raise AssertionError(f"no cgroup found for container {container_id}")


def grpc_client(engine: DaemonProcess):  # type: ignore[no-untyped-def]
    """A servin client connected to ``engine`` (close it after use)."""
    from servin.client.sync import Client

    return Client(engine.host)
