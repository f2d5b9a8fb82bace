"""Small network-device operations inside another process's network namespace.

A container with its own network namespace starts with ``lo`` down; Docker and Podman bring
it up before the program runs, so ``127.0.0.1`` works in every container. The work happens
in a dedicated short-lived thread that ``setns``-es into the namespace (setns changes only
the calling thread), so no pooled thread is ever left in a container's namespace.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable
from typing import TypeVar

from servin.engine.linux.namespaces import CLONE_NEWNET, setns

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

T = TypeVar("T")


def _set_up(name: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", name.encode(), 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, request))[1]
        if not flags & IFF_UP:
            fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", name.encode(),
                                                               flags | IFF_UP))


def run_in_netns(pid: int, work: Callable[[], T]) -> T:
    """Run ``work`` in a short-lived thread inside the network namespace of ``pid``.

    Raises what ``work`` raised (OSError if the namespace cannot be entered).
    """
    results: list[T] = []
    errors: list[BaseException] = []

    def body() -> None:
        try:
            target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(target, CLONE_NEWNET)
            finally:
                os.close(target)
            results.append(work())
        except BaseException as exc:
            errors.append(exc)

    # The thread ends in the container's namespace and is discarded with it.
    thread = threading.Thread(target=body, name=f"netns-{pid}", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


def bring_up_loopback(pid: int) -> None:
    """Set ``lo`` up in the network namespace of ``pid``. Raises OSError on failure."""
    run_in_netns(pid, lambda: _set_up("lo"))
