"""Resolving a path inside a root directory the way a chroot would, without chroot.

A container image is untrusted: its /dev may be a symlink to "/", its /proc a symlink to
"../../../etc". Resolving "<rootfs>/dev" with the host's path walk would follow those links
out of the rootfs and let a mount land on the host. :func:`open_in_root` walks the path one
component at a time from an fd of the root, never following a symlink with the kernel:
each link is read and re-resolved against the root (absolute) or its directory (relative),
and ".." never climbs above the root. The result is an ``O_PATH`` fd, which a caller turns
into a mount target with ``/proc/self/fd/N`` so nothing re-resolves the path afterwards.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import stat
from dataclasses import dataclass
from typing import Literal

from servin.engine.linux.syscalls import libc

_MAX_SYMLINKS = 40
_O_PATH = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Resolved:
    """An open ``O_PATH`` fd of a path resolved inside a root, and how it was reached."""

    fd: int
    path: str  # the resolved path, relative to the root, starting with "/"
    followed_symlink: bool
    mode: int

    @property
    def proc_path(self) -> str:
        """A path naming exactly this file for mount(2) and friends."""
        return f"/proc/self/fd/{self.fd}"

    @property
    def is_dir(self) -> bool:
        """Whether the resolved file is a directory."""
        return stat.S_ISDIR(self.mode)

    def close(self) -> None:
        """Close the fd."""
        os.close(self.fd)

    def __enter__(self) -> Resolved:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _split(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def open_in_root(root_fd: int, path: str, *, create: Literal["dir", "file"] | None = None,
                 dir_mode: int = 0o755) -> Resolved:
    """Open ``path`` as seen from inside the root directory ``root_fd``.

    With ``create``, missing components are created as directories and the last one as a
    directory or an empty file. Raises ``OSError`` (ENOENT, ENOTDIR, ELOOP...) naming ``path``.
    """
    parts = _split(path)
    stack: list[tuple[int, str]] = []
    links = 0
    followed = False
    try:
        while parts:
            name = parts.pop(0)
            if name == "..":
                if stack:
                    os.close(stack.pop()[0])
                continue
            parent = stack[-1][0] if stack else root_fd
            try:
                fd = os.open(name, _O_PATH, dir_fd=parent)
            except FileNotFoundError:
                if create is None:
                    raise
                if not parts and create == "file":
                    os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC
                                     | os.O_NOFOLLOW, 0o644, dir_fd=parent))
                else:
                    os.mkdir(name, dir_mode, dir_fd=parent)
                fd = os.open(name, _O_PATH, dir_fd=parent)
            mode = os.fstat(fd).st_mode
            if stat.S_ISLNK(mode):
                os.close(fd)
                links += 1
                if links > _MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
                target = os.readlink(name, dir_fd=parent)
                followed = True
                if target.startswith("/"):
                    while stack:
                        os.close(stack.pop()[0])
                parts = _split(target) + parts
                continue
            if parts and not stat.S_ISDIR(mode):
                os.close(fd)
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
            stack.append((fd, name))
        resolved = "/" + "/".join(name for _, name in stack)
        if stack:
            fd = stack.pop()[0]
        else:
            fd = os.open(".", os.O_PATH | os.O_CLOEXEC | os.O_DIRECTORY, dir_fd=root_fd)
        return Resolved(fd, resolved, followed, os.fstat(fd).st_mode)
    except OSError as exc:
        raise OSError(exc.errno, f"resolve {path} in rootfs: {os.strerror(exc.errno or 0)}") \
            from None
    finally:
        for fd_in_stack, _ in stack:
            os.close(fd_in_stack)


# openat2(2): the kernel resolves the whole path under a root in one call, so a process
# racing to swap a component for a symlink cannot lead it out (RESOLVE_IN_ROOT treats "/"
# and ".." at the root as the root itself).
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
_OPENAT2 = {"x86_64": 437, "aarch64": 437}


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def openat2(dir_fd: int, path: str, flags: int, mode: int = 0,
            resolve: int = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) -> int:
    """openat2(2): open ``path`` relative to ``dir_fd`` under the ``resolve`` restrictions.

    Raises ``OSError`` (ENOSYS on kernels before 5.6; EAGAIN when a concurrent rename made
    the kernel give up, which callers may retry).
    """
    number = _OPENAT2.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, "openat2 is not known on this architecture")
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    encoded = os.fsencode(path or ".")
    for _ in range(64):
        fd = libc.syscall(number, dir_fd, encoded, ctypes.byref(how), ctypes.sizeof(how))
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err not in (errno.EAGAIN, errno.EINTR):
            raise OSError(err, f"open {path}: {os.strerror(err)}")
    raise OSError(errno.EAGAIN, f"open {path}: {os.strerror(errno.EAGAIN)}")


def openat2_supported() -> bool:
    """Whether this kernel has openat2 with RESOLVE_IN_ROOT."""
    global _SUPPORTED
    if _SUPPORTED is None:
        try:
            os.close(openat2(-100, "/", os.O_PATH))
            _SUPPORTED = True
        except OSError:
            _SUPPORTED = False
    return _SUPPORTED


_SUPPORTED: bool | None = None
