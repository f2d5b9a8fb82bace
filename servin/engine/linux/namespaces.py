"""Linux namespaces: unshare(2), setns(2) and the OCI names of each namespace type."""

from __future__ import annotations

import ctypes
import os

from servin.engine.linux.syscalls import check, libc

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# OCI runtime-spec ``linux.namespaces[].type`` -> clone flag.
OCI_NAMESPACES: dict[str, int] = {
    "mount": CLONE_NEWNS,
    "pid": CLONE_NEWPID,
    "uts": CLONE_NEWUTS,
    "ipc": CLONE_NEWIPC,
    "network": CLONE_NEWNET,
    "cgroup": CLONE_NEWCGROUP,
    "user": CLONE_NEWUSER,
    "time": CLONE_NEWTIME,
}

# The name of each namespace under /proc/PID/ns/.
PROC_NS_NAMES: dict[str, str] = {
    "mount": "mnt",
    "pid": "pid",
    "uts": "uts",
    "ipc": "ipc",
    "network": "net",
    "cgroup": "cgroup",
    "user": "user",
    "time": "time",
}

libc.unshare.argtypes = [ctypes.c_int]
libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]


def unshare(flags: int) -> None:
    """Move the calling thread into new namespaces of the kinds in ``flags`` (CLONE_NEW*).

    CLONE_NEWPID (and CLONE_NEWTIME) only apply to the children forked afterwards.
    """
    check(libc.unshare(flags), "unshare", _flag_names(flags))


def setns(fd: int, nstype: int = 0, *, path: str | None = None) -> None:
    """Join the namespace that ``fd`` (an open /proc/PID/ns/* file) refers to."""
    check(libc.setns(fd, nstype), "setns", path or f"fd {fd}")


def open_namespace(path: str) -> int:
    """Open a namespace file (e.g. /proc/PID/ns/net) for a later :func:`setns`."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise OSError(exc.errno, f"open namespace {path}: {os.strerror(exc.errno or 0)}") from None


def namespace_id(path: str) -> int:
    """The inode number that identifies the namespace at ``path`` (equal inodes, same ns)."""
    return os.stat(path).st_ino


def _flag_names(flags: int) -> str:
    names = [name for name, flag in OCI_NAMESPACES.items() if flags & flag]
    return ",".join(names) or hex(flags)
