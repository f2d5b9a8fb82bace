"""The Docker API's stream formats: stdcopy's multiplexed frames and JSON message streams.

Multiplexed frames (attach, exec and logs without a TTY): an 8-byte header ``[stream, 0, 0, 0,
size (uint32, big-endian)]`` then ``size`` bytes; stream 0 stdin, 1 stdout, 2 stderr,
3 the daemon's own error (``systemerr``).

JSON messages (pull, push, load, build, ...): one JSON object per line, ending in ``\\r\\n``
as dockerd's stream formatter writes them: ``{"status": ..., "id": ...,
"progressDetail": {"current": ..., "total": ...}, "progress": "[==>  ] 1MB/3MB"}``, a final
``{"errorDetail": {"message": ...}, "error": ...}`` on failure, ``{"aux": ...}`` for results.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from servin.engine.server.docker.responses import dump_json
from servin.humanize import human_size

STDIN, STDOUT, STDERR, SYSTEMERR = 0, 1, 2, 3

_HEADER = struct.Struct(">BxxxI")
HEADER_SIZE = _HEADER.size
# dockerd's stdcopy refuses frames it would have to buffer beyond this; so do we.
MAX_FRAME = 32 * 1024 * 1024 + 64 * 1024

Write = Callable[[bytes], Awaitable[None]]


def frame_header(stream: int, size: int) -> bytes:
    """The 8-byte header of a frame of ``size`` bytes on ``stream``."""
    return _HEADER.pack(stream, size)


def encode_frame(stream: int, data: bytes) -> bytes:
    """One whole frame."""
    return _HEADER.pack(stream, len(data)) + data


class MuxWriter:
    """Writes frames through ``write`` (a ResponseStream's or a HijackWriter's).

    ``add`` gathers frames and ``flush`` sends them as one write, so many small lines (logs)
    cost one chunk and one system call; ``write`` sends one frame at once.
    """

    __slots__ = ("_parts", "_size", "_write", "flush_at")

    def __init__(self, write: Write, flush_at: int = 64 * 1024) -> None:
        self._write = write
        self._parts: list[bytes] = []
        self._size = 0
        self.flush_at = flush_at

    async def write(self, stream: int, data: bytes) -> None:
        """Send one frame now (after anything gathered)."""
        self.add(stream, data)
        await self.flush()

    def add(self, stream: int, data: bytes) -> None:
        """Gather a frame (empty data is skipped: a zero-size frame means nothing)."""
        if not data:
            return
        self._parts.append(_HEADER.pack(stream, len(data)))
        self._parts.append(data)
        self._size += len(data) + HEADER_SIZE

    @property
    def pending(self) -> int:
        """Bytes gathered and not yet sent."""
        return self._size

    async def add_and_maybe_flush(self, stream: int, data: bytes) -> None:
        """``add``, then ``flush`` once ``flush_at`` bytes are gathered."""
        self.add(stream, data)
        if self._size >= self.flush_at:
            await self.flush()

    async def flush(self) -> None:
        """Send what was gathered as one write."""
        if not self._parts:
            return
        data = b"".join(self._parts)
        self._parts.clear()
        self._size = 0
        await self._write(data)


class FrameError(ValueError):
    """The bytes are not a valid multiplexed stream."""


class FrameDecoder:
    """Incremental decoder of multiplexed frames: ``feed`` bytes, get (stream, payload)."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The frames completed by ``data``."""
        buf = self._buffer
        buf += data
        out: list[tuple[int, bytes]] = []
        pos = 0
        while len(buf) - pos >= HEADER_SIZE:
            stream, size = _HEADER.unpack_from(buf, pos)
            if stream > SYSTEMERR:
                raise FrameError(f"unknown stream {stream} in a multiplexed stream")
            if size > MAX_FRAME:
                raise FrameError(f"frame of {size} bytes is too large")
            end = pos + HEADER_SIZE + size
            if end > len(buf):
                break
            out.append((stream, bytes(buf[pos + HEADER_SIZE:end])))
            pos = end
        del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buffer)


async def read_frames(read: Callable[[int], Awaitable[bytes]],
                      size: int = 64 * 1024) -> AsyncIterator[tuple[int, bytes]]:
    """Frames from an async ``read(n)`` (b"" at end); FrameError when the stream ends inside
    a frame."""
    decoder = FrameDecoder()
    while True:
        data = await read(size)
        if not data:
            if decoder.pending:
                raise FrameError("the stream ended in the middle of a frame")
            return
        for frame in decoder.feed(data):
            yield frame


def demultiplex(data: bytes) -> list[tuple[int, bytes]]:
    """Every frame of a complete multiplexed byte string."""
    decoder = FrameDecoder()
    frames = decoder.feed(data)
    if decoder.pending:
        raise FrameError("the data ends in the middle of a frame")
    return frames


def progress_text(current: int, total: int) -> str:
    """dockerd's progress string for a message: ``[=====>      ]  1.2MB/3.4MB`` (the CLI
    draws its own bar from progressDetail; this is what non-CLI clients print)."""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current, 4):>8}"
    percent = min(int(current / total * 100) // 2, 50)
    bar = f"[{'=' * percent}>{' ' * (50 - percent)}] "
    if current > total:
        return f"{bar}{human_size(current, 4):>8}"
    return f"{bar}{human_size(current, 4):>8}/{human_size(total, 4)}"


class JSONMessages:
    """A stream of docker JSON messages written through ``write``."""

    __slots__ = ("_write", "errored")

    def __init__(self, write: Write) -> None:
        self._write = write
        self.errored = False

    async def send(self, message: dict[str, Any]) -> None:
        """One message as it is."""
        await self._write(dump_json(message)[:-1] + b"\r\n")

    async def status(self, status: str, id: str = "") -> None:
        """``{"status": ..., "id": ...}``: a line such as "Pulling fs layer"."""
        message: dict[str, Any] = {"status": status}
        if id:
            message["id"] = id
        await self.send(message)

    async def progress(self, status: str, id: str, current: int, total: int) -> None:
        """A progress update of one item (a layer): status, progressDetail and text."""
        detail: dict[str, int] = {}
        if current:
            detail["current"] = current
        if total:
            detail["total"] = total
        message: dict[str, Any] = {"status": status, "progressDetail": detail}
        text = progress_text(current, total)
        if text:
            message["progress"] = text
        message["id"] = id
        await self.send(message)

    async def stream(self, text: str) -> None:
        """``{"stream": ...}``: build output."""
        await self.send({"stream": text})

    async def aux(self, value: Any) -> None:
        """``{"aux": ...}``: a result for the client (a pushed digest, a built image ID)."""
        await self.send({"aux": value})

    async def error(self, message: str) -> None:
        """The final error: ``{"errorDetail": {"message": ...}, "error": ...}``."""
        self.errored = True
        await self.send({"errorDetail": {"message": message}, "error": message})
