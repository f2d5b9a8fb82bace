"""oom_score_adj, clamped to what the process may write.

Lowering oom_score_adj below the process's current minimum needs CAP_SYS_RESOURCE; without
it the write fails with EACCES. A container asking for a negative score then keeps the lowest
value it may have instead of failing to start.
"""

from __future__ import annotations

import errno
import os


def read_oom_score_adj(pid: int | str = "self") -> int:
    """The current oom_score_adj of ``pid``."""
    with open(f"/proc/{pid}/oom_score_adj", "rb") as file:
        return int(file.read())


def set_oom_score_adj(value: int, pid: int | str = "self") -> int:
    """Write oom_score_adj (-1000..1000); return the value actually in force."""
    value = max(-1000, min(1000, value))
    path = f"/proc/{pid}/oom_score_adj"
    try:
        _write(path, value)
        return value
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM) or value >= 0:
            raise OSError(exc.errno, f"write {path} ({value}): {os.strerror(exc.errno or 0)}") \
                from None
    # Not allowed to go this low: find the lowest value we may write (writable values are all
    # those at or above a hidden per-process minimum, so a binary search finds it).
    low, high = value + 1, read_oom_score_adj(pid)
    best = high
    while low <= high:
        middle = (low + high) // 2
        try:
            _write(path, middle)
            best, high = middle, middle - 1
        except OSError:
            low = middle + 1
    _write(path, best)
    return best


def _write(path: str, value: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)
