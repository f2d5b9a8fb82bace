"""Byte transports under the streaming protocols, and the small stream interfaces over them.

A SPDY session runs over a TCP (or TLS) connection after an HTTP upgrade, or over the binary
messages of a WebSocket (``SPDY/3.1+portforward.k8s.io``); both look like a ``ByteTransport``.
Remote-command and port-forward code reads and writes ``InStream``/``OutStream`` objects, which
a SPDY stream and a WebSocket channel both provide.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

READ_SIZE = 256 * 1024


class ByteTransport(Protocol):
    """An ordered, reliable byte pipe.

    ``write`` only buffers (synchronously, so callers never reorder frames); ``drain`` waits
    for the buffer to empty enough. ``read`` returns b"" at the end.
    """

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    async def read(self) -> bytes: ...

    def close(self) -> None: ...


class InStream(Protocol):
    """Bytes from the client: ``read`` returns b"" at the end (a half-close or a reset)."""

    async def read(self) -> bytes: ...

    @property
    def half_closed(self) -> bool:
        """True once the client ended the stream on purpose (not by vanishing)."""
        ...


class OutStream(Protocol):
    """Bytes to the client: ``close`` half-closes (idempotent)."""

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


class StreamClosedError(ConnectionError):
    """The stream or its connection is gone; the write was not delivered."""


class Activity:
    """When a connection last moved a byte (for the idle timeout)."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def touch(self) -> None:
        self.last = time.monotonic()

    def idle_for(self) -> float:
        return time.monotonic() - self.last


class SocketTransport:
    """A ByteTransport over an asyncio stream pair (the upgraded HTTP connection)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 activity: Activity, initial: bytes = b"") -> None:
        self._reader = reader
        self._writer = writer
        self._activity = activity
        self._initial = initial

    def write(self, data: bytes) -> None:
        if data and not self._writer.is_closing():
            self._writer.write(data)
            self._activity.touch()

    async def drain(self) -> None:
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise StreamClosedError(str(exc)) from None

    async def read(self) -> bytes:
        if self._initial:
            data, self._initial = self._initial, b""
            return data
        try:
            data = await self._reader.read(READ_SIZE)
        except (ConnectionError, OSError):
            return b""
        if data:
            self._activity.touch()
        return data

    def close(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()
