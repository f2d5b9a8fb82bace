"""An asyncio SPDY session (server side) over a ByteTransport, driving the sans-I/O module."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from servin.engine.server.cri.streaming import spdy
from servin.engine.server.cri.streaming.transport import ByteTransport, StreamClosedError

log = logging.getLogger(__name__)

# Largest data frame written; a stream buffering more than HIGH_WATER unread bytes stops the
# session's reads (TCP back-pressure: Kubernetes peers ignore SPDY windows).
MAX_CHUNK = 32 * 1024
HIGH_WATER = 1024 * 1024


class SpdyStream:
    """One stream of a session: read what the peer sends, write back, half-close or reset."""

    def __init__(self, session: SpdySession, stream_id: int, headers: spdy.Headers) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self._buf = bytearray()
        self._readable = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._eof = False
        self._discard = False
        self._local_closed = False
        self.reset_status: int | None = None

    @property
    def half_closed(self) -> bool:
        """The peer sent FIN (rather than resetting the stream or leaving)."""
        return self._eof and self.reset_status is None

    def header(self, name: str) -> str:
        """The first value of a header ('' when absent); names are case-insensitive."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), "")

    # -- called by the session
    def _feed(self, data: bytes) -> None:
        if self._discard:
            self.session._acknowledge(self.id, len(data))
            return
        self._buf += data
        self._readable.set()
        if len(self._buf) >= HIGH_WATER:
            self._drained.clear()

    def _end(self) -> None:
        self._eof = True
        self._readable.set()
        self._drained.set()

    def _reset(self, status: int) -> None:
        self.reset_status = status
        self._local_closed = True
        self._end()

    # -- public
    def discard(self) -> None:
        """Drop whatever the peer sends on this stream from now on (nobody will read it), so
        that it can never fill up and stall the session."""
        self._discard = True
        if self._buf:
            self.session._acknowledge(self.id, len(self._buf))
            self._buf.clear()
        self._drained.set()

    async def read(self) -> bytes:
        """Up to everything buffered; b"" once the peer half-closed or the stream is gone."""
        while not self._buf:
            if self._eof:
                return b""
            self._readable.clear()
            await self._readable.wait()
        data = bytes(self._buf)
        self._buf.clear()
        self._drained.set()
        self.session._acknowledge(self.id, len(data))
        return data

    async def write(self, data: bytes) -> None:
        """Send data, waiting for the peer's window when it does flow control."""
        view = memoryview(data)
        while view:
            if self._local_closed:
                raise StreamClosedError(f"stream {self.id} is closed")
            n = min(len(view), MAX_CHUNK, self.session.conn.send_window(self.id))
            if n <= 0:
                await self.session._wait_window()
                continue
            chunk = bytes(view[:n])
            view = view[n:]
            self.session._send(self.session.conn.send_data, self.id, chunk)
            await self.session._drain()

    async def close(self) -> None:
        """Half-close this side (FIN); idempotent."""
        if self._local_closed:
            return
        self._local_closed = True
        self.session._send(self.session.conn.end_stream, self.id)
        if self.session.conn.stream_state(self.id) is spdy.StreamState.CLOSED:
            # Both halves are done: forget it (long port-forward sessions open thousands).
            self.session._streams.pop(self.id, None)
        with contextlib.suppress(StreamClosedError):
            await self.session._drain()

    def reset(self, status: spdy.RstStatus = spdy.RstStatus.CANCEL) -> None:
        """Abort the stream both ways."""
        if self.reset_status is None:
            self.session._send(self.session.conn.reset_stream, self.id, status)
        self._reset(int(status))
        self.session._streams.pop(self.id, None)


StreamHandler = Callable[[SpdyStream], bool]


