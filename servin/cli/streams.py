"""One attach or exec session from the CLI: stdin up, output down, resizes, detach.

The request stream (``AttachInput`` or ``ExecInput``) is a generator gRPC consumes in its
own thread: the first message, then whatever the stdin reader thread and SIGWINCH queue
(data, window sizes, the end of stdin). The main thread writes the output as it comes,
stdout and stderr separately unless the process has a terminal, and learns from the last
message whether the process exited (with its code) or the user detached.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from servin.cli.execout import Outcome, relay_output
from servin.cli.terminal import is_terminal, raw_terminal, window_size

if TYPE_CHECKING:
    from servin.api.servin.v1.containers_pb2 import AttachInput, AttachOutput, ExecInput

# The request stream's message: AttachInput (attach) or ExecInput (exec).
In = TypeVar("In", "AttachInput", "ExecInput")

READ_CHUNK = 32 * 1024


class InputPump(Generic[In]):
    """Produces the request stream: the first message, then queued stdin and resizes."""

    def __init__(self, first: In, make: Callable[..., In]) -> None:
        self.first: In = first
        self.make: Callable[..., In] = make
        self._queue: queue.Queue[tuple[str, Any] | None] = queue.Queue(256)
        self._stop = threading.Event()

    def messages(self) -> Iterator[In]:
        """The request iterator to hand to the gRPC call."""
        yield self.first
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if item is None:
                break
            kind, value = item
            if kind == "data":
                yield self.make(data=value)
            elif kind == "resize":
                yield self.make(rows=value[0], cols=value[1])
            elif kind == "eof":
                yield self.make(close_stdin=True)
        # Keep the request side open until the session ends: a finished request stream
        # would read as the end of stdin.
        self._stop.wait()

    def resize(self, rows: int, cols: int) -> None:
        """Queue a window size (called from the SIGWINCH handler too: never blocks)."""
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(("resize", (rows, cols)))

    def start_stdin(self, fd: int = 0) -> None:
        """Forward ``fd`` (the CLI's stdin) in a daemon thread until it ends."""

        def reader() -> None:
            try:
                while not self._stop.is_set():
                    data = os.read(fd, READ_CHUNK)
                    if not data:
                        break
                    self._queue.put(("data", data))
            except OSError:
                pass
            if not self._stop.is_set():
                self._queue.put(("eof", None))

        threading.Thread(target=reader, name="stdin", daemon=True).start()

    def stop(self) -> None:
        """End the request stream."""
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)


def run_session(
    call: Callable[[Iterator[In]], Iterator[AttachOutput]],
    first: In,
    make: Callable[..., In],
    *,
    stdin: bool,
    tty: bool,
    on_registered: Callable[[InputPump[In]], None] | None = None,
) -> Outcome:
    """Drive one session to its end; the terminal is raw meanwhile when ``tty`` and stdin is one.

    ``on_registered`` runs after the server's first (empty) message, for attach-then-start.
    """
    pump = InputPump(first, make)
    use_tty = tty and is_terminal(0)
    raw = (raw_terminal(0, size_fd=1 if is_terminal(1) else 0, on_resize=pump.resize)
           if use_tty else contextlib.nullcontext(False))
    outcome = Outcome()
    responses = call(pump.messages())
    try:
        with raw:
            if on_registered is not None:
                next(responses, None)  # registered: the output from now on reaches us
                on_registered(pump)
            if stdin:
                pump.start_stdin(0)
            outcome = relay_output(responses, tty=tty)
    finally:
        pump.stop()
        close = getattr(responses, "close", None)
        if close is not None:
            close()
    if outcome.detached:  # said once the terminal is back to normal, as docker says it
        os.write(2, b"read escape sequence\n")
    return outcome


def terminal_size() -> tuple[int, int] | None:
    """The CLI terminal's (rows, cols), from stdout or stdin; None without a terminal."""
    for fd in (1, 0):
        if is_terminal(fd):
            size = window_size(fd)
            if size is not None:
                return size
    return None
