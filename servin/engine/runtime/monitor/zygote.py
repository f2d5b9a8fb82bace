"""The monitor zygote: one detached, pre-imported process that forks a monitor per request.

A fresh interpreter with a monitor's imports costs ~15 MB and ~250 ms per container; a fork
of a process that has already imported (and warmed up) everything costs half a millisecond,
and the child shares those pages with the zygote and its siblings until it writes to them.
``gc.freeze()`` before each fork keeps the collector off the shared objects; the heap is
compacted (``heap``) and the hot paths pre-run (``warmup``) so children write to fewer of
them; the fork skips Python's at-fork hooks (``prctl.bare_fork``).

Run as ``python -S -m servin.engine.runtime.monitor.zygote --socket PATH`` (the daemon's
``ensure_zygote`` does it). Once the socket listens, the launched process forks the zygote
proper into the background and exits 0: that exit is the readiness signal.

The zygote does as little as possible per request: it keeps one monitor forked ahead (with
its setup child already forked too) waiting for the next connection, and forks the next one
when told that the last was taken. The request's way is then one process hop: the waiting
setup process accepts it. Every page the zygote writes between two forks stays private in
the older child, so even the request is read by the child (see ``setup``):
``{"op": "ping"}``, ``{"op": "shutdown"}`` or ``{"op": "spawn", "spec": {...}}``, one JSON
line per connection (spawn may carry file descriptors, see ``client.spawn``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import select
import signal
import socket
import sys
import time
from pathlib import Path

from servin.engine.linux import signals
from servin.engine.runtime.monitor import heap, monitor, runtimes, setup, warmup
from servin.engine.runtime.monitor.prctl import bare_fork
from servin.engine.runtime.monitor.protocol import code_fingerprint


def _listen(path: Path) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    sock.listen(128)
    return sock


def _release_path(path: Path, inode: int) -> None:
    """Remove our socket path, unless another zygote has taken it over."""
    try:
        if os.stat(path).st_ino == inode:
            path.unlink()
    except OSError:
        pass


def serve(listener: socket.socket) -> None:
    """Keep a monitor waiting for the next connection, forever."""
    listen_fd = listener.fileno()
    taken_r, taken_w = os.pipe2(os.O_CLOEXEC)
    poller = select.poll()
    poller.register(taken_r, select.POLLIN)
    waiting = -1  # a pidfd of the monitor waiting for a connection
    while True:
        if waiting < 0:
            gc.freeze()  # everything alive now is shared with the child: keep the GC off it
            pid = bare_fork()
            if pid == 0:
                code = 1
                try:
                    os.close(taken_r)
                    code = monitor.main(listen_fd, taken_w)
                finally:
                    os._exit(code)
            waiting = os.pidfd_open(pid)
            poller.register(waiting, select.POLLIN)
        try:
            events = poller.poll()
        except InterruptedError:
            continue
        for fd, _ in events:
            if fd == taken_r:
                os.read(taken_r, 64)  # it took a connection (or died): fork the next one
            elif waiting >= 0:  # it died before taking any: fork it again, not in a hurry
                time.sleep(0.05)
            else:
                continue
            if waiting >= 0:
                poller.unregister(waiting)
                os.close(waiting)
                waiting = -1


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m servin.engine.runtime.monitor.zygote``."""
    parser = argparse.ArgumentParser(prog="servin-monitor-zygote")
    parser.add_argument("--socket", required=True, type=Path)
    parser.add_argument("--foreground", action="store_true", help="do not fork into background")
    args = parser.parse_args(argv)
    # A zygote started by a careless parent (nohup, a service manager, a daemon that blocks
    # signals) would hand what it ignored and blocked to every monitor, runc/crun and so to
    # containers: start from the defaults, plus Python's own SIGPIPE/SIGXFSZ ignores (which
    # subprocess undoes for the runtimes it runs).
    signals.reset_all()
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    # The sealed copy of the interpreter this process was executed from (client.py): it is
    # /proc/self/exe already; the fd itself must not reach monitors or containers.
    exe_fd = os.environ.pop("SERVIN_ZYGOTE_EXE_FD", "")
    if exe_fd.isdigit():
        with contextlib.suppress(OSError):
            os.close(int(exe_fd))

    gc.disable()  # nothing is collected in the zygote: what it holds, every monitor shares
    failures = runtimes.preload()
    warmup.run(args.socket.parent)
    for _ in range(3):  # three lives: enough calls for the specializer to settle
        warmup.run_monitor(args.socket.parent)
    fingerprint = code_fingerprint()
    listener = _listen(args.socket)
    inode = os.stat(args.socket).st_ino
    if not args.foreground:
        if os.fork() != 0:
            os._exit(0)  # the socket listens: the launcher may go on
        os.setsid()  # the launcher's session leader is gone; be our own, without a tty
    setup.ZYGOTE.update(
        socket=str(args.socket),
        inode=inode,
        pid=os.getpid(),
        info={"pid": os.getpid(), "version": fingerprint, "preload_failures": failures},
    )

    def stop(signum: int, frame: object) -> None:
        _release_path(args.socket, inode)
        os._exit(0)

    # Monitors reset both (monitor.main): what is ignored here would be ignored in containers.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped by the kernel
    gc.collect()
    heap.trim()
    heap.fill_free_blocks()
    serve(listener)
    return 0


if __name__ == "__main__":
    sys.exit(main())
