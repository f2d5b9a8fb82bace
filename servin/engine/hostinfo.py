"""Facts about the host the daemon runs on (kernel, OS, CPUs, memory, cgroup version)."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@cache
def os_release() -> dict[str, str]:
    """The fields of /etc/os-release (empty when it cannot be read)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip():
                fields[key.strip()] = value.strip().strip('"')
    except OSError:
        pass
    return fields


def os_release_name() -> str:
    """PRETTY_NAME from /etc/os-release, or the kernel's system name."""
    return os_release().get("PRETTY_NAME") or platform.system()


def kernel_version() -> str:
    """The running kernel's release string."""
    return platform.release()


def mem_total() -> int:
    """Physical memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def cgroup_version(root: Path = Path("/sys/fs/cgroup")) -> int:
    """2 on a unified (cgroup v2 only) host, else 1."""
    return 2 if (root / "cgroup.controllers").exists() else 1


@dataclass(frozen=True)
class CgroupFeatures:
    """Which resource limits the host's cgroups can enforce (docker's ``info`` flags)."""

    memory_limit: bool = False
    swap_limit: bool = False
    kernel_memory_tcp: bool = False
    oom_kill_disable: bool = False
    cpu_cfs: bool = False
    cpu_shares: bool = False
    cpuset: bool = False
    pids_limit: bool = False


def cgroup_features(root: Path = Path("/sys/fs/cgroup")) -> CgroupFeatures:
    """What the cgroup hierarchy at ``root`` offers (v2: the root's controllers; v1: the
    mounted controllers and their limit files)."""
    if cgroup_version(root) == 2:
        try:
            controllers = set((root / "cgroup.controllers").read_text().split())
        except OSError:
            controllers = set()
        return CgroupFeatures(
            memory_limit="memory" in controllers,
            swap_limit="memory" in controllers,
            cpu_cfs="cpu" in controllers,
            cpu_shares="cpu" in controllers,
            cpuset="cpuset" in controllers,
            pids_limit="pids" in controllers,
        )
    from servin.engine.linux.cgroups.v1 import discover_hierarchies

    found = discover_hierarchies(root)
    memory, cpu = found.get("memory"), found.get("cpu")
    return CgroupFeatures(
        memory_limit=bool(memory and (memory / "memory.limit_in_bytes").exists()),
        swap_limit=bool(memory and (memory / "memory.memsw.limit_in_bytes").exists()),
        kernel_memory_tcp=bool(memory and (memory / "memory.kmem.tcp.limit_in_bytes").exists()),
        oom_kill_disable=bool(memory and (memory / "memory.oom_control").exists()),
        cpu_cfs=bool(cpu and (cpu / "cpu.cfs_quota_us").exists()),
        cpu_shares=bool(cpu and (cpu / "cpu.shares").exists()),
        cpuset="cpuset" in found,
        pids_limit="pids" in found,
    )


def filesystem_type(path: Path) -> str:
    """The type of the filesystem ``path`` lives on (``ext4``, ``xfs``, ...), or ""."""
    target = os.path.realpath(path)
    best, fstype = "", ""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return ""
    for line in lines:
        left, sep, right = line.partition(" - ")
        parts = left.split()
        if not sep or len(parts) < 5:
            continue
        mount_point = parts[4].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, fstype = mount_point, right.split()[0]
    return fstype


def ipv4_forwarding() -> bool:
    """Whether the kernel forwards IPv4 packets (net.ipv4.ip_forward)."""
    try:
        return Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1"
    except OSError:
        return False


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
