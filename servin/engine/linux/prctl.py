"""prctl(2) and the process attributes a container init sets through it."""

from __future__ import annotations

import ctypes

from servin.engine.linux.syscalls import check, libc

PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_IS_SET = 1
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_LOWER = 3
PR_CAP_AMBIENT_CLEAR_ALL = 4

libc.prctl.restype = ctypes.c_int
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                       ctypes.c_ulong]


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0,
          *, label: str | None = None) -> int:
    """prctl(2); raises OSError naming ``label`` (or the option number) on failure."""
    return check(libc.prctl(option, arg2, arg3, arg4, arg5), "prctl", label or f"option {option}")


def set_no_new_privs() -> None:
    """Forbid this process and its descendants from gaining privileges through execve."""
    prctl(PR_SET_NO_NEW_PRIVS, 1, label="PR_SET_NO_NEW_PRIVS")


def get_no_new_privs() -> bool:
    """Whether no_new_privs is set on the calling thread."""
    return prctl(PR_GET_NO_NEW_PRIVS, label="PR_GET_NO_NEW_PRIVS") == 1


def set_child_subreaper(enabled: bool = True) -> None:
    """Make the calling process adopt its orphaned descendants (so it can waitpid them)."""
    prctl(PR_SET_CHILD_SUBREAPER, int(enabled), label="PR_SET_CHILD_SUBREAPER")


def is_child_subreaper() -> bool:
    """Whether the calling process is a child subreaper."""
    value = ctypes.c_int(0)
    # The GET form takes a pointer: use a separate function object with its own argtypes.
    get = libc["prctl"]
    get.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.c_ulong, ctypes.c_ulong,
                    ctypes.c_ulong]
    check(get(PR_GET_CHILD_SUBREAPER, ctypes.byref(value), 0, 0, 0),
          "prctl", "PR_GET_CHILD_SUBREAPER")
    return value.value != 0


def set_pdeathsig(signal: int) -> None:
    """Ask the kernel to send ``signal`` to this process when its parent thread exits (0: off)."""
    prctl(PR_SET_PDEATHSIG, signal, label="PR_SET_PDEATHSIG")


def set_keepcaps(enabled: bool) -> None:
    """Keep the permitted capabilities across a switch from uid 0 to a non-zero uid."""
    prctl(PR_SET_KEEPCAPS, int(enabled), label="PR_SET_KEEPCAPS")


def get_dumpable() -> bool:
    """Whether the process is dumpable (its /proc files open to same-uid processes)."""
    return prctl(PR_GET_DUMPABLE, label="PR_GET_DUMPABLE") == 1


def set_dumpable(enabled: bool) -> None:
    """Make the process (not) dumpable: a non-dumpable process's /proc/PID/exe, mem, fd...
    are reachable only with CAP_SYS_PTRACE. Inherited by fork, reset by execve."""
    prctl(PR_SET_DUMPABLE, int(enabled), label="PR_SET_DUMPABLE")


class non_dumpable:
    """``with non_dumpable():`` children forked inside are born non-dumpable, so a container
    they join never sees a /proc/PID/exe of the host's (CVE-2019-5736); the caller's own
    setting comes back on exit."""

    def __enter__(self) -> None:
        self._was = get_dumpable()
        if self._was:
            set_dumpable(False)

    def __exit__(self, *_: object) -> None:
        if self._was:
            set_dumpable(True)
