"""A small HTTP/1.1 server on h11 over asyncio streams, made for the Docker Engine API.

Why not aiohttp: attach and exec hijack the connection (``101 UPGRADED``, then raw bytes both
ways, including the client's half-close), and chunked uploads must stream. h11 parses and
frames; this module owns the socket, so after a hijack the bytes are the handler's.

One ``_Connection`` per client runs requests one after the other (keep-alive). For each
request it builds a ``Request`` and awaits the application (the router); the application
answers in one of three ways:

- returns a ``Response`` (status, headers, whole body);
- calls ``await req.stream(...)`` and writes chunks (``ResponseStream``), then returns None;
- calls ``await req.hijack(...)`` and talks raw bytes (``Hijacked``), then returns None.

Request bodies are read as they arrive (``req.read()``, ``req.chunks()``, ``req.body()``),
never buffered whole unless asked. ``Expect: 100-continue`` is answered when the handler
first reads the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from functools import lru_cache
from ssl import SSLContext
from typing import Any
from urllib.parse import parse_qs, unquote

import h11

from servin.engine.server.docker.tls import TLSReader, TLSWriter, accept_tls
from servin.engine.server.docker.versions import version_at_least
from servin.errors import InvalidArgument

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024
# Request heads larger than this are refused (Go's http.Server default is 1 MB; X-Registry-
# Config headers for builds can be large).
MAX_HEAD = 1024 * 1024
# What is drained of a body the handler did not read before the connection is reused;
# beyond it the connection is closed instead.
MAX_DRAIN = 256 * 1024
# Pipelined bytes kept while a streamed response is being written.
MAX_PIPELINED = 1024 * 1024
# asyncio's transport buffer above which a stream write waits for the client to read.
WRITE_HIGH_WATER = 256 * 1024

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"

Headers = list[tuple[bytes, bytes]]
App = Callable[["Request"], Awaitable["Response | None"]]

_REASONS = {
    100: b"Continue", 101: b"Switching Protocols", 200: b"OK", 201: b"Created",
    204: b"No Content", 206: b"Partial Content", 301: b"Moved Permanently", 304: b"Not Modified",
    400: b"Bad Request", 401: b"Unauthorized", 403: b"Forbidden", 404: b"Not Found",
    405: b"Method Not Allowed", 406: b"Not Acceptable", 408: b"Request Timeout",
    409: b"Conflict", 410: b"Gone", 411: b"Length Required", 413: b"Payload Too Large",
    415: b"Unsupported Media Type", 431: b"Request Header Fields Too Large",
    499: b"Client Closed Request", 500: b"Internal Server Error", 501: b"Not Implemented",
    502: b"Bad Gateway", 503: b"Service Unavailable", 504: b"Gateway Timeout",
    507: b"Insufficient Storage",
}


def reason(status: int) -> bytes:
    """The standard reason phrase of a status code."""
    return _REASONS.get(status, b"")


class Response:
    """A whole response: status, extra headers and the complete body."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        *,
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers


class ClientGone(Exception):
    """The client closed the connection while a response was being written."""


