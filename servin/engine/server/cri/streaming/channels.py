"""The Kubernetes channel protocol over a WebSocket (``channel.k8s.io`` and its relatives).

Each message carries one channel: binary protocols prefix the payload with the channel number
as one byte; base64 protocols send text messages whose first character is ``'0' + channel`` and
whose rest is the base64 of the payload. ``v5.channel.k8s.io`` adds a close signal from the
client: a binary message ``[255, channel]`` half-closes that channel (stdin's end of input).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging

from servin.engine.server.cri.streaming.transport import StreamClosedError
from servin.engine.server.cri.streaming.wssession import WsSession

log = logging.getLogger(__name__)

CLOSE_SIGNAL = 255
HIGH_WATER = 1024 * 1024


class ChannelReader:
    """What the client sends on one channel (an InStream)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._readable = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._eof = False
        self.half_closed = False  # the client sent the close signal

    async def read(self) -> bytes:
        while not self._buf:
            if self._eof:
                return b""
            self._readable.clear()
            await self._readable.wait()
        data = bytes(self._buf)
        self._buf.clear()
        self._drained.set()
        return data

    async def _put(self, data: bytes) -> None:
        if self._eof:
            return
        self._buf += data
        self._readable.set()
        if len(self._buf) >= HIGH_WATER:
            # Back-pressure: stop reading the websocket until the consumer catches up.
            self._drained.clear()
            await self._drained.wait()

    def _end(self) -> None:
        self._eof = True
        self._readable.set()
        self._drained.set()


class ChannelWriter:
    """What the server sends on one channel (an OutStream); writes to an ignored channel vanish."""

    def __init__(self, session: ChannelSession, number: int, enabled: bool) -> None:
        self._session = session
        self.number = number
        self.enabled = enabled

    async def write(self, data: bytes) -> None:
        if self.enabled:
            await self._session.send(self.number, data)

    async def close(self) -> None:
        """Channels cannot be half-closed by the server; the connection's close ends them."""


class ChannelSession:
    """Demultiplexes one WebSocket into numbered channels."""

    def __init__(self, ws: WsSession, *, base64_codec: bool, readable: set[int],
                 writable: set[int], close_signal: bool) -> None:
        self.ws = ws
        self.base64 = base64_codec
        self.close_signal = close_signal
        self._readers = {n: ChannelReader() for n in readable}
        self._writers = {n: ChannelWriter(self, n, n in writable)
                         for n in set(writable) | set(readable)}

    def reader(self, number: int) -> ChannelReader:
        return self._readers[number]

    def writer(self, number: int) -> ChannelWriter:
        if number not in self._writers:
            self._writers[number] = ChannelWriter(self, number, False)
        return self._writers[number]

    async def send(self, number: int, data: bytes) -> None:
        if self.base64:
            await self.ws.send(chr(ord("0") + number) + base64.b64encode(data).decode())
        else:
            await self.ws.send(bytes([number]) + data)

    async def run(self) -> None:
        """Read messages until the client closes; every reader then sees its end."""
        try:
            while True:
                msg = await self.ws.receive()
                if msg is None:
                    return
                if not msg:
                    continue
                if isinstance(msg, str):
                    msg = msg.encode("latin-1", "replace")
                if self.close_signal and msg[0] == CLOSE_SIGNAL:
                    if len(msg) != 2:
                        log.info("websocket close signal of %d bytes: closing", len(msg))
                        return
                    reader = self._readers.get(msg[1])
                    if reader is not None:
                        reader.half_closed = True
                        reader._end()
                    continue
                number = msg[0] - ord("0") if self.base64 else msg[0]
                reader = self._readers.get(number)
                if reader is None:
                    continue  # a channel this protocol does not read, as the kubelet does
                payload = msg[1:]
                if self.base64:
                    try:
                        payload = base64.b64decode(payload, validate=True)
                    except (binascii.Error, ValueError):
                        log.info("bad base64 on channel %d: ignored", number)
                        continue
                await reader._put(payload)
        finally:
            for reader in self._readers.values():
                reader._end()

    async def close(self) -> None:
        """Close the websocket normally (1000: clients read it as the end of every stream)."""
        for reader in self._readers.values():
            reader._end()
        with contextlib.suppress(StreamClosedError):
            await self.ws.close()
