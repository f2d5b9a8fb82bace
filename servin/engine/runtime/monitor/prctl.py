"""The libc calls a monitor needs that Python's os module lacks or does too much around."""

from __future__ import annotations

import ctypes
import os

_PR_SET_NAME = 15
_PR_SET_CHILD_SUBREAPER = 36

_libc = ctypes.CDLL(None, use_errno=True)
# Called with the GIL held (PyDLL): the zygote is single-threaded and must stay in control.
_fork = ctypes.PyDLL(None, use_errno=True).fork
_fork.argtypes = []
_fork.restype = ctypes.c_int
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int


def _call(option: int, arg: int, what: str) -> None:
    if _prctl(option, arg, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({what}): {os.strerror(err)}")


def set_child_subreaper() -> None:
    """Become the reaper of every orphaned descendant (runc's init is reparented to us)."""
    _call(_PR_SET_CHILD_SUBREAPER, 1, "PR_SET_CHILD_SUBREAPER")


def set_process_name(name: str) -> None:
    """Set this process's comm (``ps``, /proc/PID/comm); the kernel keeps 15 bytes."""
    buf = ctypes.create_string_buffer(name.encode()[:15])
    _call(_PR_SET_NAME, ctypes.addressof(buf), "PR_SET_NAME")


def bare_fork() -> int:
    """fork(2) without Python's after-fork work; only for a single-threaded caller.

    ``os.fork`` re-initializes interpreter state in the child and runs every registered
    at-fork hook (threading's, random's, logging's). Those write to ~160 pages that the
    zygote's children would otherwise share: measured, 650 KB of private memory per
    monitor. With one thread, nothing they repair is broken: no lock can be held by a
    thread that does not exist in the child, and the thread id is the same.
    """
    pid = _fork()
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"fork: {os.strerror(err)}")
    return pid
