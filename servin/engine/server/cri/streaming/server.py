"""The CRI streaming server: the HTTP endpoint behind the URLs of Exec, Attach and PortForward.

The CRI servicer registers a request (``get_exec``/``get_attach``/``get_port_forward``) and
hands the returned absolute URL to the kubelet or crictl; the client connects there once,
within the token's lifetime, and upgrades the connection to SPDY/3.1 or to a WebSocket.
HTTP/1.1 is parsed with h11, WebSocket framing is wsproto's, SPDY is ours (spdy.py).

Refusals, as the kubelet's server: an unknown, spent or expired token is 404; a missing or
unusable ``X-Stream-Protocol-Version`` is 400 or 403 (with ``X-Accepted-Stream-Protocol-
Versions``); a request that is not an upgrade is 400.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import h11

from servin.engine.server.cri.streaming import remotecommand as rc
from servin.engine.server.cri.streaming.backend import StreamingBackend
from servin.engine.server.cri.streaming.channels import ChannelSession
from servin.engine.server.cri.streaming.portforward import (
    PROTOCOL as PORTFORWARD_PROTOCOL,
)
from servin.engine.server.cri.streaming.portforward import (
    TUNNEL_PROTOCOL,
    WS_CHANNEL_PROTOCOLS,
    SpdyPortForward,
    websocket_forward,
)
from servin.engine.server.cri.streaming.spdysession import SpdySession, SpdyStream
from servin.engine.server.cri.streaming.tokens import RequestCache
from servin.engine.server.cri.streaming.transport import Activity, ByteTransport, SocketTransport
from servin.engine.server.cri.streaming.wssession import WsSession, WsTunnelTransport, accept_key
from servin.errors import InvalidArgument, Unavailable

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 10010


@dataclass
class StreamingConfig:
    """Where and how the streaming server listens, and its limits (seconds)."""

    address: str = DEFAULT_ADDRESS
    port: int = DEFAULT_PORT
    tls_cert: str | None = None
    tls_key: str | None = None
    # The URLs' scheme://host:port; by default from the bound address.
    base_url: str | None = None
    token_ttl: float = 60.0
    max_in_flight: int = 1000
    stream_creation_timeout: float = 30.0
    # A session with no traffic this long is closed (the kubelet's default: 4 hours).
    idle_timeout: float = 4 * 3600.0
    # A session is closed after this long whatever it does (None: no limit).
    session_timeout: float | None = None
    # Time a client has to send its HTTP request.
    request_timeout: float = 30.0


@dataclass(frozen=True)
class ExecRequest:
    container_id: str
    cmd: tuple[str, ...]
    tty: bool = False
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True


@dataclass(frozen=True)
class AttachRequest:
    container_id: str
    tty: bool = False
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True


@dataclass(frozen=True)
class PortForwardRequest:
    pod_id: str
    ports: tuple[int, ...] = field(default_factory=tuple)


Request = ExecRequest | AttachRequest | PortForwardRequest


def _validate_stdio(container_id: str, tty: bool, stdin: bool, stdout: bool,
                    stderr: bool) -> None:
    if not container_id:
        raise InvalidArgument("missing required container_id")
    if tty and stderr:
        # With a TTY there is one output stream: stderr cannot be multiplexed.
        raise InvalidArgument("tty and stderr cannot both be true")
    if not (stdin or stdout or stderr):
        raise InvalidArgument("one of stdin, stdout, or stderr must be set")


class HttpRefusal(Exception):
    """A request the server answers with an HTTP error status instead of an upgrade."""

    def __init__(self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = list(headers)


class StreamingServer:
    """Serves exec, attach and port-forward sessions for the requests registered with it."""

    def __init__(self, backend: StreamingBackend, config: StreamingConfig | None = None) -> None:
        self.backend = backend
        self.config = config or StreamingConfig()
        self.cache: RequestCache[Request] = RequestCache(self.config.token_ttl,
                                                         self.config.max_in_flight)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self.base_url = ""

    # -- lifecycle
    async def start(self) -> None:
        """Bind and serve; ``base_url`` is then the URLs' prefix (with the real port)."""
        ctx = None
        if self.config.tls_cert or self.config.tls_key:
            if not (self.config.tls_cert and self.config.tls_key):
                raise InvalidArgument("streaming TLS needs both a certificate and a key")
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            try:
                ctx.load_cert_chain(self.config.tls_cert, self.config.tls_key)
            except (OSError, ssl.SSLError) as exc:
                raise InvalidArgument(f"streaming TLS certificate or key: {exc}") from None
        self._server = await asyncio.start_server(
            self._on_connection, self.config.address, self.config.port, ssl=ctx,
            reuse_address=True)
        port = self._server.sockets[0].getsockname()[1]
        if self.config.base_url:
            self.base_url = self.config.base_url.rstrip("/")
        else:
            host = self.config.address
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(host).version == 6:
                    host = f"[{host}]"
            self.base_url = f"{'https' if ctx else 'http'}://{host}:{port}"
        log.info("CRI streaming server on %s", self.base_url)

    async def stop(self) -> None:
        """Stop listening and end every session (their backends are closed)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    @property
    def active_connections(self) -> int:
        return len(self._connections)

    # -- registration (called by the CRI servicer)
    def get_exec(self, request: ExecRequest) -> str:
        """Register an Exec; the URL the client must use (once, before the token expires)."""
        _validate_stdio(request.container_id, request.tty, request.stdin, request.stdout,
                        request.stderr)
        if not request.cmd:
            raise InvalidArgument("missing required cmd")
        return self._url("exec", self.cache.insert(request))

    def get_attach(self, request: AttachRequest) -> str:
        """Register an Attach; the URL to use."""
        _validate_stdio(request.container_id, request.tty, request.stdin, request.stdout,
                        request.stderr)
        return self._url("attach", self.cache.insert(request))

    def get_port_forward(self, request: PortForwardRequest) -> str:
        """Register a PortForward; the URL to use."""
        if not request.pod_id:
            raise InvalidArgument("missing required pod_sandbox_id")
        for port in request.ports:
            if not 0 < port < 65536:
                raise InvalidArgument(f"invalid port {port}")
        return self._url("portforward", self.cache.insert(request))

    def _url(self, method: str, token: str) -> str:
        if not self.base_url:
            raise Unavailable("the CRI streaming server is not running (see the daemon's log)")
        return f"{self.base_url}/{method}/{token}"

    # -- connections
    async def _on_connection(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("streaming connection failed")
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        h = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        try:
            request = await asyncio.wait_for(self._read_request(h, reader),
                                             self.config.request_timeout)
        except (TimeoutError, h11.RemoteProtocolError, ConnectionError):
            return
        if request is None:
            return
        try:
            await self._dispatch(h, request, reader, writer)
        except HttpRefusal as exc:
            self._respond(h, writer, exc.status, exc.message, exc.headers)
            with contextlib.suppress(ConnectionError, OSError):
                await writer.drain()

    async def _read_request(self, h: h11.Connection,
                            reader: asyncio.StreamReader) -> h11.Request | None:
        request = None
        while True:
            event = h.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                h.receive_data(data)
                if not data and request is None:
                    return None
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                return request
            elif isinstance(event, h11.ConnectionClosed):
                return None

    def _respond(self, h: h11.Connection, writer: asyncio.StreamWriter, status: int,
                 message: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        body = (message + "\n").encode()
        hdrs = [("content-type", "text/plain; charset=utf-8"),
                ("x-content-type-options", "nosniff"), ("content-length", str(len(body))),
                ("connection", "close"), *headers]
        with contextlib.suppress(h11.LocalProtocolError):
            writer.write(h.send(h11.Response(status_code=status, headers=hdrs)))
            writer.write(h.send(h11.Data(data=body)))
            writer.write(h.send(h11.EndOfMessage()))

    async def _dispatch(self, h: h11.Connection, request: h11.Request,
                        reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target = urllib.parse.urlsplit(request.target.decode("latin-1"))
        parts = target.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] not in ("exec", "attach", "portforward"):
            raise HttpRefusal(404, "404 page not found")
        if request.method not in (b"GET", b"POST"):
            raise HttpRefusal(405, "405 method not allowed", [("allow", "GET, POST")])
        cached = self.cache.consume(parts[1])
        kinds = {"exec": ExecRequest, "attach": AttachRequest, "portforward": PortForwardRequest}
        if cached is None or not isinstance(cached, kinds[parts[0]]):
            raise HttpRefusal(404, "404 page not found")
        headers = _Headers(request.headers)
        query = urllib.parse.parse_qs(target.query)
        activity = Activity()
        if headers.is_websocket():
            await self._websocket(h, headers, cached, query, reader, writer, activity)
        else:
            await self._spdy(h, headers, cached, reader, writer, activity)

    # -- SPDY
    async def _spdy(self, h: h11.Connection, headers: _Headers, cached: Request,
                    reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    activity: Activity) -> None:
        supported = ((PORTFORWARD_PROTOCOL,) if isinstance(cached, PortForwardRequest)
                     else rc.SPDY_PROTOCOLS)
        version = negotiate_stream_protocol(headers.values("x-stream-protocol-version"),
                                            supported)
        if not ("upgrade" in headers.tokens("connection")
                and "spdy/3.1" in headers.tokens("upgrade")):
            raise HttpRefusal(400, "unable to upgrade: missing upgrade headers in request")
        writer.write(h.send(h11.InformationalResponse(status_code=101, headers=[
            ("connection", "Upgrade"), ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", version)])))
        transport = SocketTransport(reader, writer, activity, h.trailing_data[0])
        if isinstance(cached, PortForwardRequest):
            await self._spdy_port_forward(transport, cached, activity)
        else:
            await self._spdy_remotecommand(transport, version, cached, activity)

    async def _spdy_remotecommand(self, transport: ByteTransport, version: str,
                                  req: ExecRequest | AttachRequest, activity: Activity) -> None:
        expected = rc.expected_streams(version, stdin=req.stdin, stdout=req.stdout,
                                       stderr=req.stderr and not req.tty, tty=req.tty)
        streams: dict[str, SpdyStream] = {}
        ready = asyncio.Event()

        def on_stream(stream: SpdyStream) -> bool:
            kind = stream.header("streamtype")
            if kind in rc.STREAM_TYPES and (kind != "resize" or rc.resize_supported(version)):
                streams[kind] = stream
                if len(streams) >= expected:
                    ready.set()
            else:
                log.info("remotecommand: unexpected stream type %r ignored", kind)
                stream.discard()
            return True

        session = SpdySession(transport, on_stream)
        run = asyncio.create_task(session.run())
        try:
            if not await _wait_event(ready, run, self.config.stream_creation_timeout):
                log.info("remotecommand: the client did not open its streams in time")
                return
            if version == rc.V1 and "stdin" in streams:
                # v1 servers half-close their side of stdin at once (the v1 client expects it).
                await streams["stdin"].close()
            remote = rc.RemoteStreams(
                stdin=streams.get("stdin") if req.stdin else None,
                stdout=streams.get("stdout") if req.stdout else None,
                stderr=streams.get("stderr") if req.stderr and not req.tty else None,
                error=streams.get("error"),
                resize=streams.get("resize") if req.tty else None,
                json_status=rc.json_status_for(version))
            for stream in streams.values():
                if stream is not remote.stdin and stream is not remote.resize:
                    stream.discard()  # the server never reads these
            work = asyncio.create_task(self._relay(req, remote))
            await self._supervise(work, run, activity)
        finally:
            await session.close()
            await _cancel(run)

    async def _spdy_port_forward(self, transport: ByteTransport, req: PortForwardRequest,
                                 activity: Activity) -> None:
        pf = SpdyPortForward(self.backend, req.pod_id, self.config.stream_creation_timeout)
        session = SpdySession(transport, pf.on_stream)
        run = asyncio.create_task(session.run())
        try:
            await self._supervise(run, None, activity)
        finally:
            await pf.close()
            await session.close()
            await _cancel(run)

    # -- WebSocket
    async def _websocket(self, h: h11.Connection, headers: _Headers, cached: Request,
                         query: dict[str, list[str]], reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter, activity: Activity) -> None:
        key = headers.first("sec-websocket-key")
        if not key or headers.first("sec-websocket-version") != "13":
            raise HttpRefusal(400, "unable to upgrade: bad websocket handshake",
                             [("sec-websocket-version", "13")])
        offered = headers.tokens("sec-websocket-protocol", lower=False)
        if isinstance(cached, PortForwardRequest):
            supported = [TUNNEL_PROTOCOL, *WS_CHANNEL_PROTOCOLS]
            ports = cached.ports or _query_ports(query)
            if TUNNEL_PROTOCOL not in offered and not ports:
                raise HttpRefusal(400, 'query parameter "port" is required')
        else:
            supported = list(rc.WS_PROTOCOLS)
        chosen = next((p for p in (offered or [""]) if p in supported), None)
        if chosen is None:
            raise HttpRefusal(403, f"requested protocol(s) are not supported: {offered}; "
                                  f"supports {[p for p in supported if p]}")
        response = [("upgrade", "websocket"), ("connection", "Upgrade"),
                    ("sec-websocket-accept", accept_key(key))]
        if chosen:
            response.append(("sec-websocket-protocol", chosen))
        writer.write(h.send(h11.InformationalResponse(status_code=101, headers=response)))
        transport = SocketTransport(reader, writer, activity, h.trailing_data[0])
        ws = WsSession(transport)
        if isinstance(cached, PortForwardRequest):
            if chosen == TUNNEL_PROTOCOL:
                await self._spdy_port_forward(WsTunnelTransport(ws), cached, activity)
            else:
                await self._ws_port_forward(ws, WS_CHANNEL_PROTOCOLS[chosen], cached,
                                            cached.ports or _query_ports(query), activity)
        else:
            await self._ws_remotecommand(ws, rc.WS_PROTOCOLS[chosen], cached, activity)

    async def _ws_remotecommand(self, ws: WsSession, proto: rc.WsProtocol,
                                req: ExecRequest | AttachRequest, activity: Activity) -> None:
        stderr = req.stderr and not req.tty
        readable = {rc.STDIN} if req.stdin else set()
        if req.tty:
            readable.add(rc.RESIZE)
        writable = {rc.ERROR} | ({rc.STDOUT} if req.stdout else set()) | (
            {rc.STDERR} if stderr else set())
        channels = ChannelSession(ws, base64_codec=proto.base64, readable=readable,
                                  writable=writable, close_signal=proto.close_signal)
        run = asyncio.create_task(channels.run())
        try:
            # An empty first message tells the client the session is up (as the kubelet).
            first = rc.STDOUT if req.stdout else rc.STDERR if stderr else rc.ERROR
            await channels.writer(first).write(b"")
            remote = rc.RemoteStreams(
                stdin=channels.reader(rc.STDIN) if req.stdin else None,
                stdout=channels.writer(rc.STDOUT) if req.stdout else None,
                stderr=channels.writer(rc.STDERR) if stderr else None,
                error=channels.writer(rc.ERROR),
                resize=channels.reader(rc.RESIZE) if req.tty else None,
                json_status=proto.json_status)
            work = asyncio.create_task(self._relay(req, remote))
            await self._supervise(work, run, activity)
        finally:
            await channels.close()
            await _cancel(run)

    async def _ws_port_forward(self, ws: WsSession, base64_codec: bool,
                               req: PortForwardRequest, ports: Sequence[int],
                               activity: Activity) -> None:
        channels = ChannelSession(ws, base64_codec=base64_codec,
                                  readable={2 * i for i in range(len(ports))},
                                  writable=set(range(2 * len(ports))), close_signal=False)
        run = asyncio.create_task(channels.run())
        try:
            work = asyncio.create_task(websocket_forward(self.backend, req.pod_id, ports,
                                                         channels))
            await self._supervise(work, run, activity)
        finally:
            await channels.close()
            await _cancel(run)

    # -- shared
    async def _relay(self, req: ExecRequest | AttachRequest, remote: rc.RemoteStreams) -> None:
        if isinstance(req, ExecRequest):
            return await rc.relay(
                lambda: self.backend.exec(req.container_id, list(req.cmd), tty=req.tty,
                                          stdin=req.stdin, stdout=req.stdout,
                                          stderr=req.stderr and not req.tty),
                remote, cmd=req.cmd, attach=False)
        return await rc.relay(
            lambda: self.backend.attach(req.container_id, tty=req.tty, stdin=req.stdin,
                                        stdout=req.stdout, stderr=req.stderr and not req.tty),
            remote, cmd=None, attach=True)

    async def _supervise(self, work: asyncio.Task[Any], reader: asyncio.Task[Any] | None,
                         activity: Activity) -> None:
        """Wait for ``work``; cancel it when the client leaves (``reader`` ends) or a timeout
        (idle, total) passes."""
        started = time.monotonic()
        watched = {work} if reader is None or reader is work else {work, reader}
        try:
            while True:
                check = min(self.config.idle_timeout, 5.0)
                if self.config.session_timeout is not None:
                    check = min(check, self.config.session_timeout)
                done, _ = await asyncio.wait(watched, timeout=max(check, 0.05),
                                             return_when=asyncio.FIRST_COMPLETED)
                if work in done:
                    if not work.cancelled() and work.exception() is not None:
                        log.error("streaming session failed", exc_info=work.exception())
                    return
                if reader is not None and reader in done:
                    log.info("streaming: the client went away")
                    return
                if activity.idle_for() > self.config.idle_timeout:
                    log.info("streaming: idle for %.0fs, closing", activity.idle_for())
                    return
                if (self.config.session_timeout is not None
                        and time.monotonic() - started > self.config.session_timeout):
                    log.info("streaming: session timeout, closing")
                    return
        finally:
            await _cancel(work)


class _Headers:
    """Case-insensitive access to h11's header list."""

    def __init__(self, raw: Sequence[tuple[bytes, bytes]]) -> None:
        self._raw = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw]

    def values(self, name: str) -> list[str]:
        return [v for k, v in self._raw if k == name]

    def first(self, name: str) -> str:
        vals = self.values(name)
        return vals[0].strip() if vals else ""

    def tokens(self, name: str, lower: bool = True) -> list[str]:
        out = []
        for value in self.values(name):
            for token in value.split(","):
                token = token.strip()
                if token:
                    out.append(token.lower() if lower else token)
        return out

    def is_websocket(self) -> bool:
        return "websocket" in self.tokens("upgrade") and "upgrade" in self.tokens("connection")


