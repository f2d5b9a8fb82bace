"""SPDY/3.1 framing and session state, sans-I/O.

Written from the SPDY/3.1 draft (the framing layer; no HTTP layering, no server push). Feed
bytes read from the peer to :meth:`SpdyConnection.receive_data`, act on the events it returns,
and write :meth:`SpdyConnection.data_to_send` to the peer. Nothing here does I/O.

Wire facts used:
- every frame has an 8-byte header; control frames start with bit C=1, version 3, a 16-bit
  type, 8-bit flags and a 24-bit length; data frames carry a 31-bit stream id instead;
- header blocks are zlib streams (one compression context per direction for the whole
  connection, sync-flushed after each block) primed with the spec's dictionary;
- flow control: every stream and (3.1) the session start with a 64 KiB window in each
  direction; WINDOW_UPDATE with stream id 0 grows the session window.

Kubernetes peers (moby/spdystream, behind every kubelet, kubectl and crictl) announce
``SPDY/3.1`` but implement no flow control: they never send WINDOW_UPDATE nor honour ours. With
``PeerFlowControl.AUTO`` a connection therefore treats the peer's windows as advisory until the
peer shows it does flow control (a WINDOW_UPDATE or an INITIAL_WINDOW_SIZE setting); from then
on it is strict. ``PeerFlowControl.STRICT`` is the plain SPDY/3.1 behaviour.
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

VERSION = 3
DEFAULT_WINDOW = 64 * 1024
MAX_WINDOW = 0x7FFFFFFF
MAX_FRAME_PAYLOAD = 0xFFFFFF  # 24-bit length field
MAX_STREAM_ID = 0x7FFFFFFF
# A decompressed header block larger than this is refused (a zlib bomb costs nothing to send).
MAX_HEADER_BLOCK = 256 * 1024

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
FLAG_SETTINGS_CLEAR = 0x01


class FrameType(enum.IntEnum):
    """Control frame types (SPDY/3.1 section 2.6)."""

    SYN_STREAM = 1
    SYN_REPLY = 2
    RST_STREAM = 3
    SETTINGS = 4
    PING = 6
    GOAWAY = 7
    HEADERS = 8
    WINDOW_UPDATE = 9


class RstStatus(enum.IntEnum):
    """RST_STREAM status codes."""

    PROTOCOL_ERROR = 1
    INVALID_STREAM = 2
    REFUSED_STREAM = 3
    UNSUPPORTED_VERSION = 4
    CANCEL = 5
    INTERNAL_ERROR = 6
    FLOW_CONTROL_ERROR = 7
    STREAM_IN_USE = 8
    STREAM_ALREADY_CLOSED = 9
    FRAME_TOO_LARGE = 11


class GoAwayStatus(enum.IntEnum):
    """GOAWAY status codes."""

    OK = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2


class SettingId(enum.IntEnum):
    """SETTINGS ids."""

    UPLOAD_BANDWIDTH = 1
    DOWNLOAD_BANDWIDTH = 2
    ROUND_TRIP_TIME = 3
    MAX_CONCURRENT_STREAMS = 4
    CURRENT_CWND = 5
    DOWNLOAD_RETRANS_RATE = 6
    INITIAL_WINDOW_SIZE = 7
    CLIENT_CERTIFICATE_VECTOR_SIZE = 8


class PeerFlowControl(enum.Enum):
    """Whether the peer's receive windows are binding (see the module docstring)."""

    STRICT = "strict"
    AUTO = "auto"


def _build_dictionary() -> bytes:
    # The SPDY/3 header dictionary: length-prefixed lowercase header names and HTTP words,
    # then a run of status codes, reason phrases, dates and common values.
    names = (
        "options head post put delete trace accept accept-charset accept-encoding "
        "accept-language accept-ranges age allow authorization cache-control connection "
        "content-base content-encoding content-language content-length content-location "
        "content-md5 content-range content-type date etag expect expires from host if-match "
        "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
        "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
        "server te trailer transfer-encoding upgrade user-agent vary via warning "
        "www-authenticate method get status"
    )
    words = names.split()
    words += ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive",
              "origin"]
    prefix = b"".join(struct.pack(">I", len(w)) + w.encode() for w in words)
    code_run = ("100 101 201 202 205 206 300 302 303 304 305 306 307 402 405 406 407 408 409 "
                "410 411 412 413 414 415 416 417 502 504 505")
    tail = (
        code_run.replace(" ", "")
        + "203 Non-Authoritative Information204 No Content301 Moved Permanently"
        "400 Bad Request401 Unauthorized403 Forbidden404 Not Found"
        "500 Internal Server Error501 Not Implemented503 Service Unavailable"
        "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
        "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
        "chunked,text/html,image/png,image/jpg,image/gif,application/xml,"
        "application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
        "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
    )
    return prefix + tail.encode()


