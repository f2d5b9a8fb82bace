"""The libc handle and the error convention shared by every wrapper in ``servin.engine.linux``.

Python's ``os`` module lacks several container syscalls (unshare, setns, mount, pivot_root,
capset, ...). The wrappers call them through ctypes on the process's own libc, and every
failure raises ``OSError`` carrying the errno and a message naming the operation and its path,
so a caller several layers up can still tell what failed and where.
"""

from __future__ import annotations

import ctypes
import os
import platform

libc = ctypes.CDLL(None, use_errno=True)

# Raw syscall numbers for the calls some libcs do not wrap; glibc wraps most of them, but
# musl or an old glibc may not, and a few (capget/capset) are safer called raw.
_SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {"pivot_root": 155, "capget": 125, "capset": 126, "close_range": 436,
               "setns": 308, "unshare": 272, "rt_sigaction": 13},
    "aarch64": {"pivot_root": 41, "capget": 90, "capset": 91, "close_range": 436,
                "setns": 268, "unshare": 97, "rt_sigaction": 134},
}

_ARCH = platform.machine()

libc.syscall.restype = ctypes.c_long


def syscall_number(name: str) -> int:
    """The raw syscall number of ``name`` on this machine's architecture."""
    try:
        return _SYSCALLS[_ARCH][name]
    except KeyError:
        raise OSError(0, f"syscall {name} is not known on {_ARCH}") from None


def raise_errno(operation: str, path: str | None = None, errno: int | None = None) -> None:
    """Raise ``OSError`` for the errno of the last libc call, naming ``operation`` and ``path``."""
    err = ctypes.get_errno() if errno is None else errno
    message = f"{operation}: {os.strerror(err)}"
    if path is not None:
        message = f"{operation} {path}: {os.strerror(err)}"
    raise OSError(err, message)


def check(result: int, operation: str, path: str | None = None) -> int:
    """Return ``result``, or raise ``OSError`` (with errno) when the libc call returned -1."""
    if result == -1:
        raise_errno(operation, path)
    return result


def has_symbol(name: str) -> bool:
    """Whether this libc exports ``name``."""
    try:
        getattr(libc, name)
    except AttributeError:
        return False
    return True


def fsencode(path: str | bytes | os.PathLike[str]) -> bytes:
    """The bytes form of a path, for passing to libc."""
    return os.fsencode(path)
