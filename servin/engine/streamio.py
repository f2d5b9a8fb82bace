"""Bridges between async byte streams and blocking file-like code in worker threads.

Tar work (cp, export, volume backups, image save) runs in threads; these adapt an async
iterator of chunks (however a door received them) into a readable file for a thread, and a
thread's writes into an async iterator of chunks, with a bounded queue so a slow client slows
the producer instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import queue
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, BinaryIO, cast

CHUNK = 256 * 1024
_DONE = object()


def reader(chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> BinaryIO:
    """A readable binary file (for a worker thread) over an async iterator of byte chunks."""
    # A RawIOBase, which tarfile and shutil read as any binary file.
    return cast(BinaryIO, AsyncReader(chunks, loop))


class AsyncReader(io.RawIOBase):
    """A readable file (for a worker thread) over an async iterator of byte chunks."""

    def __init__(self, chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._chunks = chunks
        self._loop = loop
        self._buf = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        while not self._buf and not self._eof:
            future = asyncio.run_coroutine_threadsafe(self._next(), self._loop)
            chunk = future.result()
            if chunk is None:
                self._eof = True
            else:
                self._buf = chunk
        n = min(len(buf), len(self._buf))
        buf[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    async def _next(self) -> bytes | None:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return None


class _QueueWriter(io.RawIOBase):
    def __init__(self, q: queue.Queue[Any], cancelled: threading.Event) -> None:
        self._q = q
        self._cancelled = cancelled
        self._pending = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self._cancelled.is_set():
            raise BrokenPipeError("the client went away")
        self._pending += data
        if len(self._pending) >= CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._pending:
            self._q.put(bytes(self._pending))
            self._pending.clear()


async def stream_from_thread(produce: Callable[[BinaryIO], Any]) -> AsyncIterator[bytes]:
    """Run ``produce(out)`` in a thread; yield what it writes to ``out`` as chunks. An
    exception in ``produce`` is raised here after the chunks written before it."""
    q: queue.Queue[Any] = queue.Queue(maxsize=8)
    cancelled = threading.Event()

    def run() -> None:
        writer = _QueueWriter(q, cancelled)
        try:
            produce(writer)  # type: ignore[arg-type]  # a RawIOBase writes as a binary file
            writer.flush()
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)

    task = asyncio.get_running_loop().run_in_executor(None, run)
    try:
        while True:
            item = await asyncio.to_thread(q.get)
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancelled.set()
        # Unblock a producer waiting on a full queue, then wait for it to finish.
        while not task.done():
            with contextlib.suppress(queue.Empty):
                q.get_nowait()
            await asyncio.sleep(0.01)