class Request:
    """One HTTP request, with the means to read its body and to answer it.

    ``path`` is the decoded path without the ``/vX.Y`` prefix once the router has matched it;
    ``params`` the route's path parameters; ``api_version`` the version the client asked for
    (or the server's own when it named none).
    """

    __slots__ = (
        "_body_done",
        "_conn",
        "_headers",
        "_leftover",
        "_query",
        "_query_string",
        "api_version",
        "http_version",
        "method",
        "params",
        "path",
        "raw_path",
        "target",
    )

    def __init__(self, conn: _Connection, event: h11.Request) -> None:
        self._conn = conn
        self.method: str = event.method.decode("ascii", "replace")
        self.target: bytes = event.target
        self.http_version: bytes = event.http_version
        # h11's Headers is a list of (name, value) pairs, typed as a Sequence
        self._headers: list[tuple[bytes, bytes]] = event.headers  # type: ignore[assignment]
        raw, _, qs = event.target.partition(b"?")
        path = raw.decode("latin-1")
        self.raw_path: str = unquote(path, "utf-8", "replace") if "%" in path else path
        self.path: str = self.raw_path
        self._query_string = qs
        self._query: dict[str, list[str]] | None = None
        self.params: dict[str, str] = {}
        self.api_version: str = ""
        self._leftover = b""
        self._body_done = False

    # -- headers and query -------------------------------------------------------------

    def header(self, name: str, default: str = "") -> str:
        """The first value of a header (names are case-insensitive; Go's ``Header.Get``),
        or ``default``."""
        key = name.lower().encode("ascii")
        for k, v in self._headers:
            if k == key:
                return v.decode("latin-1")
        return default

    def has_header(self, name: str) -> bool:
        """Whether the request carries the header at all (even empty)."""
        key = name.lower().encode("ascii")
        return any(k == key for k, _ in self._headers)

    @property
    def headers(self) -> list[tuple[str, str]]:
        """Every header as (lower-case name, value), in order."""
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self._headers]

    @property
    def query(self) -> dict[str, list[str]]:
        """The query string's values by key (parsed once, on first use)."""
        if self._query is None:
            qs = self._query_string.decode("latin-1")
            self._query = parse_qs(qs, keep_blank_values=True) if qs else {}
        return self._query

    def query_value(self, key: str, default: str = "") -> str:
        """The first value of a query parameter, as Go's ``FormValue`` gives it."""
        values = self.query.get(key)
        return values[0] if values else default

    def peer_credentials(self) -> tuple[int, int, int] | None:
        """(pid, uid, gid) of the client on a unix socket (SO_PEERCRED), else None."""
        sock = self._conn.transport.get_extra_info("socket")
        if sock is None or sock.family != socket.AF_UNIX:
            return None
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", raw)
        return pid, uid, gid

    # -- the body ----------------------------------------------------------------------

    @property
    def body_done(self) -> bool:
        """True once the whole request body has been read."""
        return self._body_done

    async def read(self, max_bytes: int = READ_SIZE) -> bytes:
        """The next piece of the body (at most ``max_bytes``); b"" once it has all been read."""
        if self._leftover:
            piece, self._leftover = self._leftover[:max_bytes], self._leftover[max_bytes:]
            return piece
        if self._body_done:
            return b""
        data = await self._conn.next_body_data()
        if data is None:
            self._body_done = True
            return b""
        if len(data) > max_bytes:
            data, self._leftover = data[:max_bytes], data[max_bytes:]
        return data

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, piece by piece."""
        while True:
            data = await self.read()
            if not data:
                return
            yield data

    async def body(self, limit: int) -> bytes:
        """The whole body; InvalidArgument when it is longer than ``limit`` bytes."""
        parts: list[bytes] = []
        size = 0
        while True:
            data = await self.read()
            if not data:
                return b"".join(parts)
            size += len(data)
            if size > limit:
                raise InvalidArgument(f"request body is larger than {limit} bytes")
            parts.append(data)

    # -- answering ---------------------------------------------------------------------

    @property
    def responded(self) -> bool:
        """True once the status line went out (streamed or hijacked): errors can no longer
        become a response."""
        return self._conn.responded or self._conn.hijacked

    async def stream(
        self,
        status: int = 200,
        content_type: str | None = "application/json",
        headers: Iterable[tuple[str, str]] = (),
    ) -> ResponseStream:
        """Send the status and headers now and return a writer for the body (chunked).

        The response ends when the handler returns. A client that goes away meanwhile
        cancels the handler (as dockerd cancels the request's context).
        """
        return await self._conn.start_stream(self, status, content_type, headers)

    async def hijack(self, *, multiplexed: bool = False, head: bytes | None = None
                     ) -> Hijacked:
        """Take the connection over for raw bytes both ways (attach, exec start).

        With ``Upgrade`` in the request (docker CLI, docker-py) the answer is ``101 UPGRADED``
        (content type multiplexed-stream when ``multiplexed`` and API >= 1.42, else
        raw-stream); without it, older clients' ``200 OK`` with raw-stream. ``head`` replaces
        that answer with the handler's own (a WebSocket handshake). What remains of the
        request body is read first.
        """
        return await self._conn.hijack(self, multiplexed, head)


class ResponseStream:
    """The body of a streamed response: each ``write`` goes out at once as one chunk."""

    __slots__ = ("_conn", "closed")

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self.closed = False

    async def write(self, data: bytes) -> None:
        """Send ``data`` now (waits while the client is slow to read); ClientGone if it left."""
        if not data:
            return
        conn = self._conn
        if conn.transport.is_closing():
            raise ClientGone("the client closed the connection")
        conn.writer.writelines(conn.h11.send_with_data_passthrough(h11.Data(data=data)) or [])
        if conn.transport.get_write_buffer_size() > WRITE_HIGH_WATER:
            await self.flush()

    async def flush(self) -> None:
        """Wait until what was written has been handed to the kernel."""
        try:
            await self._conn.writer.drain()
        except ConnectionError as exc:
            raise ClientGone(str(exc)) from None


class HijackReader:
    """The client's bytes after a hijack; ``read`` returns b"" when it half-closed (stdin EOF)."""

    __slots__ = ("_buffered", "_reader")

    def __init__(self, buffered: bytes, reader: asyncio.StreamReader | TLSReader) -> None:
        self._buffered = buffered
        self._reader = reader

    async def read(self, max_bytes: int = 64 * 1024) -> bytes:
        """Up to ``max_bytes``; b"" at end of stream."""
        if self._buffered:
            piece, self._buffered = self._buffered[:max_bytes], self._buffered[max_bytes:]
            return piece
        try:
            return await self._reader.read(max_bytes)
        except ConnectionError:
            return b""

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        while True:
            data = await self.read()
            if not data:
                return
            yield data


class HijackWriter:
    """The way back to the client after a hijack."""

    __slots__ = ("_writer",)

    def __init__(self, writer: asyncio.StreamWriter | TLSWriter) -> None:
        self._writer = writer

    async def write(self, data: bytes) -> None:
        """Send ``data`` (waits while the client is slow to read); ClientGone if it left."""
        if self._writer.transport.is_closing():
            raise ClientGone("the client closed the connection")
        self._writer.write(data)
        if self._writer.transport.get_write_buffer_size() > WRITE_HIGH_WATER:
            try:
                await self._writer.drain()
            except ConnectionError as exc:
                raise ClientGone(str(exc)) from None

    async def drain(self) -> None:
        """Wait until everything written has been handed to the kernel."""
        try:
            await self._writer.drain()
        except ConnectionError as exc:
            raise ClientGone(str(exc)) from None

    def close_write(self) -> None:
        """Half-close: the client reads EOF while it may still send (TLS: no-op)."""
        transport = self._writer.transport
        if not transport.is_closing() and transport.can_write_eof():
            with contextlib.suppress(OSError):
                transport.write_eof()

    @property
    def closing(self) -> bool:
        """True once the connection is closed or closing."""
        return self._writer.transport.is_closing()


class Hijacked:
    """A hijacked connection as a (reader, writer) pair; the server closes it afterwards."""

    __slots__ = ("reader", "writer")

    def __init__(self, reader: HijackReader, writer: HijackWriter) -> None:
        self.reader = reader
        self.writer = writer


class _Connection:
    """One client connection: requests one after the other on h11."""

    def __init__(self, server: HTTPServer, reader: asyncio.StreamReader | TLSReader,
                 writer: asyncio.StreamWriter | TLSWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.transport = writer.transport
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.task: asyncio.Task[Any] | None = None
        self.hijacked = False
        self.responded = False  # the current request got its status line
        self.gone = False  # the client left while a streamed response was written
        self._watcher: asyncio.Task[None] | None = None

    async def run(self) -> None:
        self.task = asyncio.current_task()
        try:
            first = True
            while True:
                request = await self._next_request(first)
                if request is None:
                    return
                first = False
                try:
                    await self._serve(request)
                except asyncio.CancelledError:
                    if not self.gone:
                        raise
                    self.task.uncancel()  # type: ignore[union-attr]  # set when serving began
                    return
                if self.hijacked or not await self._next_cycle():
                    return
        except (ConnectionError, ClientGone, TimeoutError):
            pass
        except h11.LocalProtocolError as exc:  # a handler broke the framing: a bug
            log.error("docker api: bad response", extra={"error": str(exc)})
        finally:
            await self._stop_watcher()
            self._close()

    # -- reading -----------------------------------------------------------------------

    async def _next_request(self, first: bool) -> Request | None:
        """The next request's head, or None when the client closed, sent garbage or was
        too slow."""
        conn = self.h11
        loop = asyncio.get_running_loop()
        server = self.server
        # The whole head must arrive within header_timeout of the connection (first request)
        # or of its first byte; between requests an idle connection may wait idle_timeout.
        waiting_idle = not first and not conn.trailing_data[0]
        limit = server.idle_timeout if waiting_idle else server.header_timeout
        deadline = None if limit is None else loop.time() + limit
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._refuse(exc)
                return None
            if event is h11.NEED_DATA:
                try:
                    async with asyncio.timeout_at(deadline):
                        data = await self.reader.read(READ_SIZE)
                except TimeoutError:
                    return None
                if data and waiting_idle:
                    waiting_idle = False
                    deadline = loop.time() + server.header_timeout
                conn.receive_data(data)
                continue
            if type(event) is h11.Request:
                self.responded = False
                return Request(self, event)
            return None  # ConnectionClosed (or PAUSED on a broken cycle)

    def _refuse(self, exc: h11.RemoteProtocolError) -> None:
        """Answer a malformed request with a plain error before closing, when h11 allows."""
        if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        status = exc.error_status_hint or 400
        body = f"{reason(status).decode()}: {exc}\n".encode()
        try:
            head = self.h11.send(h11.Response(status_code=status, headers=[
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ], reason=reason(status)))
            self.writer.write(head + body)
        except h11.LocalProtocolError:
            pass

    async def next_body_data(self) -> bytes | None:
        """The next piece of the current request's body; None at its end."""
        conn = self.h11
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise InvalidArgument(f"malformed request body: {exc}") from None
            if type(event) is h11.Data:
                return bytes(event.data)
            if event is h11.NEED_DATA:
                if conn.they_are_waiting_for_100_continue:
                    self.writer.write(conn.send(h11.InformationalResponse(
                        status_code=100, headers=[], reason=b"Continue")))
                data = await self.reader.read(READ_SIZE)
                conn.receive_data(data)
                continue
            if type(event) is h11.ConnectionClosed:
                raise ClientGone("the client closed the connection in the middle of the body")
            return None  # EndOfMessage (or PAUSED after an Upgrade request's end)

    # -- answering ---------------------------------------------------------------------

    async def _serve(self, request: Request) -> None:
        try:
            response = await self.server.app(request)
        except ClientGone:
            self.gone = True
            return
        except Exception as exc:  # the application maps its own errors; this is a bug
            log.exception("docker api: unhandled error", extra={"path": request.raw_path})
            if self.responded or self.hijacked:
                raise ClientGone("aborting a broken response") from exc
            response = Response(500, b'{"message":"internal error"}\n',
                                content_type="application/json")
        await self._stop_watcher()
        if self.hijacked:
            return
        if response is not None:
            if self.responded:
                raise RuntimeError("a handler both streamed and returned a response")
            self._send_whole(request, response)
        elif not self.responded:
            raise RuntimeError(f"handler for {request.raw_path} sent no response")
        else:
            self.writer.writelines(
                self.h11.send_with_data_passthrough(h11.EndOfMessage()) or [])

    def _head(self, status: int, content_type: str | None,
              extra: Iterable[tuple[str, str]], length: int | None) -> bytes:
        """The response head. h11 sees only the framing headers (it decides chunked or not,
        keep-alive or close, and keeps its state); the others, checked once and encoded
        once per distinct set, are spliced into the bytes it returns."""
        framing, block = _split_headers(content_type, tuple(extra))
        if length is not None and not any(k == b"content-length" for k, _ in framing):
            framing = [*framing, (b"content-length", b"%d" % length)]
        head = self.h11.send(h11.Response(status_code=status, headers=framing,
                                          reason=reason(status)))
        assert head is not None and head.endswith(b"\r\n\r\n")
        return head[:-2] + self.server.header_block + block + b"\r\n"

    def _send_whole(self, request: Request, response: Response) -> None:
        body = response.body
        no_body = _no_body(response.status)
        parts = [self._head(response.status, response.content_type, response.headers,
                            None if no_body else len(body))]
        conn = self.h11
        if body and request.method != "HEAD" and not no_body:
            parts += conn.send_with_data_passthrough(h11.Data(data=body)) or []
        parts += conn.send_with_data_passthrough(h11.EndOfMessage()) or []
        self.writer.writelines(parts)
        self.responded = True

    async def start_stream(self, request: Request, status: int, content_type: str | None,
                           headers: Iterable[tuple[str, str]]) -> ResponseStream:
        if self.responded or self.hijacked:
            raise RuntimeError("the response has already been started")
        self.writer.write(self._head(status, content_type, tuple(headers), None))
        self.responded = True
        stream = ResponseStream(self)
        await stream.flush()
        if self._body_complete(request):
            # Nothing more is expected from the client until the response ends: a read now
            # sees only its going away (or pipelined requests, kept for later).
            self._watcher = asyncio.get_running_loop().create_task(self._watch())
        return stream

    def _body_complete(self, request: Request) -> bool:
        """Whether the whole request body has arrived (a body without length ends with an
        EndOfMessage h11 still holds: take it, without waiting for anything)."""
        if request.body_done or self.h11.their_state is h11.DONE:
            return True
        if request._leftover or self.h11.their_state is not h11.SEND_BODY:
            return False
        try:
            event = self.h11.next_event()
        except h11.RemoteProtocolError:
            return False
        if type(event) is h11.EndOfMessage:
            request._body_done = True
            return True
        if type(event) is h11.Data:
            request._leftover = bytes(event.data)
        return False

    async def _watch(self) -> None:
        pending = 0
        try:
            while True:
                data = await self.reader.read(READ_SIZE)
                if not data:
                    break
                pending += len(data)
                if pending > MAX_PIPELINED:
                    break
                self.h11.receive_data(data)
        except ConnectionError:
            pass
        self._watcher = None
        self.gone = True
        if self.task is not None:
            self.task.cancel()

    async def _stop_watcher(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def hijack(self, request: Request, multiplexed: bool,
                     own_head: bytes | None = None) -> Hijacked:
        if self.responded or self.hijacked:
            raise RuntimeError("the response has already been started")
        drained = 0
        while (data := await request.read()):
            drained += len(data)
            if drained > MAX_DRAIN:
                raise InvalidArgument("request body too large for an attach")
        buffered, _ = self.h11.trailing_data
        if own_head is not None:
            self.writer.write(own_head)
            self.hijacked = True
            self.responded = True
            return Hijacked(HijackReader(bytes(buffered), self.reader),
                            HijackWriter(self.writer))
        if request.has_header("upgrade"):
            content_type = RAW_STREAM
            if multiplexed and version_at_least(request.api_version, "1.42"):
                content_type = MULTIPLEXED_STREAM
            head = (f"HTTP/1.1 101 UPGRADED\r\nContent-Type: {content_type}\r\n"
                    "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        else:
            head = f"HTTP/1.1 200 OK\r\nContent-Type: {RAW_STREAM}\r\n\r\n"
        self.writer.write(head.encode("ascii"))
        self.hijacked = True
        self.responded = True
        return Hijacked(HijackReader(bytes(buffered), self.reader), HijackWriter(self.writer))

    async def _next_cycle(self) -> bool:
        """Get ready for the next request on this connection; False to close it."""
        conn = self.h11
        if conn.our_state is h11.MUST_CLOSE or conn.our_state is not h11.DONE:
            return False
        if conn.their_state is not h11.DONE:
            # The handler left (part of) the body unread: drain a little, else close.
            if conn.client_is_waiting_for_100_continue:
                return False
            drained = 0
            try:
                while (data := await self.next_body_data()) is not None:
                    drained += len(data)
                    if drained > MAX_DRAIN:
                        return False
            except (InvalidArgument, ClientGone):
                return False
            if conn.their_state is not h11.DONE:
                return False
        try:
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            return False
        if self.transport.get_write_buffer_size() > WRITE_HIGH_WATER:
            await self.writer.drain()
        return True

    def _close(self) -> None:
        transport = self.transport
        if transport.is_closing():
            return
        if self.hijacked and transport.can_write_eof():
            # FIN before close, so the client reads every byte before it sees the end.
            with contextlib.suppress(OSError):
                transport.write_eof()
        transport.close()


_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"connection"})


@lru_cache(maxsize=256)
def _split_headers(content_type: str | None, extra: tuple[tuple[str, str], ...]
                   ) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """(framing headers for h11, the other headers as wire bytes), for one header set."""
    framing: list[tuple[bytes, bytes]] = []
    lines: list[bytes] = []
    items = ((("Content-Type", content_type),) if content_type else ()) + extra
    for name, value in items:
        raw_name, raw_value = name.encode("latin-1"), value.encode("latin-1")
        if not _TOKEN.fullmatch(raw_name) or any(c in raw_value for c in b"\r\n\0"):
            raise ValueError(f"invalid response header {name!r}: {value!r}")
        if raw_name.lower() in _FRAMING:
            framing.append((raw_name.lower(), raw_value))
        else:
            lines.append(raw_name + b": " + raw_value + b"\r\n")
    return framing, b"".join(lines)


_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")


def _no_body(status: int) -> bool:
    return status == 204 or status == 304 or status < 200


class HTTPServer:
    """Serves ``app`` on any number of listeners; ``close()`` stops them and every connection."""

    def __init__(
        self,
        app: App,
        *,
        default_headers: Iterable[tuple[str, str]] = (),
        header_timeout: float = 60.0,
        idle_timeout: float | None = None,
    ) -> None:
        self.app = app
        # Sent with every response, encoded once.
        self.header_block = _split_headers(None, tuple(default_headers))[1]
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout
        self._servers: list[asyncio.base_events.Server] = []
        self._connections: set[asyncio.Task[Any]] = set()

    @property
    def connections(self) -> int:
        """How many client connections are open now."""
        return len(self._connections)

    async def handle(self, reader: asyncio.StreamReader | TLSReader,
                     writer: asyncio.StreamWriter | TLSWriter) -> None:
        """Serve one client connection until it ends (the listeners' callback)."""
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await _Connection(self, reader, writer).run()
        except asyncio.CancelledError:
            pass  # the server is closing
        except Exception:  # never let one connection's bug reach the loop's handler
            log.exception("docker api: connection failed")
            writer.transport.abort()
        finally:
            self._connections.discard(task)

    async def listen_unix(self, path: str, *, start: bool = True) -> asyncio.base_events.Server:
        """Bind a unix socket (created now; serving starts now or with ``start_serving``)."""
        server = await asyncio.start_unix_server(
            self.handle, path, limit=READ_SIZE, start_serving=start)
        self._servers.append(server)
        return server

    async def listen_tcp(self, host: str, port: int, *, ssl: SSLContext | None = None,
                         start: bool = True) -> asyncio.base_events.Server:
        """Bind a TCP address (TLS when ``ssl`` is given: done in ``tls.py``, which keeps a
        connection writable after the client's close_notify, as hijacks need)."""
        callback = self.handle if ssl is None else functools.partial(self._handle_tls, ssl)
        server = await asyncio.start_server(
            callback, host, port, limit=READ_SIZE, start_serving=start, reuse_address=True)
        self._servers.append(server)
        return server

    async def _handle_tls(self, context: SSLContext, raw_reader: asyncio.StreamReader,
                          raw_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            try:
                reader, writer = await accept_tls(context, raw_reader, raw_writer,
                                                  self.header_timeout)
            except (OSError, TimeoutError) as exc:
                log.debug("docker api: TLS handshake failed", extra={"error": str(exc)})
                raw_writer.close()
                return
            await self.handle(reader, writer)
        except asyncio.CancelledError:
            raw_writer.transport.abort()
        finally:
            self._connections.discard(task)

    async def start_serving(self) -> None:
        """Start accepting on every listener bound with ``start=False``."""
        for server in self._servers:
            await server.start_serving()

    async def close(self, grace: float = 3.0) -> None:
        """Stop listening, give running requests ``grace`` seconds, then cut them off."""
        for server in self._servers:
            server.close()
        if self._connections:
            _, pending = await asyncio.wait(set(self._connections), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=grace)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
