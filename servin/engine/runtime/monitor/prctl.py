"""The libc calls a monitor needs that Python's os module lacks or does too much around."""

from __future__ import annotations

import ctypes
import os

_PR_SET_PDEATHSIG = 1
_PR_GET_DUMPABLE = 3
_PR_SET_DUMPABLE = 4
_PR_SET_NAME = 15
_PR_SET_CHILD_SUBREAPER = 36

_libc = ctypes.CDLL(None, use_errno=True)
# No argtypes: ctypes then converts the Python ints itself, in C; with argtypes every call
# goes through the ctypes type objects' converters, which costs a forked monitor ~160 KB of
# private pages (measured) for two calls.
_prctl = _libc.prctl
_setns = _libc.setns
# Called with the GIL held (PyDLL): the zygote is single-threaded and must stay in control.
_fork = ctypes.PyDLL(None, use_errno=True).fork
_fork.argtypes = []
_fork.restype = ctypes.c_int


def _call(option: int, arg: int | bytes, what: str) -> None:
    if _prctl(option, arg, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({what}): {os.strerror(err)}")


def set_child_subreaper() -> None:
    """Become the reaper of every orphaned descendant (runc's init is reparented to us)."""
    _call(_PR_SET_CHILD_SUBREAPER, 1, "PR_SET_CHILD_SUBREAPER")


def set_parent_death_signal(sig: int) -> None:
    """Get ``sig`` when the parent exits (0: no more)."""
    _call(_PR_SET_PDEATHSIG, sig, "PR_SET_PDEATHSIG")


def set_process_name(name: str) -> None:
    """Set this process's comm (``ps``, /proc/PID/comm); the kernel keeps 15 bytes."""
    _call(_PR_SET_NAME, name.encode()[:15], "PR_SET_NAME")  # bytes pass as a NUL-ended char*


def bare_fork() -> int:
    """fork(2) without Python's after-fork work; only for a single-threaded caller.

    ``os.fork`` re-initializes interpreter state in the child and runs every registered
    at-fork hook (threading's, random's, logging's). Those write to ~160 pages that the
    zygote's children would otherwise share: measured, 650 KB of private memory per
    monitor. With one thread, nothing they repair is broken: no lock can be held by a
    thread that does not exist in the child, and the thread id is the same.
    """
    pid: int = _fork()
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"fork: {os.strerror(err)}")
    return pid


def get_dumpable() -> bool:
    """Whether this process is dumpable (its /proc/PID files open to its own user)."""
    return bool(_prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0))


def set_dumpable(on: bool) -> None:
    """Make this process (and the children it forks from now on) dumpable or not."""
    _call(_PR_SET_DUMPABLE, int(on), "PR_SET_DUMPABLE")


def setns(fd: int, nstype: int) -> None:
    """Join the namespace open at ``fd`` (for CLONE_NEWPID: the children forked from now)."""
    if _setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")
