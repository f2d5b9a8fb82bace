"""Facts about the host the daemon runs on (kernel, OS, CPUs, memory, cgroup version)."""

from __future__ import annotations

import os
import platform
from functools import cache
from pathlib import Path


@cache
def os_release_name() -> str:
    """PRETTY_NAME from /etc/os-release, or the kernel's system name."""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def kernel_version() -> str:
    """The running kernel's release string."""
    return platform.release()


def mem_total() -> int:
    """Physical memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def cgroup_version(root: Path = Path("/sys/fs/cgroup")) -> int:
    """2 on a unified (cgroup v2 only) host, else 1."""
    return 2 if (root / "cgroup.controllers").exists() else 1


def cpu_times_ns(path: Path = Path("/proc/stat")) -> tuple[int, int]:
    """The host's cumulative CPU time since boot over all CPUs, (busy, total) in ns.

    From the aggregate ``cpu`` line: total is user..steal, busy is total minus idle and
    iowait. (0, 0) when the file cannot be read.
    """
    try:
        with open(path, "rb") as f:
            fields = f.readline().split()
    except OSError:
        return 0, 0
    if len(fields) < 8 or fields[0] != b"cpu":
        return 0, 0
    ticks = [int(v) for v in fields[1:9]]
    total = sum(ticks)
    busy = total - ticks[3] - ticks[4]
    per_tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    return busy * per_tick, total * per_tick


def mem_available(path: Path = Path("/proc/meminfo")) -> int:
    """MemAvailable in bytes (0 when unknown)."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