HEADER_DICTIONARY = _build_dictionary()

Headers = list[tuple[str, str]]


class SpdyError(Exception):
    """Base of the errors this module raises."""


class SpdyProtocolError(SpdyError):
    """The peer broke the protocol badly enough to end the session (GOAWAY is queued)."""

    def __init__(self, message: str, status: GoAwayStatus = GoAwayStatus.PROTOCOL_ERROR):
        super().__init__(message)
        self.status = status


class SpdyStreamError(SpdyError):
    """A local call is not allowed on a stream in its current state."""


class FlowControlBlocked(SpdyError):
    """More data was offered than the peer's windows allow (strict flow control)."""


# --- frames -------------------------------------------------------------------------------


@dataclass
class DataFrame:
    stream_id: int
    data: bytes
    flags: int = 0


@dataclass
class SynStreamFrame:
    stream_id: int
    headers: Headers
    associated_id: int = 0
    priority: int = 0
    slot: int = 0
    flags: int = 0


@dataclass
class SynReplyFrame:
    stream_id: int
    headers: Headers
    flags: int = 0


@dataclass
class RstStreamFrame:
    stream_id: int
    status: int
    flags: int = 0


@dataclass
class SettingsFrame:
    # (id, value, entry flags)
    entries: list[tuple[int, int, int]] = field(default_factory=list)
    flags: int = 0


@dataclass
class PingFrame:
    ping_id: int
    flags: int = 0


@dataclass
class GoAwayFrame:
    last_good_stream_id: int
    status: int = 0
    flags: int = 0


@dataclass
class HeadersFrame:
    stream_id: int
    headers: Headers
    flags: int = 0


@dataclass
class WindowUpdateFrame:
    stream_id: int
    delta: int
    flags: int = 0


@dataclass
class UnknownControlFrame:
    type: int
    payload: bytes
    flags: int = 0


Frame = (
    DataFrame | SynStreamFrame | SynReplyFrame | RstStreamFrame | SettingsFrame | PingFrame
    | GoAwayFrame | HeadersFrame | WindowUpdateFrame | UnknownControlFrame
)


class HeaderCompressor:
    """One direction's header compression context."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 9,
                                   zlib.Z_DEFAULT_STRATEGY, HEADER_DICTIONARY)

    def compress(self, headers: Headers) -> bytes:
        return self._z.compress(encode_header_block(headers)) + self._z.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecompressor:
    """One direction's header decompression context."""

    def __init__(self, limit: int = MAX_HEADER_BLOCK) -> None:
        self._z = zlib.decompressobj(15, HEADER_DICTIONARY)
        self._limit = limit

    def decompress(self, block: bytes) -> bytes:
        try:
            raw = self._z.decompress(block, self._limit)
        except zlib.error as exc:
            raise SpdyProtocolError(f"header block does not decompress: {exc}") from None
        if self._z.unconsumed_tail:
            raise SpdyProtocolError(f"header block larger than {self._limit} bytes")
        return raw


def encode_header_block(headers: Headers) -> bytes:
    """The uncompressed name/value block; repeated names become one NUL-joined value."""
    merged: dict[str, list[str]] = {}
    for name, value in headers:
        merged.setdefault(name.lower(), []).append(value)
    out = [struct.pack(">I", len(merged))]
    for name, values in merged.items():
        if not name:
            raise SpdyStreamError("empty header name")
        n = name.encode("latin-1")
        v = "\0".join(values).encode("latin-1")
        out.append(struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v)
    return b"".join(out)


