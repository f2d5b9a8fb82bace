"""``QuickChannel``: blocking gRPC calls over HTTP/2 (h2c) with its own frame code.

The quick CLI front makes one or two calls and exits, so this transport is single-threaded
and makes one call at a time; what it saves is the import of the ``h2``/``hpack`` libraries
(the full client's ``servin.client.h2channel``) and a reader thread. It speaks HTTP/2 with
prior knowledge (RFC 9113 section 3.3): the preface, SETTINGS (ours: no push, big windows;
the daemon's are acknowledged and obeyed), then per call HEADERS, DATA carrying gRPC messages
(a flag byte and a 4-byte length before each) and END_STREAM; responses arrive as HEADERS,
DATA and trailers carrying ``grpc-status``. PING is answered, WINDOW_UPDATE sent as received
data is consumed, GOAWAY and RST_STREAM end calls with the same statuses the full client
reports (``servin.client.grpcwire``), raised as ``StatusError``.

The socket is read only when the caller wants the next message, so a slow reader pushes back
on the daemon (its writes block) while at most one read's worth of messages is buffered.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections import deque
from collections.abc import Iterator

from servin.client.channel import MAX_MESSAGE, Endpoint
from servin.client.errors import StatusError
from servin.client.grpcwire import (
    CONNECT_TIMEOUT,
    H2_CANCEL,
    OK,
    Status,
    connect,
    decode_status,
    goaway_status,
    lost,
    request_headers,
    reset_status,
    response_head,
)
from servin.client.quick import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
SETTINGS_HEADER_TABLE_SIZE, SETTINGS_ENABLE_PUSH = 0x1, 0x2
SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE = 0x4, 0x5

DEFAULT_WINDOW = 65535  # HTTP/2's initial windows
DEFAULT_FRAME = 16384  # HTTP/2's initial maximum frame size
STREAM_WINDOW = 16 * 1024 * 1024  # what each call lets the daemon send before acks
CONNECTION_WINDOW = 64 * 1024 * 1024
RECEIVE_FRAME = 1024 * 1024  # the largest frame we accept (SETTINGS_MAX_FRAME_SIZE)
RECV_SIZE = 256 * 1024


def _frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return (
        len(payload).to_bytes(3, "big")
        + bytes((kind, flags))
        + stream_id.to_bytes(4, "big")
        + payload
    )


class _Call:
    """One call (HTTP/2 stream)."""

    __slots__ = (
        "closed",
        "deadline",
        "headers_seen",
        "id",
        "messages",
        "partial",
        "remote_done",
        "send_window",
        "status",
        "unacked",
    )

    def __init__(self, stream_id: int, send_window: int, deadline: float | None) -> None:
        self.id = stream_id
        self.deadline = deadline
        self.messages: deque[bytes] = deque()
        self.partial = bytearray()
        self.send_window = send_window
        self.unacked = 0
        self.headers_seen = False
        self.status: Status | None = None
        self.remote_done = False  # the daemon sent END_STREAM or reset the call
        self.closed = False  # the call's outcome is settled (status set)


class QuickChannel:
    """A blocking gRPC connection to one daemon; one call at a time."""

    def __init__(self, sock: socket.socket, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.sock = sock
        self._decoder = hpack.Decoder()
        self._out = bytearray(
            PREFACE
            + _frame(
                SETTINGS,
                0,
                0,
                b"".join(
                    key.to_bytes(2, "big") + value.to_bytes(4, "big")
                    for key, value in (
                        (SETTINGS_ENABLE_PUSH, 0),
                        (SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW),
                        (SETTINGS_MAX_FRAME_SIZE, RECEIVE_FRAME),
                    )
                ),
            )
            + _frame(WINDOW_UPDATE, 0, 0, (CONNECTION_WINDOW - DEFAULT_WINDOW).to_bytes(4, "big"))
        )
        self._pending = bytearray()  # received bytes not yet forming a whole frame
        self._calls: dict[int, _Call] = {}
        self._next_id = 1
        self._send_window = DEFAULT_WINDOW  # the daemon's connection window for our DATA
        self._peer_initial_window = DEFAULT_WINDOW
        self._peer_frame = DEFAULT_FRAME
        self._unacked = 0  # connection-level received bytes not yet handed back
        self._header_block: tuple[int, int, bytearray] | None = None  # stream, flags, fragments
        self._goaway: Status | None = None
        self.failure: Status | None = None

    @classmethod
    def connect(cls, endpoint: Endpoint, timeout: float = CONNECT_TIMEOUT) -> QuickChannel:
        """A channel to ``endpoint`` (connected now; UNAVAILABLE ``StatusError`` if not)."""
        return cls(connect(endpoint, timeout), endpoint)

    # --- calls -------------------------------------------------------------------------------

    def unary(self, path: str, request: bytes, timeout: float | None = None) -> bytes:
        """One request, one reply (``path`` is ``/pkg.Service/Method``)."""
        call = self._start(path, request, timeout, end=True)
        try:
            message = self._next(call)
            if message is None:
                raise StatusError("INTERNAL", "the daemon sent no reply message")
            if self._next(call) is not None:
                raise StatusError("INTERNAL", "the daemon sent more than one reply message")
            return message
        finally:
            self._cancel(call)

    def stream(self, path: str, request: bytes, timeout: float | None = None) -> Iterator[bytes]:
        """One request, a stream of replies (stopping the iteration early cancels the call)."""
        call = self._start(path, request, timeout, end=True)
        return self._iterate(call)

    def bidi(
        self, path: str, first: bytes, half_close: bool = True, timeout: float | None = None
    ) -> QuickCall:
        """A bidirectional call: ``first`` is sent at once (then END_STREAM if
        ``half_close``); iterate the returned call for replies, ``send``/``close_send`` more."""
        call = self._start(path, first, timeout, end=half_close)
        return QuickCall(self, call, half_closed=half_close)

    def close(self) -> None:
        """Close the connection (GOAWAY, then the socket)."""
        if self.failure is None:
            self._out += _frame(GOAWAY, 0, 0, (0).to_bytes(4, "big") + (0).to_bytes(4, "big"))
            with contextlib.suppress(StatusError):
                self._flush()
            self.failure = ("CANCELLED", "the channel was closed")
        self.sock.close()

    def __enter__(self) -> QuickChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- call internals ----------------------------------------------------------------------

    def _start(self, path: str, request: bytes, timeout: float | None, *, end: bool) -> _Call:
        if self.failure is not None or self._goaway is not None:
            raise StatusError(*(self.failure or self._goaway or OK))
        if self._next_id > 0x7FFFFFFF:
            raise StatusError("UNAVAILABLE", "the connection ran out of stream ids")
        deadline = None if timeout is None else time.monotonic() + timeout
        call = _Call(self._next_id, self._peer_initial_window, deadline)
        self._next_id += 2
        self._calls[call.id] = call
        block = hpack.encode(request_headers(self.endpoint, path, timeout))
        if len(block) > self._peer_frame:
            raise StatusError("INTERNAL", "request headers too large")
        self._out += _frame(HEADERS, END_HEADERS, call.id, block)
        self._send(call, request, end=end)
        return call

    def _send(self, call: _Call, payload: bytes, *, end: bool) -> bool:
        """Send one message, waiting for window; False if the call has ended meanwhile."""
        if len(payload) > MAX_MESSAGE:
            text = f"Sent message larger than max ({len(payload)} vs. {MAX_MESSAGE})"
            self._settle(call, ("RESOURCE_EXHAUSTED", text))
            self._cancel(call)
            return False
        data = memoryview(b"\x00" + len(payload).to_bytes(4, "big") + payload)
        offset = 0
        while offset < len(data):
            if call.closed or call.remote_done:
                self._flush()
                return False
            window = min(self._send_window, call.send_window)
            if window <= 0:
                self._flush()
                self._receive(call)  # WINDOW_UPDATEs arrive with whatever else comes
                continue
            n = min(window, self._peer_frame, len(data) - offset)
            last = offset + n == len(data)
            self._out += _frame(DATA, END_STREAM if end and last else 0, call.id,
                                bytes(data[offset : offset + n]))
            offset += n
            self._send_window -= n
            call.send_window -= n
        self._flush()
        return True

    def _end(self, call: _Call) -> None:
        """Half-close the call (an empty DATA frame with END_STREAM)."""
        if not (call.closed or call.remote_done):
            self._out += _frame(DATA, END_STREAM, call.id)
            self._flush()

    def _next(self, call: _Call) -> bytes | None:
        """The call's next message; None once it ended OK; ``StatusError`` if it failed."""
        while not call.messages and not call.closed:
            self._receive(call)
        if call.messages:
            return call.messages.popleft()
        status = call.status or OK
        if status[0] != "OK":
            raise StatusError(*status)
        return None

    def _iterate(self, call: _Call) -> Iterator[bytes]:
        try:
            while (message := self._next(call)) is not None:
                yield message
        finally:
            self._cancel(call)

    def _cancel(self, call: _Call) -> None:
        """Forget the call; reset it on the wire unless it is over."""
        if self._calls.pop(call.id, None) is not None and not call.remote_done \
                and self.failure is None:
            self._out += _frame(RST_STREAM, 0, call.id, H2_CANCEL.to_bytes(4, "big"))
            with contextlib.suppress(StatusError):
                self._flush()
        if not call.closed:
            self._settle(call, ("CANCELLED", "Locally cancelled"))

    def _settle(self, call: _Call, status: Status) -> None:
        if not call.closed:
            call.closed = True
            call.status = status

    def _ack(self, call: _Call, consumed: int) -> None:
        """Hand received bytes back to the daemon's windows once half of one is used."""
        self._unacked += consumed
        if self._unacked >= CONNECTION_WINDOW // 2:
            self._out += _frame(WINDOW_UPDATE, 0, 0, self._unacked.to_bytes(4, "big"))
            self._unacked = 0
        call.unacked += consumed
        if call.unacked >= STREAM_WINDOW // 2 and not call.remote_done:
            self._out += _frame(WINDOW_UPDATE, 0, call.id, call.unacked.to_bytes(4, "big"))
            call.unacked = 0

    # --- socket side ---------------------------------------------------------------------------

    def _flush(self) -> None:
        if not self._out:
            return
        data, self._out = bytes(self._out), bytearray()
        try:
            self.sock.sendall(data)
        except OSError as exc:
            self._fail(lost(exc))
            raise StatusError(*lost(exc)) from None

    def _receive(self, call: _Call) -> None:
        """Read what the daemon sent (waiting for it, up to ``call``'s deadline)."""
        if self.failure is not None:
            self._settle(call, self.failure)
            return
        self._flush()
        if call.deadline is not None:
            remaining = call.deadline - time.monotonic()
            if remaining <= 0:
                self._settle(call, ("DEADLINE_EXCEEDED", "Deadline Exceeded"))
                self._cancel(call)
                return
            self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(RECV_SIZE)
        except TimeoutError:
            self._settle(call, ("DEADLINE_EXCEEDED", "Deadline Exceeded"))
            self._cancel(call)
            return
        except OSError as exc:
            self._fail(lost(exc))
            return
        finally:
            if call.deadline is not None:
                self.sock.settimeout(None)
        if not data:
            self._fail(("UNAVAILABLE", "socket closed"))
            return
        self._pending += data
        try:
            self._frames()
        except hpack.HPACKError as exc:
            self._fail(("INTERNAL", f"HTTP/2 protocol error from the daemon: {exc}"))
        self._flush()

    def _fail(self, failure: Status) -> None:
        """The connection is gone: every open call ends with ``failure``."""
        if self.failure is None:
            self.failure = failure
        for call in self._calls.values():
            call.remote_done = True
            self._settle(call, failure)

    def _frames(self) -> None:
        pending = self._pending
        while len(pending) >= 9 and self.failure is None:
            size = int.from_bytes(pending[:3], "big")
            if size > RECEIVE_FRAME:
                self._fail(("INTERNAL", "HTTP/2 protocol error from the daemon: frame too large"))
                return
            if len(pending) < 9 + size:
                return
            kind, flags = pending[3], pending[4]
            stream_id = int.from_bytes(pending[5:9], "big") & 0x7FFFFFFF
            payload = bytes(pending[9 : 9 + size])
            del pending[: 9 + size]
            self._frame(kind, flags, stream_id, payload)

    def _protocol_error(self, why: str) -> None:
        self._fail(("INTERNAL", f"HTTP/2 protocol error from the daemon: {why}"))

    def _frame(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        if self._header_block is not None and kind != CONTINUATION:
            self._protocol_error("expected CONTINUATION")
            return
        if kind == DATA:
            self._data(flags, stream_id, payload)
        elif kind == HEADERS:
            if flags & PADDED:
                payload = _unpad(payload)
            if flags & PRIORITY_FLAG:
                payload = payload[5:]
            self._header_block = (stream_id, flags, bytearray(payload))
            if flags & END_HEADERS:
                self._headers_done()
        elif kind == CONTINUATION:
            if self._header_block is None or self._header_block[0] != stream_id:
                self._protocol_error("unexpected CONTINUATION")
                return
            self._header_block[2].extend(payload)
            if flags & END_HEADERS:
                self._headers_done()
        elif kind == RST_STREAM:
            call = self._calls.get(stream_id)
            if call is not None and not call.closed:
                call.remote_done = True
                if call.status is None or call.status[0] == "OK":
                    call.status = reset_status(int.from_bytes(payload[:4], "big"))
                call.closed = True
            elif call is not None:
                call.remote_done = True
        elif kind == SETTINGS:
            if not flags & ACK:
                self._settings(payload)
                self._out += _frame(SETTINGS, ACK, 0)
        elif kind == PING:
            if not flags & ACK:
                self._out += _frame(PING, ACK, 0, payload)
        elif kind == GOAWAY:
            last = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            status = goaway_status(int.from_bytes(payload[4:8], "big"))
            for call in list(self._calls.values()):
                if call.id > last:  # never processed: it can be retried by the user
                    call.remote_done = True
                    self._settle(call, status)
            self._goaway = status  # no new calls on this connection
        elif kind == WINDOW_UPDATE:
            increment = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            if stream_id == 0:
                self._send_window += increment
            elif (call := self._calls.get(stream_id)) is not None:
                call.send_window += increment
        elif kind == PUSH_PROMISE:
            self._protocol_error("PUSH_PROMISE although push is disabled")
        # PRIORITY and unknown frame types are ignored (RFC 9113 section 4.1).

    def _settings(self, payload: bytes) -> None:
        for offset in range(0, len(payload) - 5, 6):
            key = int.from_bytes(payload[offset : offset + 2], "big")
            value = int.from_bytes(payload[offset + 2 : offset + 6], "big")
            if key == SETTINGS_INITIAL_WINDOW_SIZE:
                delta = value - self._peer_initial_window
                self._peer_initial_window = value
                for call in self._calls.values():
                    call.send_window += delta
            elif key == SETTINGS_MAX_FRAME_SIZE:
                self._peer_frame = value
            # HEADER_TABLE_SIZE bounds the daemon's decoder: our encoder never indexes.

    def _headers_done(self) -> None:
        assert self._header_block is not None
        stream_id, flags, block = self._header_block
        self._header_block = None
        headers = dict(self._decoder.decode(bytes(block)))  # always: the table must follow
        call = self._calls.get(stream_id)
        if call is None or call.closed:
            return
        if not call.headers_seen:
            call.headers_seen = True
            _, status = response_head(headers)
            if status is not None:
                call.status = status
        else:
            call.status = decode_status(headers) or (
                "INTERNAL",
                "the daemon sent trailers without a status",
            )
        if flags & END_STREAM:
            self._remote_end(call)

    def _data(self, flags: int, stream_id: int, payload: bytes) -> None:
        flow = len(payload)
        if flags & PADDED:
            payload = _unpad(payload)
        call = self._calls.get(stream_id)
        if call is None or call.closed:  # a call we gave up: just reopen the windows
            if flow:
                self._unacked += flow
                self._out += _frame(WINDOW_UPDATE, 0, 0, self._unacked.to_bytes(4, "big"))
                self._unacked = 0
            return
        # Received bytes go back to the windows at once (a message may be larger than a
        # window); the socket is read only when the caller wants more, which bounds buffering.
        self._ack(call, flow)
        buf = call.partial
        buf += payload
        while len(buf) >= 5:
            size = int.from_bytes(buf[1:5], "big")
            if buf[0] != 0:
                self._abort(call, ("INTERNAL", "the daemon sent a compressed message"))
                return
            if size > MAX_MESSAGE:
                text = f"received message larger than max ({size} vs. {MAX_MESSAGE})"
                self._abort(call, ("RESOURCE_EXHAUSTED", text))
                return
            if len(buf) < 5 + size:
                break
            call.messages.append(bytes(buf[5 : 5 + size]))
            del buf[: 5 + size]
        if flags & END_STREAM:
            self._remote_end(call)

    def _abort(self, call: _Call, status: Status) -> None:
        self._settle(call, status)
        call.messages.clear()
        self._cancel(call)

    def _remote_end(self, call: _Call) -> None:
        call.remote_done = True
        if call.closed:
            return
        if call.status is None:
            call.status = ("INTERNAL", "the daemon ended the call without a status")
        elif call.status[0] == "OK" and call.partial:
            call.status = ("INTERNAL", "the daemon's reply ended inside a message")
        call.closed = True


def _unpad(payload: bytes) -> bytes:
    pad = payload[0] if payload else 0
    return payload[1 : len(payload) - pad]


class QuickCall:
    """A bidirectional call: iterate for replies; ``send`` more requests, ``close_send``."""

    def __init__(self, channel: QuickChannel, call: _Call, *, half_closed: bool) -> None:
        self._channel = channel
        self._call = call
        self._half_closed = half_closed

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            message = self._channel._next(self._call)
        except BaseException:
            self._channel._cancel(self._call)
            raise
        if message is None:
            self._channel._cancel(self._call)
            raise StopIteration
        return message

    def send(self, request: bytes) -> bool:
        """Send one more request; False if the call has ended (read it for the outcome)."""
        if self._half_closed:
            raise ValueError("send after close_send")
        return self._channel._send(self._call, request, end=False)

    def close_send(self) -> None:
        """No more requests (END_STREAM)."""
        if not self._half_closed:
            self._half_closed = True
            self._channel._end(self._call)

    def cancel(self) -> None:
        """Stop the call (RST_STREAM CANCEL unless it ended already)."""
        self._channel._cancel(self._call)
