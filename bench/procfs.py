"""What /proc says about a process: RSS, PSS (smaps_rollup), CPU time, command line."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def smaps_rollup(pid: int) -> dict[str, int]:
    """The kB fields of /proc/PID/smaps_rollup (Rss, Pss, Private_Dirty...)."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def rss_mb(pid: int) -> float:
    """Resident set size in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ProcessLookupError(pid)


def pss_mb(pid: int) -> float:
    """Proportional set size in MB: shared pages divided among the processes mapping them."""
    return smaps_rollup(pid)["Pss"] / 1024


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def cmdline(pid: int) -> list[str]:
    """The process's argv ([] when it is gone or a kernel thread)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def pids_where(match: Callable[[list[str]], bool]) -> Iterator[int]:
    """PIDs whose argv satisfies ``match``."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            argv = cmdline(int(entry))
            if argv and match(argv):
                yield int(entry)