def decode_header_block(raw: bytes) -> Headers:
    """Parse an uncompressed name/value block (raises SpdyProtocolError when malformed)."""
    view = memoryview(raw)
    if len(view) < 4:
        raise SpdyProtocolError("header block too short")
    (count,) = struct.unpack_from(">I", view, 0)
    pos = 4
    headers: Headers = []
    seen: set[str] = set()
    for _ in range(count):
        name, pos = _read_string(view, pos)
        value, pos = _read_string(view, pos)
        if not name:
            raise SpdyProtocolError("empty header name")
        lname = name.decode("latin-1").lower()
        if lname in seen:
            raise SpdyProtocolError(f"duplicate header {lname!r}")
        seen.add(lname)
        for part in value.decode("latin-1").split("\0"):
            headers.append((lname, part))
    if pos != len(view):
        raise SpdyProtocolError("trailing bytes after the header block")
    return headers


def _read_string(view: memoryview, pos: int) -> tuple[bytes, int]:
    if pos + 4 > len(view):
        raise SpdyProtocolError("header block truncated")
    (length,) = struct.unpack_from(">I", view, pos)
    pos += 4
    if pos + length > len(view):
        raise SpdyProtocolError("header block truncated")
    return bytes(view[pos:pos + length]), pos + length


def _control(ftype: int, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME_PAYLOAD:
        raise SpdyStreamError("frame payload too large")
    return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(payload)) + payload


def encode_frame(frame: Frame, compressor: HeaderCompressor | None = None) -> bytes:
    """Serialise one frame (header-carrying frames need the connection's compressor)."""
    if isinstance(frame, DataFrame):
        if len(frame.data) > MAX_FRAME_PAYLOAD:
            raise SpdyStreamError("data frame too large")
        return struct.pack(">II", frame.stream_id & MAX_STREAM_ID,
                           (frame.flags << 24) | len(frame.data)) + frame.data
    if isinstance(frame, SynStreamFrame | SynReplyFrame | HeadersFrame):
        if compressor is None:
            raise SpdyStreamError("a header block needs the connection's compressor")
        block = compressor.compress(frame.headers)
        if isinstance(frame, SynStreamFrame):
            head = struct.pack(">IIBB", frame.stream_id & MAX_STREAM_ID,
                               frame.associated_id & MAX_STREAM_ID,
                               (frame.priority & 0x7) << 5, frame.slot)
            return _control(FrameType.SYN_STREAM, frame.flags, head + block)
        ftype = FrameType.SYN_REPLY if isinstance(frame, SynReplyFrame) else FrameType.HEADERS
        return _control(ftype, frame.flags, struct.pack(">I", frame.stream_id) + block)
    if isinstance(frame, RstStreamFrame):
        return _control(FrameType.RST_STREAM, frame.flags,
                        struct.pack(">II", frame.stream_id, frame.status))
    if isinstance(frame, SettingsFrame):
        body = struct.pack(">I", len(frame.entries)) + b"".join(
            struct.pack(">II", (eflags << 24) | sid, value)
            for sid, value, eflags in frame.entries)
        return _control(FrameType.SETTINGS, frame.flags, body)
    if isinstance(frame, PingFrame):
        return _control(FrameType.PING, frame.flags, struct.pack(">I", frame.ping_id))
    if isinstance(frame, GoAwayFrame):
        return _control(FrameType.GOAWAY, frame.flags,
                        struct.pack(">II", frame.last_good_stream_id, frame.status))
    if isinstance(frame, WindowUpdateFrame):
        return _control(FrameType.WINDOW_UPDATE, frame.flags,
                        struct.pack(">II", frame.stream_id, frame.delta))
    if isinstance(frame, UnknownControlFrame):
        return _control(frame.type, frame.flags, frame.payload)
    raise TypeError(f"not a SPDY frame: {frame!r}")


