"""What both HTTP/2 gRPC transports share: status codes, timeouts, message framing, sockets.

``servin.client.h2channel`` (on the ``h2`` library) and ``servin.client.quick.wire`` (its
own frames, for the quick CLI front) both speak gRPC over HTTP/2; the facts of that protocol
and the way a failed connection is reported live here once, so both report identical errors.
Light on purpose: the quick front imports it, so nothing heavy at module level.
"""

from __future__ import annotations

import socket

from servin.client.channel import Endpoint
from servin.client.errors import StatusError

CONNECT_TIMEOUT = 20.0
USER_AGENT = b"servin-h2/1"

# gRPC status codes by number.
CODE_NAMES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)

# What a reply without grpc-status means, by HTTP status (gRPC's HTTP-to-gRPC mapping).
HTTP_CODES = {
    400: "INTERNAL",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "UNIMPLEMENTED",
    429: "UNAVAILABLE",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "UNAVAILABLE",
}

# HTTP/2 error codes (RFC 9113 section 7) by number, as RST_STREAM and GOAWAY carry them.
H2_ERROR_NAMES = (
    "NO_ERROR",
    "PROTOCOL_ERROR",
    "INTERNAL_ERROR",
    "FLOW_CONTROL_ERROR",
    "SETTINGS_TIMEOUT",
    "STREAM_CLOSED",
    "FRAME_SIZE_ERROR",
    "REFUSED_STREAM",
    "CANCEL",
    "COMPRESSION_ERROR",
    "CONNECT_ERROR",
    "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY",
    "HTTP_1_1_REQUIRED",
)
H2_CANCEL = 0x8

# What a RST_STREAM without a status means, by HTTP/2 error code.
RESET_CODES = {
    0x7: "UNAVAILABLE",  # REFUSED_STREAM
    0x8: "CANCELLED",  # CANCEL
    0xB: "RESOURCE_EXHAUSTED",  # ENHANCE_YOUR_CALM
    0xC: "PERMISSION_DENIED",  # INADEQUATE_SECURITY
}

Status = tuple[str, str]
OK: Status = ("OK", "")


def h2_error_name(code: int) -> str:
    """The name of an HTTP/2 error code (its number when unknown)."""
    return H2_ERROR_NAMES[code] if 0 <= code < len(H2_ERROR_NAMES) else str(code)


def reset_status(code: int) -> Status:
    """The status of a call the daemon reset with HTTP/2 error ``code``."""
    return RESET_CODES.get(code, "INTERNAL"), f"the daemon reset the call ({h2_error_name(code)})"


def goaway_status(code: int) -> Status:
    """The status of calls a GOAWAY with ``code`` cut off."""
    return "UNAVAILABLE", f"the daemon closed the connection (GOAWAY {h2_error_name(code)})"


def encode_timeout(seconds: float) -> bytes:
    """A grpc-timeout header value (at most 8 digits and a unit), rounded up."""
    for unit, scale in ((b"m", 1000), (b"S", 1), (b"M", 1 / 60), (b"H", 1 / 3600)):
        value = -int(-seconds * scale // 1)  # ceil
        if value < 100_000_000:
            return str(max(value, 1)).encode() + unit
    return b"99999999H"


def decode_status(headers: dict[bytes, bytes]) -> Status | None:
    """The (code name, message) in trailers, or None if they carry no grpc-status."""
    raw = headers.get(b"grpc-status")
    if raw is None:
        return None
    try:
        code = CODE_NAMES[int(raw)]
    except (ValueError, IndexError):
        code = "UNKNOWN"
    message = headers.get(b"grpc-message", b"").decode("ascii", "replace")
    if "%" in message:
        from urllib.parse import unquote  # only for a message that needs it

        message = unquote(message)
    return code, message


def response_head(headers: dict[bytes, bytes]) -> tuple[int, Status | None]:
    """A reply's HTTP status and the call status its first HEADERS already settle: a
    trailers-only reply's status, an HTTP error, or a reply that is not gRPC (else None)."""
    try:
        http_status = int(headers.get(b":status", b"0"))
    except ValueError:
        http_status = 0
    status = decode_status(headers)
    if status is not None:
        return http_status, status
    if http_status != 200:
        code = HTTP_CODES.get(http_status, "UNKNOWN")
        return http_status, (code, f"the daemon answered HTTP {http_status}")
    if not headers.get(b"content-type", b"").startswith(b"application/grpc"):
        return http_status, ("UNKNOWN", "the daemon's reply is not gRPC")
    return http_status, None


def frame_message(payload: bytes) -> bytes:
    """One gRPC message on the wire: flag 0 (not compressed), length, payload."""
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def request_headers(
    endpoint: Endpoint, path: str, timeout: float | None
) -> list[tuple[bytes, bytes]]:
    """The HEADERS of a gRPC call to ``path`` on ``endpoint``."""
    headers = [
        (b":method", b"POST"),
        (b":scheme", b"https" if endpoint.tls is not None else b"http"),
        (b":path", path.encode()),
        (b":authority", authority(endpoint)),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
        (b"user-agent", USER_AGENT),
    ]
    if timeout is not None:
        headers.append((b"grpc-timeout", encode_timeout(timeout)))
    return headers


def authority(endpoint: Endpoint) -> bytes:
    """The ``:authority`` of calls to ``endpoint``."""
    return b"localhost" if endpoint.unix else f"{endpoint.host}:{endpoint.port}".encode()


def connect(endpoint: Endpoint, timeout: float) -> socket.socket:
    """A connected (blocking) socket to ``endpoint``; UNAVAILABLE ``StatusError`` if not."""
    where = f"unix:{endpoint.unix}" if endpoint.unix else f"{endpoint.host}:{endpoint.port}"
    sock: socket.socket | None = None
    try:
        if endpoint.unix:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(endpoint.unix)
        else:
            sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if endpoint.tls is not None:
                from servin.client.tls import TLSSocket  # ssl only for tcp:// with TLS

                wrapped = TLSSocket(sock, endpoint.tls, endpoint.host)
                wrapped.settimeout(None)
                return wrapped  # type: ignore[return-value]  # socket-shaped: what we call
        sock.settimeout(None)
    except OSError as exc:
        if sock is not None:
            sock.close()
        # ssl errors carry their reason in str(), not strerror
        why = str(exc) if isinstance(exc, ssl_errors()) else exc.strerror or str(exc)
        why = why or type(exc).__name__
        raise StatusError("UNAVAILABLE", f"failed to connect to {where}: {why}") from None
    return sock


def ssl_errors() -> tuple[type[BaseException], ...]:
    """ssl's error class when ssl is loaded (it only is for TLS connections), else none."""
    import sys

    ssl = sys.modules.get("ssl")
    return (ssl.SSLError,) if ssl is not None else ()


def lost(exc: OSError) -> Status:
    """The status of calls whose connection failed with ``exc``."""
    if isinstance(exc, ConnectionResetError):
        return ("UNAVAILABLE", "connection reset by the daemon")
    return ("UNAVAILABLE", f"socket closed ({exc.strerror or exc})")