def negotiate_stream_protocol(values: list[str], supported: Sequence[str]) -> str:
    """Pick the first protocol of the client's X-Stream-Protocol-Version the server supports."""
    if not values:
        raise HttpRefusal(400, "unable to upgrade: header X-Stream-Protocol-Version does not "
                              "exist in request")
    offered = [p.strip() for v in values for p in v.split(",") if p.strip()]
    if not offered:
        raise HttpRefusal(400, "unable to upgrade: header X-Stream-Protocol-Version contains "
                              "no valid protocols")
    for protocol in offered:
        if protocol in supported:
            return protocol
    raise HttpRefusal(
        403, f"unable to upgrade: unable to negotiate protocol: client supports {offered}, "
             f"server accepts {list(supported)}",
        [("x-accepted-stream-protocol-versions", p) for p in supported])


def _query_ports(query: dict[str, list[str]]) -> tuple[int, ...]:
    ports = []
    for value in query.get("port", []):
        for part in value.split(","):
            try:
                port = int(part)
            except ValueError:
                raise HttpRefusal(400, f"unable to parse {part!r} as a port") from None
            if not 0 < port < 65536:
                raise HttpRefusal(400, f"port {part!r} must be > 0")
            ports.append(port)
    return tuple(ports)


async def _wait_event(event: asyncio.Event, guard: asyncio.Task[Any], timeout: float) -> bool:
    """Wait for ``event`` unless ``guard`` ends first or the timeout passes."""
    waiter = asyncio.create_task(event.wait())
    try:
        await asyncio.wait({waiter, guard}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    return event.is_set()


async def _cancel(task: asyncio.Task[Any]) -> None:
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
