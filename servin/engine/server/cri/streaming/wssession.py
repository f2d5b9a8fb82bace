"""WebSocket (RFC 6455) server sessions on wsproto, after the HTTP handshake.

The handshake itself is answered from the h11 request (the server parsed it already); this
module computes the accept key and then runs wsproto's post-handshake connection over the
socket: messages in and out, pings answered, close handshake.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.utilities import LocalProtocolError

from servin.engine.server.cri.streaming.transport import ByteTransport, StreamClosedError

log = logging.getLogger(__name__)

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_MESSAGE = 16 * 1024 * 1024
CLOSE_NORMAL = 1000
CLOSE_TOO_BIG = 1009


def accept_key(client_key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2)."""
    digest = hashlib.sha1(client_key.strip().encode() + _GUID).digest()
    return base64.b64encode(digest).decode()


class WsSession:
    """Whole messages in and out of one WebSocket connection (server side)."""

    def __init__(self, transport: ByteTransport) -> None:
        self.transport = transport
        self._ws = Connection(ConnectionType.SERVER)
        self._partial: list[bytes | bytearray | str] = []
        self._partial_size = 0
        self._pending: list[bytes | str] = []
        self.closed = False

    async def receive(self) -> bytes | str | None:
        """The next whole message (bytes or str); None once the connection is closed."""
        while not self._pending:
            if self.closed:
                return None
            data = await self.transport.read()
            self._ws.receive_data(data or None)
            self._process()
            if not data:
                self.closed = True
            await self._flush()
        return self._pending.pop(0)

    def _process(self) -> None:
        for event in self._ws.events():
            if isinstance(event, BytesMessage | TextMessage):
                self._partial.append(event.data)
                self._partial_size += len(event.data)
                if self._partial_size > MAX_MESSAGE:
                    self._close_now(CLOSE_TOO_BIG, "message too big")
                    return
                if event.message_finished:
                    joined: bytes | str
                    if isinstance(event, BytesMessage):
                        joined = b"".join(bytes(p) for p in self._partial if not isinstance(p, str))
                    else:
                        joined = "".join(p for p in self._partial if isinstance(p, str))
                    self._pending.append(joined)
                    self._partial.clear()
                    self._partial_size = 0
            elif isinstance(event, Ping):
                self._write(event.response())
            elif isinstance(event, CloseConnection):
                if self._ws.state is ConnectionState.REMOTE_CLOSING:
                    self._write(event.response())
                self.closed = True
                return

    def _write(self, event: object) -> None:
        try:
            self.transport.write(self._ws.send(event))  # type: ignore[arg-type]  # a wsproto event
        except LocalProtocolError:
            self.closed = True

    def _close_now(self, code: int, reason: str) -> None:
        if self._ws.state is ConnectionState.OPEN:
            self._write(CloseConnection(code=code, reason=reason))
        self.closed = True

    async def _flush(self) -> None:
        with contextlib.suppress(StreamClosedError):
            await self.transport.drain()

    async def send(self, data: bytes | str) -> None:
        """Send one message (bytes: binary, str: text)."""
        if self.closed or self._ws.state is not ConnectionState.OPEN:
            raise StreamClosedError("the websocket is closed")
        event = BytesMessage(data=data) if isinstance(data, bytes) else TextMessage(data=data)
        self.transport.write(self._ws.send(event))
        await self.transport.drain()

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Start the close handshake (if still open), flush, and drop the connection."""
        self._close_now(code, reason)
        await self._flush()
        self.transport.close()


class WsTunnelTransport:
    """A ByteTransport over a WebSocket's binary messages (SPDY tunnelled in a websocket)."""

    def __init__(self, ws: WsSession) -> None:
        self._ws = ws

    def write(self, data: bytes) -> None:
        if data and not self._ws.closed and self._ws._ws.state is ConnectionState.OPEN:
            self._ws.transport.write(self._ws._ws.send(BytesMessage(data=data)))

    async def drain(self) -> None:
        await self._ws.transport.drain()

    async def read(self) -> bytes:
        while True:
            msg = await self._ws.receive()
            if msg is None:
                return b""
            if isinstance(msg, bytes) and msg:
                return msg
            # Text messages have no place in the tunnel; empty ones carry nothing.

    def close(self) -> None:
        self._ws._close_now(CLOSE_NORMAL, "")
        self._ws.transport.close()
