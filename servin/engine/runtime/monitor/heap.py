"""Make a monitor's new objects land on fresh pages instead of on pages shared with the zygote.

CPython's small-object allocator serves a request from the first partly used pool of its
size class. After the zygote's imports those partly used pools are scattered over every
arena, so the first few thousand objects a forked monitor allocates would each write to a
different page shared with the zygote, copying it: measured, most of a monitor's private
memory. ``fill_free_blocks`` allocates every free block of every partly used pool in the
zygote (and never frees them), so a child's allocations start on fresh, compact pools.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys

_malloc = ctypes.pythonapi.PyObject_Malloc
_malloc.argtypes = [ctypes.c_size_t]
_malloc.restype = ctypes.c_void_p

# The filler blocks stay allocated for the zygote's life; kept here so nothing frees them.
_kept: list[ctypes.Array[ctypes.c_void_p]] = []


def free_blocks() -> dict[int, int]:
    """Free blocks in partly used pools, by block size (from ``sys._debugmallocstats``)."""
    fd = os.memfd_create("mallocstats", os.MFD_CLOEXEC)
    saved = os.dup(2)
    try:
        sys.stderr.flush()
        os.dup2(fd, 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
        os.lseek(fd, 0, os.SEEK_SET)
        text = b""
        while chunk := os.read(fd, 65536):
            text += chunk
    finally:
        os.close(saved)
        os.close(fd)
    result: dict[int, int] = {}
    for line in text.decode(errors="replace").splitlines():
        fields = line.split()
        # "class size num_pools blocks_in_use avail_blocks"
        if len(fields) == 5 and all(f.isdigit() for f in fields):
            size, avail = int(fields[1]), int(fields[4])
            if avail:
                result[size] = avail
    return result


def fill_free_blocks(rounds: int = 3) -> int:
    """Allocate every free block of every partly used pool; return how many were taken."""
    taken = 0
    for _ in range(rounds):  # filling one class can open a pool in another (the int results)
        wanted = free_blocks()
        if not wanted:
            break
        total = sum(wanted.values())
        keep = (ctypes.c_void_p * total)()
        i = 0
        for size, count in wanted.items():
            for _ in range(count):
                keep[i] = _malloc(size)
                i += 1
        _kept.append(keep)
        taken += total
    return taken


def trim() -> None:
    """Give glibc's free heap pages back to the kernel: the zygote's RSS is shared by every
    monitor (each counts its share in PSS), so it should hold no free memory."""
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None).malloc_trim(0)
