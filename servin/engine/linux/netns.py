"""Pinned network namespaces: a new netns kept alive by a bind mount onto a file.

A pod's network namespace must exist before any of its processes (CNI plugins configure it
first) and outlive each of them, so it cannot belong to a process as a container's own netns
does. It is made as ``ip netns add`` and containerd make theirs: a short-lived thread
``unshare``-s a new network namespace (unshare changes only the calling thread) and bind-mounts
its own ``/proc/thread-self/ns/net`` onto an empty file, which then names the namespace until
it is unmounted. Containers join it through the OCI ``path`` of their network namespace; CNI
plugins get the file as ``CNI_NETNS``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import threading
from pathlib import Path

from servin.engine.linux.mount import MNT_DETACH, MS_BIND, mount, umount
from servin.engine.linux.namespaces import CLONE_NEWNET, unshare
from servin.engine.linux.netdev import set_link_up
from servin.engine.linux.syscalls import check, libc

NSFS_MAGIC = 0x6E736673


def create_netns(path: Path) -> None:
    """Make a new network namespace pinned at ``path`` (which must not exist yet).

    ``lo`` is brought up inside it. On failure nothing is left behind (no file, no mount)
    and OSError says why; an existing ``path`` raises FileExistsError.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
    errors: list[BaseException] = []

    def body() -> None:
        try:
            unshare(CLONE_NEWNET)
            mount("/proc/thread-self/ns/net", str(path), None, MS_BIND)
            set_link_up("lo")
        except BaseException as exc:
            errors.append(exc)

    # The thread ends in the new namespace and is discarded with it: no pooled thread is ever
    # left in another namespace.
    thread = threading.Thread(target=body, name="netns-create", daemon=True)
    thread.start()
    thread.join()
    if errors:
        remove_netns(path)
        raise errors[0]


def is_netns(path: Path) -> bool:
    """Whether ``path`` is a pinned network namespace (a mounted nsfs file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        return _fstatfs_type(fd) == NSFS_MAGIC
    finally:
        os.close(fd)


def remove_netns(path: Path) -> None:
    """Unpin the namespace at ``path`` and remove the file (idempotent).

    The namespace itself ends when no process is in it any more.
    """
    try:
        umount(str(path), MNT_DETACH)
    except OSError as exc:
        # EINVAL: not a mount point (never pinned, or already unpinned); ENOENT: gone.
        if exc.errno not in (errno.EINVAL, errno.ENOENT):
            raise
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def list_netns(directory: Path) -> list[Path]:
    """The pinned namespaces in ``directory`` (for reconciling after a crash), sorted."""
    try:
        entries = sorted(directory.iterdir())
    except FileNotFoundError:
        return []
    return [p for p in entries if is_netns(p)]


libc.fstatfs.argtypes = [ctypes.c_int, ctypes.c_void_p]


def _fstatfs_type(fd: int) -> int:
    buf = ctypes.create_string_buffer(120)  # struct statfs (64-bit Linux): f_type comes first
    check(libc.fstatfs(fd, buf), "fstatfs")
    return int.from_bytes(buf.raw[:8], "little") & 0xFFFFFFFF
