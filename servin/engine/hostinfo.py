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
