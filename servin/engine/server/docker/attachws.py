"""``GET /containers/{name}/attach/ws``: attach over a WebSocket (for browsers).

The handshake and framing are wsproto's: the upgrade request h11 has parsed is handed to
wsproto as it came, its ``101 Switching Protocols`` goes out as the hijack's head, then each
message from the client is stdin and the container's output goes back as binary messages,
unframed (stdout and stderr together, as dockerd sends them), after the log if ``logs``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    TextMessage,
)
from wsproto.events import Request as WSRequest
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from servin.engine.containers.streams import AttachOptions
from servin.engine.engine import CoreAPI
from servin.engine.server.docker import params
from servin.engine.server.docker.attach import relay_session
from servin.engine.server.docker.http import HijackWriter, Request, Response
from servin.engine.server.docker.router import Router
from servin.errors import InvalidArgument


def _request_bytes(req: Request) -> bytes:
    """The upgrade request as it came (h11 parsed it already; wsproto reads it again)."""
    lines = [f"{req.method} ".encode() + req.target + b" HTTP/1.1"]
    lines += [f"{k}: {v}".encode("latin-1") for k, v in req.headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


class _Socket:
    """One server-side WebSocket over a hijacked connection."""

    def __init__(self, ws: WSConnection, writer: HijackWriter) -> None:
        self.ws = ws
        self.writer = writer

    async def send(self, data: bytes) -> None:
        if data and self.ws.state is ConnectionState.OPEN:
            await self.writer.write(self.ws.send(BytesMessage(data=data)))

    async def close(self) -> None:
        if self.ws.state is ConnectionState.OPEN:
            with contextlib.suppress(LocalProtocolError):
                await self.writer.write(self.ws.send(CloseConnection(code=1000)))

    async def messages(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The payloads of the client's messages (text as UTF-8); ends at its close."""
        async for data in chunks:
            try:
                self.ws.receive_data(data)
                events = list(self.ws.events())
            except RemoteProtocolError:
                return
            for event in events:
                if isinstance(event, BytesMessage):
                    yield bytes(event.data)
                elif isinstance(event, TextMessage):
                    yield event.data.encode("utf-8")
                elif isinstance(event, Ping):
                    await self.writer.write(self.ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    if self.ws.state is not ConnectionState.CLOSED:
                        await self.writer.write(self.ws.send(event.response()))
                    return


class AttachWebSocketRoutes:
    """GET /containers/{name}/attach/ws"""

    def __init__(self, core: CoreAPI) -> None:
        self.core = core

    def register(self, router: Router) -> None:
        """Declare the route."""
        router.add("GET", "/containers/{name}/attach/ws", self.attach_ws)

    async def attach_ws(self, req: Request) -> Response | None:
        """?stream=&logs=&stdin=&stdout=&stderr=&detachKeys="""
        c = await self.core.containers.get(req.params["name"])
        stream = params.bool_value(req, "stream")
        logs = params.bool_value(req, "logs")
        stdin = params.bool_value(req, "stdin")
        stdout = params.bool_value(req, "stdout")
        stderr = params.bool_value(req, "stderr")
        ws = WSConnection(ConnectionType.SERVER)
        try:
            ws.receive_data(_request_bytes(req))
            event = next(ws.events(), None)
        except RemoteProtocolError as exc:
            raise InvalidArgument(f"not a WebSocket upgrade request: {exc}") from None
        if not isinstance(event, WSRequest):
            raise InvalidArgument("not a WebSocket upgrade request")
        head = ws.send(AcceptConnection())
        session = None
        close_stdin = c.config.stdin_once and not c.config.tty
        if stream:
            session = await self.core.attach.attach(c.id, AttachOptions(
                stdin=stdin, stdout=stdout, stderr=stderr,
                detach_keys=req.query_value("detachKeys"), close_stdin=close_stdin))
        try:
            conn = await req.hijack(head=head)
            sock = _Socket(ws, conn.writer)
            if logs and (stdout or stderr):
                async for chunk in self.core.logs.read(c.id, stdout=stdout, stderr=stderr):
                    await sock.send(chunk.data)
            if session is not None:

                async def write(_: int, data: bytes) -> None:
                    await sock.send(data)

                pending, session = session, None
                await relay_session(pending, sock.messages(aiter(conn.reader)), write,
                                    end_on_eof=not close_stdin)
            await sock.close()
            await conn.writer.drain()
        finally:
            if session is not None:
                await session.close()
        return None
