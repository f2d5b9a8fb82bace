"""inotify(7) through libc, with an asyncio wait: file changes wake a task, nothing polls.

Used as a wake-up only: a watcher drains the events and re-reads the state it cares about
(a log file's size and inode), so a queue overflow (IN_Q_OVERFLOW) loses nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
from typing import Any

from servin.engine.linux.syscalls import check, libc

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

libc.inotify_init1.restype = ctypes.c_int
libc.inotify_init1.argtypes = [ctypes.c_int]
libc.inotify_add_watch.restype = ctypes.c_int
libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]


class Inotify:
    """One inotify instance (non-blocking, close-on-exec). Close it when done."""

    def __init__(self) -> None:
        self.fd = check(libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC), "inotify_init1")

    def add_watch(self, path: str, mask: int) -> int:
        """Watch ``path`` for the events in ``mask``; returns the watch descriptor."""
        return check(libc.inotify_add_watch(self.fd, os.fsencode(path), mask),
                     "inotify_add_watch", path)  # fmt: skip

    def drain(self) -> bool:
        """Discard the queued events; True if there were any."""
        seen = False
        while True:
            try:
                if not os.read(self.fd, 64 * 1024):
                    return seen
            except BlockingIOError:
                return seen
            seen = True

    async def wait(self, also: asyncio.Future[Any] | None = None) -> None:
        """Return once an event is queued (the events stay queued: ``drain`` them), or once
        ``also`` is done. The fd is watched only inside this call: whatever ends it (even a
        cancellation) unregisters it before returning, so closing afterwards is safe."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        fd = self.fd
        loop.add_reader(fd, wake)
        try:
            if also is None:
                await ready
            else:
                await asyncio.wait({ready, also}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            loop.remove_reader(fd)
            if not ready.done():
                ready.cancel()

    def close(self) -> None:
        """Close the instance (every watch goes with it)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Inotify:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
