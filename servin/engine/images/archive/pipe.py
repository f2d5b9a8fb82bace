"""Bounded byte pipes between the event loop (gRPC streams) and a worker thread (tarfile).

``load`` parses a tar stream with ``tarfile`` in a worker thread while the gRPC handler
receives chunks; ``save`` writes a tar stream in a worker thread while the handler sends
chunks. A small bounded queue in between keeps memory flat (a few chunks, never the
archive) and gives back-pressure both ways. Either side can close the pipe: the other then
stops at its next read or write instead of blocking forever.
"""

from __future__ import annotations

import queue
import threading

from servin.errors import Cancelled

_DEPTH = 8
_POLL = 0.2  # seconds a blocked side waits before it checks whether the pipe was closed
CHUNK = 1 << 20


class _Pipe:
    def __init__(self) -> None:
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=_DEPTH)
        self._closed = threading.Event()

    def _put(self, item: bytes | None) -> None:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue
        raise Cancelled("the other end of the stream went away")

    def _get(self) -> bytes | None:
        while True:
            try:
                return self._queue.get(timeout=_POLL)
            except queue.Empty:
                if self._closed.is_set():
                    raise Cancelled("the other end of the stream went away") from None

    def close(self) -> None:
        """Stop the pipe: the blocked or next read/write on either side raises Cancelled."""
        self._closed.set()


class ChunkReader(_Pipe):
    """The worker thread reads (``read``) what the event loop feeds (``feed``, ``end``)."""

    def __init__(self) -> None:
        super().__init__()
        self._chunk = b""
        self._offset = 0
        self._eof = False

    def feed(self, data: bytes) -> None:
        """Queue a chunk (blocking while the queue is full: call it in a thread)."""
        self._put(data)

    def end(self) -> None:
        """No more data: the reader sees end of file once the queue drains."""
        self._put(None)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all that is left with -1); b"" only at end of stream."""
        parts: list[bytes] = []
        want = n
        while want != 0:
            if self._offset >= len(self._chunk):
                if self._eof:
                    break
                chunk = self._get()
                if chunk is None:
                    self._eof = True
                    break
                self._chunk, self._offset = chunk, 0
                continue
            end = len(self._chunk) if want < 0 else min(len(self._chunk), self._offset + want)
            parts.append(self._chunk[self._offset:end])
            if want > 0:
                want -= end - self._offset
            self._offset = end
        return b"".join(parts)


class ChunkWriter(_Pipe):
    """The worker thread writes (``write``, ``finish``); the event loop takes ``next_chunk``."""

    def __init__(self) -> None:
        super().__init__()
        self._pending = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        """Buffer ``data``; full chunks are queued (blocking while the reader is behind)."""
        self._pending += data
        while len(self._pending) >= CHUNK:
            self._put(bytes(self._pending[:CHUNK]))
            del self._pending[:CHUNK]
        return len(data)

    def flush(self) -> None:
        """Nothing to do: chunks are queued as they fill."""

    def finish(self) -> None:
        """Queue what is buffered and the end marker."""
        if self._pending:
            self._put(bytes(self._pending))
            self._pending.clear()
        self._put(None)

    def next_chunk(self) -> bytes | None:
        """The next chunk, or None at the end (blocking: call it in a thread)."""
        return self._get()
