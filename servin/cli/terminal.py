"""The user's terminal while attached to a container: raw mode, window size, signals.

``raw_terminal`` puts the terminal in raw mode (every key, ctrl-c included, goes to the
container, whose own pty does the line editing and echo) and restores it on every way out:
normal return, exception, SIGTERM/SIGHUP/SIGQUIT (restored in the handler, then the process
exits 128+signal), and detach. ``SIGWINCH`` reports the new size to a callback.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import struct
import termios
import tty
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

# Signals that end the CLI while attached: the terminal is restored before it goes.
_FATAL = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def is_terminal(fd: int) -> bool:
    """Whether ``fd`` is a terminal."""
    try:
        return os.isatty(fd)
    except OSError:
        return False


def check_tty(*, stdin: bool, tty: bool) -> None:
    """docker's refusal of ``-it`` when stdin is not a terminal (``< /dev/null``, a pipe)."""
    if stdin and tty and not is_terminal(0):
        from servin.errors import InvalidArgument

        raise InvalidArgument("the input device is not a TTY")


def window_size(fd: int) -> tuple[int, int] | None:
    """(rows, cols) of the terminal ``fd``, or None if it is not one (or reports 0x0)."""
    try:
        rows, cols, _, _ = struct.unpack(
            "HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
        )
    except OSError:
        return None
    if not rows or not cols:
        return None
    return rows, cols


@contextlib.contextmanager
def raw_terminal(
    fd: int = 0,
    *,
    size_fd: int | None = None,
    on_resize: Callable[[int, int], None] | None = None,
) -> Iterator[bool]:
    """Raw mode on ``fd`` for the block (yields whether it is a terminal at all).

    ``on_resize(rows, cols)`` is called on SIGWINCH with the size of ``size_fd`` (default
    ``fd``). Must run in the main thread (it installs signal handlers).
    """
    saved = None
    if is_terminal(fd):
        with contextlib.suppress(termios.error):
            saved = termios.tcgetattr(fd)
    previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    def restore() -> None:
        if saved is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    def on_fatal(signum: int, frame: FrameType | None) -> None:
        restore()
        raise SystemExit(128 + signum)

    def on_winch(signum: int, frame: FrameType | None) -> None:
        size = window_size(fd if size_fd is None else size_fd)
        if size is not None and on_resize is not None:
            on_resize(*size)

    try:
        for sig in _FATAL:
            previous[sig] = signal.signal(sig, on_fatal)
        if on_resize is not None:
            previous[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, on_winch)
        if saved is not None:
            tty.setraw(fd, termios.TCSADRAIN)
        yield saved is not None
    finally:
        restore()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
