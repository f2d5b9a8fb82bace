"""TCP connections made inside another network namespace (CRI port-forward).

A socket belongs to the network namespace of the thread that created it, whatever happens to
that thread afterwards. So a short-lived dedicated thread joins the target namespace (setns),
creates the socket and connects, then returns to its own namespace; the caller keeps using the
socket from the event loop. No iptables, no process in the pod. The thread is a fresh one each
time (never a pool worker) so that a failed switch back can leave no thread in the wrong
namespace: such a thread ends right away. (Making and pinning namespaces is netns.py's.)
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import threading

from servin.engine.linux.namespaces import CLONE_NEWNET, setns

CONNECT_TIMEOUT = 10.0


def connect_in_netns(netns_path: str, port: int, host: str = "127.0.0.1",
                     timeout: float = CONNECT_TIMEOUT) -> socket.socket:
    """A connected TCP socket to ``host:port`` as seen from the namespace at ``netns_path``.

    ``netns_path`` is a namespace file (``/proc/PID/ns/net`` or a bind-mounted one). With the
    default host, an IPv4 refusal is retried on ``::1`` (a server listening on IPv6 only).
    Raises OSError (ECONNREFUSED, ETIMEDOUT, ENOENT for a missing namespace...).
    """
    result: list[socket.socket | BaseException] = []

    def work() -> None:
        try:
            result.append(_connect_in_thread(netns_path, port, host, timeout))
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=work, name=f"netns-connect-{port}", daemon=True)
    thread.start()
    thread.join()
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _connect_in_thread(netns_path: str, port: int, host: str, timeout: float) -> socket.socket:
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        os.close(own)
        raise OSError(exc.errno, f"network namespace {netns_path}: "
                                 f"{os.strerror(exc.errno or 0)}") from None
    try:
        setns(target, CLONE_NEWNET, path=netns_path)
        try:
            return _connect(host, port, timeout)
        finally:
            try:
                setns(own, CLONE_NEWNET, path="/proc/thread-self/ns/net")
            except OSError:
                # Never let this thread run anything else in the pod's namespace: it is a
                # dedicated thread, so ending it is enough; say so loudly.
                raise SystemExit("could not return to the daemon's network namespace") from None
    finally:
        os.close(target)
        os.close(own)


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    candidates = [(socket.AF_INET, host)]
    if host == "127.0.0.1":
        candidates.append((socket.AF_INET6, "::1"))
    last: OSError | None = None
    for family, address in candidates:
        sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
        except OSError as exc:
            sock.close()
            last = exc
            if exc.errno not in (errno.ECONNREFUSED, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT,
                                 errno.ENETUNREACH):
                break
            continue
        sock.setblocking(False)
        return sock
    assert last is not None
    raise OSError(last.errno, f"connect to {host}:{port} in the pod's network namespace: "
                              f"{os.strerror(last.errno or 0)}")


async def open_connection_in_netns(
        netns_path: str, port: int, host: str = "127.0.0.1",
        timeout: float = CONNECT_TIMEOUT) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """An asyncio stream pair connected to ``host:port`` inside the namespace at ``netns_path``.

    The connect runs in its own thread (see the module docstring), off the event loop.
    """
    sock = await asyncio.to_thread(connect_in_netns, netns_path, port, host, timeout)
    try:
        return await asyncio.open_connection(sock=sock)
    except BaseException:
        sock.close()
        raise
