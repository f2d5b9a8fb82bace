"""A bounded byte pipe from the event loop (a download) to a thread (an unpack)."""

from __future__ import annotations

import io
import queue


class PipeAborted(OSError):
    """The writing side gave up (the download failed or was cancelled)."""


_EOF = b""


class BytePipe(io.RawIOBase):
    """Chunks put by one side, read as a stream by the other; ``depth`` chunks in flight.

    ``put`` blocks while the reader is behind (back-pressure on the download) and returns at
    once after the reader closed its end. ``abort`` makes the reader's next read fail.
    """

    def __init__(self, depth: int = 8) -> None:
        super().__init__()
        self._queue: queue.Queue[bytes | None] = queue.Queue(depth)
        self._chunk = memoryview(b"")
        self._eof = False
        self._aborted = False
        self._reader_gone = False

    # -- the writing side -----------------------------------------------------------------

    def put(self, data: bytes) -> None:
        """Hand over a chunk (blocking while the pipe is full and the reader alive)."""
        if data:
            self._offer(data)

    def finish(self) -> None:
        """Mark the end of the stream."""
        self._offer(_EOF)

    def abort(self) -> None:
        """Fail the reader: the stream will not complete."""
        self._aborted = True
        self._offer(None, wait=False)

    def _offer(self, item: bytes | None, wait: bool = True) -> None:
        while not self._reader_gone:
            try:
                self._queue.put(item, timeout=0.2 if wait else 0)
                return
            except queue.Full:
                if not wait:
                    return

    # -- the reading side -----------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]  # bytes-like
        """Fill ``buffer`` from the current chunk, waiting for the next one when needed."""
        while not self._chunk:
            if self._eof:
                return 0
            if self._aborted:
                raise PipeAborted("the download of this layer did not complete")
            item = self._queue.get()
            if item is None:
                raise PipeAborted("the download of this layer did not complete")
            if item == _EOF:
                self._eof = True
                return 0
            self._chunk = memoryview(item)
        n = min(len(buffer), len(self._chunk))
        buffer[:n] = self._chunk[:n]
        self._chunk = self._chunk[n:]
        return n

    def drain(self) -> None:
        """Read and drop whatever is left, to the end of the stream."""
        scratch = bytearray(1 << 20)
        while self.readinto(memoryview(scratch)):
            pass

    def close(self) -> None:
        """The reader is done: the writer's puts return at once from now on."""
        self._reader_gone = True
        while True:  # unblock a writer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        super().close()
