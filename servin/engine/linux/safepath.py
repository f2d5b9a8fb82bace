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

import errno
import os
import stat
from dataclasses import dataclass
from typing import Literal

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