class FrameReader:
    """Splits a byte stream into frames; header blocks are decompressed in arrival order."""

    def __init__(self, max_payload: int = MAX_FRAME_PAYLOAD) -> None:
        self._buf = bytearray()
        self._decompressor = HeaderDecompressor()
        self._max_payload = max_payload

    def feed(self, data: bytes) -> None:
        self._buf += data

    def frames(self) -> Iterable[Frame]:
        """Yield every complete frame buffered so far."""
        while len(self._buf) >= 8:
            word1, word2 = struct.unpack_from(">II", self._buf, 0)
            length = word2 & 0xFFFFFF
            flags = word2 >> 24
            if length > self._max_payload:
                raise SpdyProtocolError(f"frame of {length} bytes exceeds the limit")
            if len(self._buf) < 8 + length:
                return
            payload = bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            if word1 & 0x80000000:
                version = (word1 >> 16) & 0x7FFF
                ftype = word1 & 0xFFFF
                if version != VERSION:
                    raise SpdyProtocolError(f"unsupported SPDY version {version}")
                yield self._control(ftype, flags, payload)
            else:
                yield DataFrame(word1 & MAX_STREAM_ID, payload, flags)

    def _control(self, ftype: int, flags: int, p: bytes) -> Frame:
        def need(n: int, exact: bool = True) -> None:
            if len(p) < n or (exact and len(p) != n):
                name = FrameType(ftype).name
                raise SpdyProtocolError(f"{name} frame has a bad length ({len(p)})")

        if ftype == FrameType.SYN_STREAM:
            need(10, exact=False)
            sid, assoc, prio, slot = struct.unpack_from(">IIBB", p, 0)
            headers = decode_header_block(self._decompressor.decompress(p[10:]))
            return SynStreamFrame(sid & MAX_STREAM_ID, headers, assoc & MAX_STREAM_ID,
                                  prio >> 5, slot, flags)
        if ftype in (FrameType.SYN_REPLY, FrameType.HEADERS):
            need(4, exact=False)
            (sid,) = struct.unpack_from(">I", p, 0)
            headers = decode_header_block(self._decompressor.decompress(p[4:]))
            cls = SynReplyFrame if ftype == FrameType.SYN_REPLY else HeadersFrame
            return cls(sid & MAX_STREAM_ID, headers, flags)
        if ftype == FrameType.RST_STREAM:
            need(8)
            sid, status = struct.unpack(">II", p)
            return RstStreamFrame(sid & MAX_STREAM_ID, status, flags)
        if ftype == FrameType.SETTINGS:
            need(4, exact=False)
            (count,) = struct.unpack_from(">I", p, 0)
            if len(p) != 4 + 8 * count:
                raise SpdyProtocolError(f"SETTINGS frame has a bad length ({len(p)})")
            entries = []
            for i in range(count):
                word, value = struct.unpack_from(">II", p, 4 + 8 * i)
                entries.append((word & 0xFFFFFF, value, word >> 24))
            return SettingsFrame(entries, flags)
        if ftype == FrameType.PING:
            need(4)
            return PingFrame(struct.unpack(">I", p)[0], flags)
        if ftype == FrameType.GOAWAY:
            need(8)
            last, status = struct.unpack(">II", p)
            return GoAwayFrame(last & MAX_STREAM_ID, status, flags)
        if ftype == FrameType.WINDOW_UPDATE:
            need(8)
            sid, delta = struct.unpack(">II", p)
            return WindowUpdateFrame(sid & MAX_STREAM_ID, delta & MAX_WINDOW, flags)
        return UnknownControlFrame(ftype, p, flags)


# --- events -------------------------------------------------------------------------------


@dataclass
class StreamOpened:
    """The peer opened a stream (SYN_STREAM). Answer with reply() or reset()."""

    stream_id: int
    headers: Headers
    fin: bool
    unidirectional: bool
    associated_id: int
    priority: int


@dataclass
class StreamReplied:
    stream_id: int
    headers: Headers
    fin: bool


@dataclass
class HeadersReceived:
    stream_id: int
    headers: Headers
    fin: bool


@dataclass
class DataReceived:
    """Data for a stream. Call acknowledge_data() once it is consumed (opens the window)."""

    stream_id: int
    data: bytes
    fin: bool


@dataclass
class StreamEnded:
    """The peer half-closed the stream (FIN)."""

    stream_id: int


@dataclass
class StreamReset:
    """The stream was reset, by the peer (remote=True) or by this side after a stream error."""

    stream_id: int
    status: int
    remote: bool


@dataclass
class StreamClosed:
    """Both halves are closed; the stream is forgotten."""

    stream_id: int


