"""A lean blocking gRPC client transport: gRPC over HTTP/2 (h2c) on the ``h2`` library.

The CLI must start in well under a quarter second, and importing grpcio alone (its Cython core
and the asyncio it always pulls in) costs about as much as everything else together. This
module speaks the gRPC wire protocol itself and never imports grpc:

- requests: HEADERS (``:path /servin.v1.Images/List``, ``content-type: application/grpc``,
  ``te: trailers``, optional ``grpc-timeout``), then DATA carrying messages framed as a
  compressed flag (always 0) and a 4-byte big-endian length, then END_STREAM;
- responses: HEADERS, DATA, and trailers carrying ``grpc-status`` and ``grpc-message``
  (percent-encoded UTF-8), or one "trailers-only" HEADERS frame.

``H2Channel`` has grpcio's channel shape (``unary_unary``, ``unary_stream``, ``stream_unary``,
``stream_stream`` returning callables), so ``servin.client.services`` drives both transports
the same way. A failed call raises ``StatusError`` (code name and message); a connection that
cannot be made or is lost is ``UNAVAILABLE``, which ``servin.client.errors`` turns into the
one-line "daemon unreachable" message.

Threads: one background reader per connection feeds the h2 state machine and hands messages
to the calls waiting on them; any number of threads may run calls on one channel at once. A
request stream of a bidirectional call is written by its own background thread, so its
iterator may block (waiting for stdin) while responses are read.

Flow control: each stream advertises an 8 MiB window and a stream stops acknowledging data
while 4 MiB of whole messages sit unread, so a slow reader pushes back on the daemon rather
than buffering without bound; sends wait for the daemon's windows.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

from servin.client.channel import MAX_MESSAGE, Endpoint
from servin.client.errors import StatusError
from servin.client.grpcwire import (
    CONNECT_TIMEOUT,
    OK,
    Status,
    connect,
    decode_status,
    frame_message,
    goaway_status,
    lost,
    request_headers,
    reset_status,
    response_head,
)

STREAM_WINDOW = 8 * 1024 * 1024
CONNECTION_WINDOW = 128 * 1024 * 1024
UNREAD_HIGH_WATER = 4 * 1024 * 1024  # unread message bytes at which a stream stops acking
SEND_BATCH = 256 * 1024  # bytes queued per lock hold before they are written out
RECV_SIZE = 256 * 1024
DEFAULT_WINDOW = 65535  # HTTP/2's initial window, before any WINDOW_UPDATE


class _Stream:
    """One call's state on a connection; every field is guarded by the connection's lock."""

    __slots__ = (
        "closed",
        "deadline",
        "http_status",
        "id",
        "messages",
        "partial",
        "send_error",
        "status",
        "unacked",
        "unread",
    )

    def __init__(self, stream_id: int, deadline: float | None) -> None:
        self.id = stream_id
        self.deadline = deadline
        self.messages: deque[bytes] = deque()
        self.partial = bytearray()  # received bytes not yet forming a whole message
        self.unread = 0  # bytes of whole messages the caller has not taken yet
        self.unacked = 0  # received flow-controlled bytes not yet handed back to the peer
        self.http_status = 0
        self.status: Status | None = None
        self.closed = False  # nothing more will arrive: ended, reset, cancelled, or lost
        self.send_error: BaseException | None = None  # the request iterator raised this


class _Connection:
    """One HTTP/2 connection to the daemon, with its reader thread."""

    def __init__(self, endpoint: Endpoint, timeout: float) -> None:
        self.endpoint = endpoint
        self.sock = connect(endpoint, timeout)
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        # Guards the h2 state machine and every _Stream; waiters wait on it.
        self.cond = threading.Condition()
        # Keeps bytes taken from h2 in order on the socket. Taken before cond, never after.
        self.send_lock = threading.Lock()
        self.streams: dict[int, _Stream] = {}
        self.failure: Status | None = None  # set once the connection can carry no more calls
        self.dirty = False  # h2 holds bytes to write
        with self.cond:
            self.h2.initiate_connection()
            self.h2.increment_flow_control_window(CONNECTION_WINDOW - DEFAULT_WINDOW)
            self.dirty = True
        self.flush()
        self.reader = threading.Thread(target=self._read_loop, name="servin-h2-reader", daemon=True)
        self.reader.start()

    # --- socket side -----------------------------------------------------------------------

    def flush(self) -> None:
        """Write out whatever h2 has queued (frames, acks, resets)."""
        if not self.dirty:
            return
        with self.send_lock:
            with self.cond:
                data = self.h2.data_to_send()
                self.dirty = False
            if data:
                try:
                    self.sock.sendall(data)
                except OSError as exc:
                    self._fail(lost(exc))

    def _read_loop(self) -> None:
        failure: Status = ("UNAVAILABLE", "socket closed")
        pending = bytearray()
        try:
            while True:
                data = self.sock.recv(RECV_SIZE)
                if not data:
                    break
                pending += data
                with self.cond:
                    if self.failure is None:
                        self._receive_frames(pending)
                        self.dirty = True
                        self.cond.notify_all()
                    if self.failure is not None:
                        return
                self.flush()
        except OSError as exc:
            failure = lost(exc)
        except h2.exceptions.ProtocolError as exc:
            failure = ("INTERNAL", f"HTTP/2 protocol error from the daemon: {exc}")
        finally:
            self._fail(failure)

    def _receive_frames(self, pending: bytearray) -> None:
        """Feed h2 the whole frames in ``pending``, one at a time (lock held).

        One at a time because h2 raises on any frame after a GOAWAY (a grpc server follows
        its GOAWAY with a PING) and would drop the events of the frames before it.
        """
        while len(pending) >= 9 and self.failure is None:
            end = 9 + int.from_bytes(pending[:3], "big")
            if len(pending) < end:
                return
            frame = bytes(pending[:end])
            del pending[:end]
            for event in self.h2.receive_data(frame):
                self._dispatch(event)

    def _fail(self, failure: Status) -> None:
        """The connection is gone: every open call ends with ``failure``."""
        with self.cond:
            if self.failure is None:
                self.failure = failure
            for stream in self.streams.values():
                if not stream.closed:
                    stream.closed = True
                    stream.status = failure
            self.streams.clear()
            self.cond.notify_all()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def _dispatch(self, event: h2.events.Event) -> None:
        """Apply one h2 event to its stream (lock held)."""
        if isinstance(event, h2.events.DataReceived):
            stream = self.streams.get(event.stream_id)
            if stream is None:  # a call we already gave up: just reopen the window
                if event.flow_controlled_length:
                    self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                return
            self._receive_data(stream, event.data or b"", event.flow_controlled_length or 0)
        elif isinstance(event, h2.events.ResponseReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                self._receive_headers(stream, dict(event.headers or ()))
        elif isinstance(event, h2.events.TrailersReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                status = decode_status(dict(event.headers or ()))
                stream.status = status or ("INTERNAL", "the daemon sent trailers without a status")
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None and not stream.closed:
                stream.closed = True
                if stream.status is None:
                    stream.status = ("INTERNAL", "the daemon ended the call without a status")
                elif stream.status[0] == "OK" and stream.partial:
                    stream.status = ("INTERNAL", "the daemon's reply ended inside a message")
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None and not stream.closed:
                stream.closed = True
                if stream.status is None or stream.status[0] == "OK":
                    stream.status = reset_status(int(event.error_code or 0))
        elif isinstance(event, h2.events.ConnectionTerminated):
            # h2 accepts no frame after GOAWAY, so calls still open cannot be finished.
            self.failure = goaway_status(int(event.error_code or 0))
            for stream in self.streams.values():
                if not stream.closed:
                    stream.closed = True
                    stream.status = self.failure
            self.streams.clear()
        # WindowUpdated and settings changes only need the notify_all the caller does.

    def _receive_headers(self, stream: _Stream, headers: dict[bytes, bytes]) -> None:
        stream.http_status, status = response_head(headers)
        if status is not None:
            stream.status = status

    def _receive_data(self, stream: _Stream, data: bytes, flow_length: int) -> None:
        buf = stream.partial
        buf += data
        while len(buf) >= 5 and not stream.closed:
            size = int.from_bytes(buf[1:5], "big")
            if buf[0] != 0:
                self._abort(stream, ("INTERNAL", "the daemon sent a compressed message"))
            elif size > MAX_MESSAGE:
                text = f"received message larger than max ({size} vs. {MAX_MESSAGE})"
                self._abort(stream, ("RESOURCE_EXHAUSTED", text))
            elif len(buf) >= 5 + size:
                stream.messages.append(bytes(buf[5 : 5 + size]))
                stream.unread += size
                del buf[: 5 + size]
                continue
            break
        stream.unacked += flow_length
        if stream.closed or stream.unread < UNREAD_HIGH_WATER:
            self._ack(stream)

    def _ack(self, stream: _Stream) -> None:
        """Hand received bytes back to the peer's windows (lock held)."""
        if stream.unacked:
            self.h2.acknowledge_received_data(stream.unacked, stream.id)
            stream.unacked = 0
            self.dirty = True

    def _abort(self, stream: _Stream, status: Status) -> None:
        """End a call from this side with ``status`` and tell the daemon (lock held)."""
        if not stream.closed:
            stream.closed = True
            stream.status = status
            self.streams.pop(stream.id, None)
            try:
                self.h2.reset_stream(stream.id, h2.errors.ErrorCodes.CANCEL)
                self.dirty = True
            except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
                pass  # already closed on the wire
        self._ack(stream)
        self.cond.notify_all()

    def _wait(self, stream: _Stream) -> None:
        """Wait for news on the connection, or end the call at its deadline (lock held)."""
        if stream.deadline is None:
            self.cond.wait()
            return
        remaining = stream.deadline - time.monotonic()
        if remaining <= 0:
            self._abort(stream, ("DEADLINE_EXCEEDED", "Deadline Exceeded"))
        else:
            self.cond.wait(remaining)

    # --- call side -------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """Whether new calls may start on this connection."""
        return self.failure is None

    def open(
        self,
        path: str,
        timeout: float | None,
        metadata: Sequence[tuple[str, str | bytes]] | None,
        *,
        flush: bool,
    ) -> _Stream:
        """Start a call: send its HEADERS (written now only if ``flush``)."""
        headers = request_headers(self.endpoint, path, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        headers.extend(_metadata(metadata))
        with self.cond:
            if self.failure is not None:
                raise StatusError(*self.failure)
            stream_id = self.h2.get_next_available_stream_id()
            stream = _Stream(stream_id, deadline)
            try:
                self.h2.send_headers(stream_id, headers)
                self.h2.increment_flow_control_window(STREAM_WINDOW - DEFAULT_WINDOW, stream_id)
            except h2.exceptions.TooManyStreamsError:
                raise StatusError("RESOURCE_EXHAUSTED", "too many calls in flight") from None
            except h2.exceptions.ProtocolError as exc:
                raise StatusError("UNAVAILABLE", f"socket closed ({exc})") from None
            self.streams[stream_id] = stream
            self.dirty = True
        if flush:
            self.flush()
        return stream

    def send(self, stream: _Stream, payload: bytes, *, end: bool = False) -> bool:
        """Send one message (and END_STREAM if ``end``), waiting for window as needed.

        Returns False when the call has already ended (the daemon answered or it failed):
        the caller then stops sending and reads the outcome.
        """
        if len(payload) > MAX_MESSAGE:
            text = f"Sent message larger than max ({len(payload)} vs. {MAX_MESSAGE})"
            self.cancel(stream, ("RESOURCE_EXHAUSTED", text))
            return False
        data = memoryview(frame_message(payload))
        offset = 0
        try:
            while offset < len(data):
                with self.cond:
                    window = self._window(stream)
                    while window == 0:
                        self._wait(stream)
                        window = self._window(stream)
                    if window < 0:
                        return False
                    frame_size = self.h2.max_outbound_frame_size
                    budget = min(window, SEND_BATCH)
                    while budget > 0 and offset < len(data):
                        n = min(budget, frame_size, len(data) - offset)
                        self.h2.send_data(stream.id, data[offset : offset + n])
                        offset += n
                        budget -= n
                    if end and offset == len(data):
                        self.h2.end_stream(stream.id)
                    self.dirty = True
                self.flush()
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return False  # closed on the wire meanwhile; the reader reports how
        finally:
            self.flush()
        return True

    def _window(self, stream: _Stream) -> int:
        """How many bytes may be sent now; -1 once the call is over (lock held)."""
        if stream.closed:
            return -1
        try:
            return max(self.h2.local_flow_control_window(stream.id), 0)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return -1

    def end(self, stream: _Stream) -> None:
        """Half-close the call: no more requests."""
        with self.cond:
            if stream.closed:
                return
            try:
                self.h2.end_stream(stream.id)
                self.dirty = True
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                return
        self.flush()

    def read(self, stream: _Stream) -> bytes | None:
        """The call's next message; None once it ended OK; StatusError if it failed."""
        try:
            with self.cond:
                while not stream.messages and not stream.closed:
                    self._wait(stream)
                if stream.messages:
                    message = stream.messages.popleft()
                    stream.unread -= len(message)
                    if stream.unacked and stream.unread < UNREAD_HIGH_WATER:
                        self._ack(stream)
                    return message
                self._ack(stream)
        finally:
            self.flush()
        if stream.send_error is not None:
            raise stream.send_error
        status = stream.status or OK
        if status[0] != "OK":
            raise StatusError(*status)
        return None

    def read_single(self, stream: _Stream) -> bytes:
        """The one reply of a unary-response call."""
        message = self.read(stream)
        if message is None:
            raise StatusError("INTERNAL", "the daemon sent no reply message")
        if self.read(stream) is not None:
            self.cancel(stream)
            raise StatusError("INTERNAL", "the daemon sent more than one reply message")
        return message

    def cancel(self, stream: _Stream, status: Status = ("CANCELLED", "Locally cancelled")) -> None:
        """End the call from this side (RST_STREAM CANCEL unless it is over already)."""
        with self.cond:
            self._abort(stream, status)
        self.flush()

    def close(self) -> None:
        """Close the connection (GOAWAY, then the socket); open calls end CANCELLED."""
        with self.cond:
            if self.failure is None:
                try:
                    self.h2.close_connection()
                    self.dirty = True
                except h2.exceptions.ProtocolError:
                    pass
        self.flush()
        self._fail(("CANCELLED", "the channel was closed"))
        self.sock.close()
        if self.reader is not threading.current_thread():
            self.reader.join(1.0)


def _metadata(metadata: Sequence[tuple[str, str | bytes]] | None) -> list[tuple[bytes, bytes]]:
    out = []
    for key, value in metadata or ():
        name = key.lower().encode()
        if name.endswith(b"-bin"):
            import base64

            raw = value if isinstance(value, bytes) else value.encode()
            out.append((name, base64.b64encode(raw).rstrip(b"=")))
        else:
            out.append((name, value if isinstance(value, bytes) else value.encode()))
    return out


class _Responses:
    """The responses of a server-streaming call: iterate; ``close()`` or ``cancel()`` it."""

    def __init__(
        self, conn: _Connection, stream: _Stream, deserialize: Callable[[bytes], Any]
    ) -> None:
        self._conn = conn
        self._stream = stream
        self._deserialize = deserialize

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            payload = self._conn.read(self._stream)
        except BaseException:
            self.cancel()
            raise
        if payload is None:
            raise StopIteration
        return _decode(self._deserialize, payload, self._conn, self._stream)

    def cancel(self) -> None:
        """Stop the call (RST_STREAM CANCEL) unless it ended already."""
        self._conn.cancel(self._stream)

    close = cancel

    def __del__(self) -> None:
        # An abandoned call must not hold the connection's window. No flush here: this may
        # run inside any frame (even one holding send_lock); the next flush sends the reset.
        try:
            with self._conn.cond:
                self._conn._abort(self._stream, ("CANCELLED", "Locally cancelled"))
        except Exception:  # interpreter teardown
            pass


def _decode(
    deserialize: Callable[[bytes], Any], payload: bytes, conn: _Connection, stream: _Stream
) -> Any:
    try:
        return deserialize(payload)
    except Exception as exc:
        conn.cancel(stream)
        raise StatusError("INTERNAL", f"cannot decode the daemon's reply: {exc}") from None


def _pump(
    conn: _Connection, stream: _Stream, requests: Iterable[Any], serialize: Callable[[Any], bytes]
) -> None:
    """Write a request stream (a bidirectional call's writer thread)."""
    try:
        for request in requests:
            if not conn.send(stream, serialize(request)):
                return
        conn.end(stream)
    except BaseException as exc:  # handed to the reading thread
        with conn.cond:
            if not stream.closed:
                stream.send_error = exc
        conn.cancel(stream, ("UNKNOWN", f"exception iterating requests: {exc}"))


class H2Channel:
    """A lazily connected channel to one endpoint, shaped like a grpcio channel.

    A lost connection is replaced by a new one on the next call.
    """

    def __init__(self, endpoint: Endpoint, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.endpoint = endpoint
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._conn: _Connection | None = None
        self._closed = False

    def _connection(self, timeout: float | None) -> _Connection:
        with self._lock:
            if self._closed:
                raise StatusError("CANCELLED", "the channel was closed")
            conn = self._conn
            if conn is None or not conn.usable:
                if conn is not None:
                    conn.close()
                limit = (
                    self.connect_timeout if timeout is None else min(timeout, self.connect_timeout)
                )
                conn = self._conn = _Connection(self.endpoint, max(limit, 0.001))
            return conn

    def _start(
        self, path: str, timeout: float | None, metadata: Any, *, flush: bool
    ) -> tuple[_Connection, _Stream]:
        conn = self._connection(timeout)
        return conn, conn.open(path, timeout, metadata, flush=flush)

    def unary_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes],
        response_deserializer: Callable[[bytes], Any],
        **_: Any,
    ) -> Callable[..., Any]:
        """A callable making unary calls to ``method`` (``/pkg.Service/Method``)."""

        def call(request: Any, timeout: float | None = None, metadata: Any = None, **_: Any) -> Any:
            conn, stream = self._start(method, timeout, metadata, flush=False)
            try:
                conn.send(stream, request_serializer(request), end=True)
                payload = conn.read_single(stream)
            except BaseException:
                conn.cancel(stream)
                raise
            return _decode(response_deserializer, payload, conn, stream)

        return call

    def unary_stream(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes],
        response_deserializer: Callable[[bytes], Any],
        **_: Any,
    ) -> Callable[..., _Responses]:
        """A callable starting server-streaming calls; each returns a response iterator."""

        def call(
            request: Any, timeout: float | None = None, metadata: Any = None, **_: Any
        ) -> _Responses:
            conn, stream = self._start(method, timeout, metadata, flush=False)
            try:
                conn.send(stream, request_serializer(request), end=True)
            except BaseException:
                conn.cancel(stream)
                raise
            return _Responses(conn, stream, response_deserializer)

        return call

    def stream_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes],
        response_deserializer: Callable[[bytes], Any],
        **_: Any,
    ) -> Callable[..., Any]:
        """A callable making client-streaming calls; requests are sent from the caller's thread.

        The daemon answers only after the last request (or at once on an error, which stops
        the sending), so no reply has to be read while requests are written.
        """

        def call(
            requests: Iterable[Any], timeout: float | None = None, metadata: Any = None, **_: Any
        ) -> Any:
            conn, stream = self._start(method, timeout, metadata, flush=True)
            try:
                for request in requests:
                    if not conn.send(stream, request_serializer(request)):
                        break
                else:
                    conn.end(stream)
                payload = conn.read_single(stream)
            except BaseException:
                conn.cancel(stream)
                raise
            return _decode(response_deserializer, payload, conn, stream)

        return call

    def stream_stream(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes],
        response_deserializer: Callable[[bytes], Any],
        **_: Any,
    ) -> Callable[..., _Responses]:
        """A callable starting bidirectional calls: a background thread writes the requests."""

        def call(
            requests: Iterable[Any], timeout: float | None = None, metadata: Any = None, **_: Any
        ) -> _Responses:
            conn, stream = self._start(method, timeout, metadata, flush=True)
            writer = threading.Thread(
                target=_pump,
                args=(conn, stream, requests, request_serializer),
                name=f"servin-h2-writer-{stream.id}",
                daemon=True,
            )
            writer.start()
            return _Responses(conn, stream, response_deserializer)

        return call

    def close(self) -> None:
        """Close the connection; calls still open end CANCELLED."""
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
