"""Device nodes: mknod(2) relative to a directory fd, and the standard /dev of a container."""

from __future__ import annotations

import contextlib
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


# What docker (runc's HostDevices) leaves out of a privileged container's /dev: its own
# mounts and the host's console.
_HOST_SKIP_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}
_HOST_SKIP_FILES = {"/dev/console"}


def device_at(path: str, name: str | None = None) -> DeviceNode | None:
    """The device node at host ``path`` (following links) as a node named ``name`` (default
    ``path``), with the host's mode and owner; None if ``path`` is not a device."""
    st = os.stat(path)
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    return DeviceNode(name or path, kind, os.major(st.st_rdev), os.minor(st.st_rdev),
                      stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)


def devices_under(path: str, target: str | None = None) -> list[DeviceNode]:
    """Every device node at or below host ``path`` (a device or a directory), named below
    ``target`` (default ``path``), sorted; symlinks and the skipped entries are left out."""
    target = target or path
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        node = device_at(path, target)
        return [node] if node is not None else []
    found: list[DeviceNode] = []
    for root, dirs, files in os.walk(path):
        rel = os.path.relpath(root, path)
        if root == "/dev":
            dirs[:] = [d for d in dirs if d not in _HOST_SKIP_DIRS]
        for name in files:
            full = os.path.join(root, name)
            if full in _HOST_SKIP_FILES or os.path.islink(full):
                continue
            with contextlib.suppress(OSError):  # gone meanwhile
                node = device_at(full, os.path.normpath(os.path.join(target, rel, name)))
                if node is not None:
                    found.append(node)
    return sorted(found, key=lambda n: n.name)


def host_devices() -> list[DeviceNode]:
    """The host's /dev devices, as ``--privileged`` gives them to a container."""
    return devices_under("/dev")