@dataclass
class SettingsReceived:
    settings: dict[int, int]


@dataclass
class PingReceived:
    """A ping from the peer (already answered) or the answer to one of ours (is_reply)."""

    ping_id: int
    is_reply: bool


@dataclass
class GoAwayReceived:
    last_good_stream_id: int
    status: int


@dataclass
class WindowUpdated:
    """The peer opened a send window (stream_id 0: the session's)."""

    stream_id: int
    delta: int


Event = (
    StreamOpened | StreamReplied | HeadersReceived | DataReceived | StreamEnded | StreamReset
    | StreamClosed | SettingsReceived | PingReceived | GoAwayReceived | WindowUpdated
)


# --- the connection -----------------------------------------------------------------------


class StreamState(enum.Enum):
    OPEN = "open"
    HALF_CLOSED_LOCAL = "half-closed (local)"
    HALF_CLOSED_REMOTE = "half-closed (remote)"
    CLOSED = "closed"


@dataclass
class _Stream:
    stream_id: int
    state: StreamState
    send_window: int
    recv_window: int
    unacked: int = 0  # consumed bytes not yet announced in a WINDOW_UPDATE
    replied: bool = False  # a SYN_REPLY went (or came) for this stream


class SpdyConnection:
    """The state of one SPDY/3.1 session, for either end."""

    def __init__(self, *, client: bool, peer_flow_control: PeerFlowControl = PeerFlowControl.STRICT,
                 initial_window: int = DEFAULT_WINDOW,
                 max_frame_payload: int = MAX_FRAME_PAYLOAD) -> None:
        self.client = client
        self._reader = FrameReader(max_frame_payload)
        self._compressor = HeaderCompressor()
        self._out = bytearray()
        self._streams: dict[int, _Stream] = {}
        self._next_stream_id = 1 if client else 2
        self._next_ping_id = 1 if client else 2
        self._last_peer_stream_id = 0
        self._peer_strict = peer_flow_control is PeerFlowControl.STRICT
        self._peer_initial_window = DEFAULT_WINDOW
        self._local_initial_window = initial_window
        self.session_send_window = DEFAULT_WINDOW
        self.session_recv_window = DEFAULT_WINDOW
        self._session_unacked = 0
        self.goaway_received = False
        self.goaway_sent = False
        self.closed = False
        if initial_window != DEFAULT_WINDOW:
            self._queue(SettingsFrame([(SettingId.INITIAL_WINDOW_SIZE, initial_window, 0)]))

    # -- output
    def data_to_send(self) -> bytes:
        """The bytes to write to the peer (and forget)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def _queue(self, frame: Frame) -> None:
        self._out += encode_frame(frame, self._compressor)

    # -- inspection
    @property
    def peer_flow_control(self) -> bool:
        """True when the peer's windows are binding."""
        return self._peer_strict

    def stream_state(self, stream_id: int) -> StreamState:
        s = self._streams.get(stream_id)
        return s.state if s else StreamState.CLOSED

    def open_stream_ids(self) -> list[int]:
        return list(self._streams)

    def send_window(self, stream_id: int) -> int:
        """How many bytes may be sent on the stream now (unlimited: a large number)."""
        s = self._streams.get(stream_id)
        if s is None or s.state in (StreamState.HALF_CLOSED_LOCAL, StreamState.CLOSED):
            return 0
        if not self._peer_strict:
            return MAX_WINDOW
        return max(0, min(s.send_window, self.session_send_window))

    # -- local actions
    def open_stream(self, headers: Headers, *, fin: bool = False, unidirectional: bool = False,
                    priority: int = 0, associated_id: int = 0) -> int:
        """Send SYN_STREAM; returns the new stream's id."""
        self._check_open()
        sid = self._next_stream_id
        if sid > MAX_STREAM_ID:
            raise SpdyStreamError("stream ids exhausted")
        self._next_stream_id += 2
        flags = (FLAG_FIN if fin else 0) | (FLAG_UNIDIRECTIONAL if unidirectional else 0)
        state = StreamState.HALF_CLOSED_LOCAL if fin else StreamState.OPEN
        if unidirectional:
            state = StreamState.CLOSED if fin else StreamState.HALF_CLOSED_REMOTE
        self._streams[sid] = _Stream(sid, state, self._peer_initial_window,
                                     self._local_initial_window, replied=False)
        self._queue(SynStreamFrame(sid, headers, associated_id, priority, 0, flags))
        if state is StreamState.CLOSED:
            del self._streams[sid]
        return sid

    def reply(self, stream_id: int, headers: Headers | None = None, *, fin: bool = False) -> None:
        """Accept a stream the peer opened (SYN_REPLY)."""
        s = self._local_stream(stream_id)
        if s.replied:
            raise SpdyStreamError(f"stream {stream_id} was already replied to")
        s.replied = True
        self._queue(SynReplyFrame(stream_id, headers or [], FLAG_FIN if fin else 0))
        if fin:
            self._close_local(s)

    def send_headers(self, stream_id: int, headers: Headers, *, fin: bool = False) -> None:
        s = self._local_stream(stream_id)
        self._queue(HeadersFrame(stream_id, headers, FLAG_FIN if fin else 0))
        if fin:
            self._close_local(s)

    def send_data(self, stream_id: int, data: bytes, *, fin: bool = False) -> None:
        """Send data (one frame); raises FlowControlBlocked beyond the peer's windows."""
        s = self._local_stream(stream_id)
        n = len(data)
        if self._peer_strict and n > min(s.send_window, self.session_send_window):
            raise FlowControlBlocked(
                f"stream {stream_id}: {n} bytes offered, window {self.send_window(stream_id)}")
        s.send_window -= n
        self.session_send_window -= n
        self._queue(DataFrame(stream_id, data, FLAG_FIN if fin else 0))
        if fin:
            self._close_local(s)

    def end_stream(self, stream_id: int) -> None:
        """Half-close this side (an empty data frame with FIN)."""
        self.send_data(stream_id, b"", fin=True)

    def reset_stream(self, stream_id: int, status: RstStatus = RstStatus.CANCEL) -> None:
        """Abort a stream (RST_STREAM); a no-op for a stream already gone."""
        if self.closed:
            return
        self._queue(RstStreamFrame(stream_id, int(status)))
        self._streams.pop(stream_id, None)

    def acknowledge_data(self, stream_id: int, size: int) -> None:
        """The application consumed ``size`` received bytes: reopen the windows."""
        if self.closed or size <= 0:
            return
        self._session_unacked += size
        if self._session_unacked >= DEFAULT_WINDOW // 2:
            self._queue(WindowUpdateFrame(0, self._session_unacked))
            self.session_recv_window += self._session_unacked
            self._session_unacked = 0
        s = self._streams.get(stream_id)
        if s is None or s.state in (StreamState.HALF_CLOSED_REMOTE, StreamState.CLOSED):
            return
        s.unacked += size
        if s.unacked >= self._local_initial_window // 2:
            self._queue(WindowUpdateFrame(stream_id, s.unacked))
            s.recv_window += s.unacked
            s.unacked = 0

    def ping(self) -> int:
        """Send a PING; returns its id (the reply arrives as PingReceived(is_reply=True))."""
        self._check_open()
        pid = self._next_ping_id
        self._next_ping_id = (self._next_ping_id + 2) & 0xFFFFFFFF
        self._queue(PingFrame(pid))
        return pid

    def update_settings(self, settings: dict[int, int]) -> None:
        self._check_open()
        if SettingId.INITIAL_WINDOW_SIZE in settings:
            self._local_initial_window = settings[SettingId.INITIAL_WINDOW_SIZE]
        self._queue(SettingsFrame([(sid, v, 0) for sid, v in settings.items()]))

    def goaway(self, status: GoAwayStatus = GoAwayStatus.OK) -> None:
        """Announce the end of the session (no new streams from the peer are accepted)."""
        if self.goaway_sent:
            return
        self.goaway_sent = True
        self._queue(GoAwayFrame(self._last_peer_stream_id, int(status)))

    # -- input
    def receive_data(self, data: bytes) -> list[Event]:
        """Process bytes from the peer; raises SpdyProtocolError on a session error."""
        if self.closed:
            return []
        events: list[Event] = []
        self._reader.feed(data)
        try:
            for frame in self._reader.frames():
                self._handle(frame, events)
        except SpdyProtocolError as exc:
            self.goaway(exc.status)
            self.closed = True
            raise
        return events

    def _handle(self, frame: Frame, events: list[Event]) -> None:
        if isinstance(frame, DataFrame):
            self._on_data(frame, events)
        elif isinstance(frame, SynStreamFrame):
            self._on_syn_stream(frame, events)
        elif isinstance(frame, SynReplyFrame):
            s = self._streams.get(frame.stream_id)
            if s is None:
                self._stream_error(frame.stream_id, RstStatus.INVALID_STREAM, events)
            elif s.replied:
                self._stream_error(frame.stream_id, RstStatus.STREAM_IN_USE, events)
            else:
                s.replied = True
                fin = bool(frame.flags & FLAG_FIN)
                events.append(StreamReplied(frame.stream_id, frame.headers, fin))
                if fin:
                    self._close_remote(s, events)
        elif isinstance(frame, HeadersFrame):
            s = self._streams.get(frame.stream_id)
            if s is None or s.state in (StreamState.HALF_CLOSED_REMOTE, StreamState.CLOSED):
                self._stream_error(frame.stream_id, RstStatus.INVALID_STREAM, events)
            else:
                fin = bool(frame.flags & FLAG_FIN)
                events.append(HeadersReceived(frame.stream_id, frame.headers, fin))
                if fin:
                    self._close_remote(s, events)
        elif isinstance(frame, RstStreamFrame):
            if frame.stream_id == 0:
                raise SpdyProtocolError("RST_STREAM for stream 0")
            if self._streams.pop(frame.stream_id, None) is not None:
                events.append(StreamReset(frame.stream_id, frame.status, remote=True))
        elif isinstance(frame, SettingsFrame):
            self._on_settings(frame, events)
        elif isinstance(frame, PingFrame):
            is_reply = (frame.ping_id & 1) == (1 if self.client else 0)
            if not is_reply:
                self._queue(PingFrame(frame.ping_id))
            events.append(PingReceived(frame.ping_id, is_reply))
        elif isinstance(frame, GoAwayFrame):
            self.goaway_received = True
            events.append(GoAwayReceived(frame.last_good_stream_id, frame.status))
        elif isinstance(frame, WindowUpdateFrame):
            self._on_window_update(frame, events)
        # Unknown control frames (CREDENTIAL of SPDY/3, extensions) are ignored, as required.

    def _on_syn_stream(self, f: SynStreamFrame, events: list[Event]) -> None:
        sid = f.stream_id
        peer_parity = 0 if self.client else 1
        if sid == 0 or sid % 2 != peer_parity:
            raise SpdyProtocolError(f"SYN_STREAM with invalid stream id {sid}")
        if sid in self._streams:
            self._stream_error(sid, RstStatus.PROTOCOL_ERROR, events)
            return
        if sid <= self._last_peer_stream_id:
            raise SpdyProtocolError(f"SYN_STREAM id {sid} not above {self._last_peer_stream_id}")
        self._last_peer_stream_id = sid
        if self.goaway_sent:
            self._queue(RstStreamFrame(sid, RstStatus.REFUSED_STREAM))
            return
        fin = bool(f.flags & FLAG_FIN)
        uni = bool(f.flags & FLAG_UNIDIRECTIONAL)
        state = StreamState.HALF_CLOSED_REMOTE if fin else StreamState.OPEN
        if uni:
            state = StreamState.CLOSED if fin else StreamState.HALF_CLOSED_LOCAL
        s = _Stream(sid, state, self._peer_initial_window, self._local_initial_window)
        self._streams[sid] = s
        events.append(StreamOpened(sid, f.headers, fin, uni, f.associated_id, f.priority))
        if fin:
            events.append(StreamEnded(sid))
        if state is StreamState.CLOSED:
            del self._streams[sid]
            events.append(StreamClosed(sid))

    def _on_data(self, f: DataFrame, events: list[Event]) -> None:
        n = len(f.data)
        self.session_recv_window -= n
        if self.session_recv_window < 0 and self._peer_strict:
            raise SpdyProtocolError("peer overran the session window")
        s = self._streams.get(f.stream_id)
        if s is None:
            # The session window still counts it; give it back so the session does not starve.
            self.acknowledge_data(0, n)
            status = (RstStatus.STREAM_ALREADY_CLOSED if f.stream_id <= max(
                self._last_peer_stream_id, self._next_stream_id - 2) else RstStatus.INVALID_STREAM)
            self._stream_error(f.stream_id, status, events)
            return
        if s.state in (StreamState.HALF_CLOSED_REMOTE, StreamState.CLOSED):
            self.acknowledge_data(0, n)
            self._stream_error(f.stream_id, RstStatus.STREAM_ALREADY_CLOSED, events)
            return
        s.recv_window -= n
        if s.recv_window < 0 and self._peer_strict:
            self.acknowledge_data(0, n)
            self._stream_error(f.stream_id, RstStatus.FLOW_CONTROL_ERROR, events)
            return
        fin = bool(f.flags & FLAG_FIN)
        if n:
            events.append(DataReceived(f.stream_id, f.data, fin))
        if fin:
            self._close_remote(s, events)

    def _on_settings(self, f: SettingsFrame, events: list[Event]) -> None:
        settings = {sid: value for sid, value, _ in f.entries}
        window = settings.get(SettingId.INITIAL_WINDOW_SIZE)
        if window is not None:
            if window > MAX_WINDOW:
                raise SpdyProtocolError(f"INITIAL_WINDOW_SIZE {window} too large")
            self._peer_strict = True
            delta = window - self._peer_initial_window
            self._peer_initial_window = window
            for s in self._streams.values():
                s.send_window += delta
        events.append(SettingsReceived(settings))

    def _on_window_update(self, f: WindowUpdateFrame, events: list[Event]) -> None:
        if f.delta == 0:
            # 3.1 makes a zero delta a protocol error; stream 0 is the session.
            if f.stream_id == 0:
                raise SpdyProtocolError("WINDOW_UPDATE with a zero delta")
            self._stream_error(f.stream_id, RstStatus.PROTOCOL_ERROR, events)
            return
        self._peer_strict = True
        if f.stream_id == 0:
            self.session_send_window += f.delta
            if self.session_send_window > MAX_WINDOW:
                raise SpdyProtocolError("session window overflow", GoAwayStatus.PROTOCOL_ERROR)
            events.append(WindowUpdated(0, f.delta))
            return
        s = self._streams.get(f.stream_id)
        if s is None:
            return  # a late update for a finished stream is normal
        s.send_window += f.delta
        if s.send_window > MAX_WINDOW:
            self._stream_error(f.stream_id, RstStatus.FLOW_CONTROL_ERROR, events)
            return
        events.append(WindowUpdated(f.stream_id, f.delta))

    # -- helpers
    def _check_open(self) -> None:
        if self.closed:
            raise SpdyStreamError("the session is closed")

    def _local_stream(self, stream_id: int) -> _Stream:
        self._check_open()
        s = self._streams.get(stream_id)
        if s is None:
            raise SpdyStreamError(f"stream {stream_id} is not open")
        if s.state in (StreamState.HALF_CLOSED_LOCAL, StreamState.CLOSED):
            raise SpdyStreamError(f"stream {stream_id} is closed for sending")
        return s

    def _stream_error(self, stream_id: int, status: RstStatus, events: list[Event]) -> None:
        self._queue(RstStreamFrame(stream_id, int(status)))
        if self._streams.pop(stream_id, None) is not None:
            events.append(StreamReset(stream_id, int(status), remote=False))

    def _close_local(self, s: _Stream) -> None:
        if s.state is StreamState.HALF_CLOSED_REMOTE:
            s.state = StreamState.CLOSED
            del self._streams[s.stream_id]
        else:
            s.state = StreamState.HALF_CLOSED_LOCAL

    def _close_remote(self, s: _Stream, events: list[Event]) -> None:
        events.append(StreamEnded(s.stream_id))
        if s.state is StreamState.HALF_CLOSED_LOCAL:
            s.state = StreamState.CLOSED
            del self._streams[s.stream_id]
            events.append(StreamClosed(s.stream_id))
        else:
            s.state = StreamState.HALF_CLOSED_REMOTE
