"""Device nodes: mknod(2) relative to a directory fd, and the standard /dev of a container."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceNode:
    """One device node to create: ``kind`` is "c" (char), "b" (block) or "p" (fifo)."""

    name: str
    kind: str
    major: int
    minor: int
    mode: int = 0o666
    uid: int = 0
    gid: int = 0


# The nodes every container's /dev gets (the runtime-spec's "default devices").
STANDARD_DEVICES: tuple[DeviceNode, ...] = (
    DeviceNode("null", "c", 1, 3),
    DeviceNode("zero", "c", 1, 5),
    DeviceNode("full", "c", 1, 7),
    DeviceNode("random", "c", 1, 8),
    DeviceNode("urandom", "c", 1, 9),
    DeviceNode("tty", "c", 5, 0),
)

# The symlinks every container's /dev gets: name -> target.
STANDARD_LINKS: tuple[tuple[str, str], ...] = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
)

_KINDS = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def make_node(dir_fd: int, node: DeviceNode, *, label: str | None = None) -> None:
    """Create ``node`` in the directory ``dir_fd`` (replacing a non-directory already there).

    The mode is applied with fchmod-like chmod afterwards, since mknod is subject to umask.
    """
    try:
        kind = _KINDS[node.kind]
    except KeyError:
        raise OSError(22, f"mknod {label or node.name}: unknown device type {node.kind!r}") \
            from None
    device = os.makedev(node.major, node.minor) if kind != stat.S_IFIFO else 0
    try:
        try:
            os.mknod(node.name, kind | (node.mode & 0o7777), device, dir_fd=dir_fd)
        except FileExistsError:
            os.unlink(node.name, dir_fd=dir_fd)
            os.mknod(node.name, kind | (node.mode & 0o7777), device, dir_fd=dir_fd)
        os.chmod(node.name, node.mode & 0o7777, dir_fd=dir_fd, follow_symlinks=False)
        if node.uid or node.gid:
            os.chown(node.name, node.uid, node.gid, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as exc:
        raise OSError(exc.errno, f"mknod {label or node.name}: {os.strerror(exc.errno or 0)}") \
            from None


def make_symlink(dir_fd: int, name: str, target: str) -> None:
    """Create the symlink ``name`` -> ``target`` in ``dir_fd`` unless something is there."""
    try:
        os.symlink(target, name, dir_fd=dir_fd)
    except FileExistsError:
        pass
    except OSError as exc:
        raise OSError(exc.errno, f"symlink /dev/{name}: {os.strerror(exc.errno or 0)}") from None
