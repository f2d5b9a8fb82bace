"""Small network-device operations inside another network namespace.

A container with its own network namespace starts with ``lo`` down; Docker and Podman bring
it up before the program runs, so ``127.0.0.1`` works in every container. The work happens
in a dedicated short-lived thread that ``setns``-es into the namespace (setns changes only
the calling thread), so no pooled thread is ever left in a container's namespace. The
namespace is a process's (by pid) or a pinned one (by path, see ``netns.py``).
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from servin.engine.linux.namespaces import CLONE_NEWNET, setns

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

T = TypeVar("T")


def set_link_up(name: str) -> None:
    """Set the interface ``name`` of the calling thread's network namespace up."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", name.encode(), 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, request))[1]
        if not flags & IFF_UP:
            fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", name.encode(),
                                                               flags | IFF_UP))


def run_in_netns(target: int | Path, work: Callable[[], T]) -> T:
    """Run ``work`` in a short-lived thread inside a network namespace: the one of the process
    ``target`` (a pid) or the pinned one at ``target`` (a path).

    Raises what ``work`` raised (OSError if the namespace cannot be entered).
    """
    ns_path = f"/proc/{target}/ns/net" if isinstance(target, int) else str(target)
    results: list[T] = []
    errors: list[BaseException] = []

    def body() -> None:
        try:
            fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(fd, CLONE_NEWNET, path=ns_path)
            finally:
                os.close(fd)
            results.append(work())
        except BaseException as exc:
            errors.append(exc)

    # The thread ends in the container's namespace and is discarded with it.
    thread = threading.Thread(target=body, name=f"netns-{target}", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


def bring_up_loopback(pid: int) -> None:
    """Set ``lo`` up in the network namespace of ``pid``. Raises OSError on failure."""
    run_in_netns(pid, lambda: set_link_up("lo"))
