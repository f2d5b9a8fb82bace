"""The CLI run on a real pseudo-terminal, as a user's shell would run it (``pty`` module)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time

from tests.daemon import REPO


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class PtyCli:
    """``servin -H HOST ARGS`` with a pty as its controlling terminal and stdio.

    The test holds the master (what the user types and sees) and a slave fd, to read the
    terminal's settings with ``stty -g`` as the user's shell would see them afterwards.
    """

    def __init__(self, host: str, *args: str, rows: int = 24, cols: int = 80,
                 program: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        """``program`` replaces ``servin -H HOST`` (another CLI, such as docker's);
        ``env`` is added to the environment."""
        self.master, self.slave = os.openpty()
        set_size(self.slave, rows, cols)
        env = dict(os.environ, TERM="xterm", **(env or {}))
        env.pop("SERVIN_HOST", None)
        command = program if program is not None else [sys.executable, "-m", "servin", "-H",
                                                       host]
        slave = self.slave

        def make_controlling() -> None:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            [*command, *args],
            stdin=slave, stdout=slave, stderr=slave, cwd=REPO, env=env,
            start_new_session=True, preexec_fn=make_controlling, close_fds=True,
        )
        self.output = bytearray()

    def stty(self) -> str:
        """``stty -g`` of the terminal now (the settings the user's shell gets back)."""
        return subprocess.run(["stty", "-g"], stdin=self.slave, capture_output=True,
                              text=True, check=True).stdout.strip()

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def resize(self, rows: int, cols: int) -> None:
        """The user resizes the window: the kernel sends SIGWINCH to the CLI."""
        set_size(self.master, rows, cols)

    def read_until(self, pattern: bytes | str, timeout: float = 20.0) -> re.Match[bytes]:
        """Read output until ``pattern`` (a regex) matches what was read since the last match."""
        regex = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = regex.search(bytes(self.output))  # a copy: the match keeps its subject
            if m:
                del self.output[: m.end()]
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{pattern!r} not seen; got {bytes(self.output)!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: the CLI is gone and nothing holds the slave but us
                    chunk = b""
                if not chunk and self.proc.poll() is not None:
                    raise AssertionError(f"{pattern!r} not seen before the CLI exited "
                                         f"({self.proc.returncode}); got {bytes(self.output)!r}")
                self.output += chunk

    def wait(self, timeout: float = 20.0) -> int:
        """The CLI's exit status (reading its last output meanwhile)."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"the CLI did not exit: {bytes(self.output)!r}"
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                with contextlib.suppress(OSError):
                    self.output += os.read(self.master, 65536)
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)