class SpdySession:
    """The server end of a SPDY session: accepts the peer's streams through ``on_stream``.

    ``on_stream`` returns True to accept (SYN_REPLY is sent) or False to refuse (RST_STREAM).
    ``run`` reads until the peer goes away; afterwards every stream reads EOF.
    """

    def __init__(self, transport: ByteTransport, on_stream: StreamHandler, *,
                 peer_flow_control: spdy.PeerFlowControl = spdy.PeerFlowControl.AUTO) -> None:
        self.transport = transport
        self.conn = spdy.SpdyConnection(client=False, peer_flow_control=peer_flow_control)
        self._on_stream = on_stream
        self._streams: dict[int, SpdyStream] = {}
        self._window = asyncio.Event()
        self.closed = asyncio.Event()

    def _send(self, action: Callable[..., object], *args: object) -> None:
        if self.conn.closed or self.closed.is_set():
            raise StreamClosedError("the SPDY session is closed")
        try:
            action(*args)
        except spdy.SpdyStreamError as exc:
            raise StreamClosedError(str(exc)) from None
        self.transport.write(self.conn.data_to_send())

    async def _drain(self) -> None:
        if self.closed.is_set():
            raise StreamClosedError("the SPDY session is closed")
        await self.transport.drain()

    async def _wait_window(self) -> None:
        if self.closed.is_set():
            raise StreamClosedError("the SPDY session is closed")
        self._window.clear()
        waiters = [asyncio.ensure_future(self._window.wait()),
                   asyncio.ensure_future(self.closed.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    def _acknowledge(self, stream_id: int, size: int) -> None:
        if self.closed.is_set() or self.conn.closed:
            return
        self.conn.acknowledge_data(stream_id, size)
        self.transport.write(self.conn.data_to_send())

    async def run(self) -> None:
        """Process the peer's frames until it leaves, errs or the session is closed."""
        try:
            while not self.closed.is_set():
                data = await self.transport.read()
                if not data:
                    break
                try:
                    events = self.conn.receive_data(data)
                except spdy.SpdyProtocolError as exc:
                    log.info("SPDY protocol error from the client: %s", exc)
                    self.transport.write(self.conn.data_to_send())
                    break
                for event in events:
                    await self._dispatch(event)
                out = self.conn.data_to_send()
                if out:
                    self.transport.write(out)
                    with contextlib.suppress(StreamClosedError):
                        await self.transport.drain()
        finally:
            self._shutdown()

    async def _dispatch(self, event: spdy.Event) -> None:
        if isinstance(event, spdy.DataReceived):
            stream = self._streams.get(event.stream_id)
            if stream is None:
                self.conn.acknowledge_data(event.stream_id, len(event.data))
                return
            stream._feed(event.data)
            if not stream._drained.is_set():
                # Back-pressure: stop reading the socket until the consumer catches up.
                await stream._drained.wait()
        elif isinstance(event, spdy.StreamOpened):
            stream = SpdyStream(self, event.stream_id, event.headers)
            try:
                accepted = self._on_stream(stream)
            except Exception:  # a handler bug must not take the session down
                log.exception("stream handler failed")
                accepted = False
            if accepted:
                self._streams[stream.id] = stream
                self.conn.reply(stream.id)
                if event.fin:
                    stream._end()
            else:
                self.conn.reset_stream(stream.id, spdy.RstStatus.REFUSED_STREAM)
        elif isinstance(event, spdy.StreamEnded):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream._end()
        elif isinstance(event, spdy.StreamReset):
            stream = self._streams.pop(event.stream_id, None)
            if stream is not None:
                stream._reset(event.status)
        elif isinstance(event, spdy.StreamClosed):
            self._streams.pop(event.stream_id, None)
        elif isinstance(event, spdy.WindowUpdated | spdy.SettingsReceived):
            self._window.set()
        elif isinstance(event, spdy.GoAwayReceived):
            log.debug("client sent GOAWAY (status %s)", event.status)

    def _shutdown(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        self._window.set()
        for stream in list(self._streams.values()):
            stream._reset(int(spdy.RstStatus.CANCEL))
        self._streams.clear()

    async def close(self) -> None:
        """End the session politely (GOAWAY, flush) and close the transport."""
        if not self.conn.closed and not self.closed.is_set():
            self.conn.goaway()
            self.transport.write(self.conn.data_to_send())
            with contextlib.suppress(StreamClosedError, asyncio.TimeoutError):
                await asyncio.wait_for(self.transport.drain(), 5)
        self._shutdown()
        self.transport.close()
