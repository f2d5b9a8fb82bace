"""What tests look at on the host after a container is gone: mounts, cgroups, processes."""

from __future__ import annotations

import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def mounts_mentioning(text: str) -> list[str]:
    """Lines of /proc/self/mountinfo that mention ``text``."""
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if text in line]


def cgroup_dirs(container_id: str) -> list[Path]:
    """Cgroup directories of the container in any hierarchy (v1 or v2)."""
    found = []
    for hierarchy in CGROUP_ROOT.iterdir():
        candidate = hierarchy / "servin" / container_id
        if candidate.exists():
            found.append(candidate)
    candidate = CGROUP_ROOT / "servin" / container_id
    if candidate.exists():
        found.append(candidate)
    return found


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line mentions ``text``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in cmdline:
            pids.append(int(entry))
    return pids
