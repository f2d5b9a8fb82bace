"""File descriptor hygiene: close_range(2) and closing everything but a chosen few."""

from __future__ import annotations

import ctypes
from collections.abc import Iterable

from servin.engine.linux.syscalls import check, libc, syscall_number

CLOSE_RANGE_CLOEXEC = 1 << 2
_MAX_FD = 0xFFFFFFFF


def close_range(first: int, last: int = _MAX_FD, flags: int = 0) -> None:
    """close_range(2): close (or, with CLOSE_RANGE_CLOEXEC, mark) fds first..last inclusive."""
    result = libc.syscall(syscall_number("close_range"), ctypes.c_uint(first),
                          ctypes.c_uint(last), ctypes.c_uint(flags))
    check(result, "close_range", f"{first}..{last}")


def close_all_except(keep: Iterable[int], first: int = 3) -> None:
    """Close every fd from ``first`` up except those in ``keep``."""
    start = first
    for fd in sorted({fd for fd in keep if fd >= first}):
        if fd > start:
            close_range(start, fd - 1)
        start = fd + 1
    close_range(start)
