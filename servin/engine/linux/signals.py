"""Signal dispositions and the signal mask of a process about to become a container's program.

Ignored signals and the blocked mask survive execve. Whatever the daemon, the monitor or the
runtime ignored or blocked for themselves (Python ignores SIGPIPE and SIGXFSZ; a daemon started
under ``nohup`` ignores SIGHUP; a service manager may ignore SIGQUIT) must not reach the
container: a shell cannot even trap a signal that was ignored when it started.
"""

from __future__ import annotations

import ctypes
import signal

from servin.engine.linux.syscalls import check, libc, syscall_number

LAST_SIGNAL = 64  # Linux: 1-31 standard, 32-64 real-time
_UNCATCHABLE = (signal.SIGKILL, signal.SIGSTOP)
# The kernel's struct sigaction (handler, flags, restorer, mask): all zero is SIG_DFL, no flags.
_Sigaction = ctypes.c_ulong * 4
_SIGSET_SIZE = 8


def reset_all() -> None:
    """Every signal to its default disposition and an empty signal mask.

    Raw rt_sigaction: glibc's sigaction refuses 32 and 33 (its own), which another process
    may still have left ignored.
    """
    default = _Sigaction()
    number = syscall_number("rt_sigaction")
    for signum in range(1, LAST_SIGNAL + 1):
        if signum in _UNCATCHABLE:
            continue
        check(libc.syscall(number, signum, ctypes.byref(default), None, _SIGSET_SIZE),
              f"rt_sigaction({signum})")
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
