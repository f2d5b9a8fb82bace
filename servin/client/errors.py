"""Failed calls turned into servin.errors, with the one-line "daemon unreachable" message.

Both transports end up here: grpcio's ``RpcError`` and the lean transport's ``StatusError``
are read as a (code name, details) pair, so this module never imports grpc.
"""

from __future__ import annotations

from servin.errors import Internal, ServinError, Unavailable, error_from_grpc_code

_CONNECT_HINTS = (
    "failed to connect",
    "connection refused",
    "no such file",
    "connect failed",
    "socket closed",
    "connection reset",
    "permission denied",
)


_TLS_HINTS = ("ssl", "certificate", "tls", "handshake")

UNSUPPORTED = "the daemon does not support this call yet"
"""The message of a call the daemon does not implement (gRPC UNIMPLEMENTED)."""


def is_unsupported(exc: BaseException) -> bool:
    """Whether a failed call failed because the daemon does not implement it."""
    return isinstance(exc, Unimplemented)


class StatusError(Exception):
    """A call's non-OK gRPC status: the code's name ("NOT_FOUND", ...) and its message."""

    def __init__(self, code: str, details: str = "") -> None:
        super().__init__(f"{code}: {details}" if details else code)
        self.code = code
        self.details = details


class DaemonUnreachable(Unavailable):
    """No daemon answers at the address."""


class Unimplemented(Internal):
    """The daemon does not implement this call (an older or partial daemon)."""


def unreachable(url: str, detail: str = "") -> DaemonUnreachable:
    """The one line a user sees when the daemon cannot be reached."""
    why = f" ({detail})" if detail else ""
    return DaemonUnreachable(
        f"Cannot connect to the Servin daemon at {url}{why}. Is the daemon running? "
        "Start it with 'sudo servin daemon' (or 'sudo servind')."
    )


def tls_failure(url: str, details: str) -> DaemonUnreachable:
    """The one line for a TLS connection that failed: what TLS said, not "is it running?"."""
    why = details.removeprefix("socket closed ")
    if why.startswith("(") and why.endswith(")"):
        why = why[1:-1]
    if why.startswith("failed to connect to "):
        why = why.split(": ", 1)[-1]
    if "eof" in why.lower():
        why += " (does the daemon require a client certificate? --tlscert/--tlskey)"
    return DaemonUnreachable(f"Cannot connect to the Servin daemon at {url} over TLS: {why}")


def status_of(exc: BaseException) -> tuple[str, str]:
    """The (code name, details) of a failed call from either transport."""
    if isinstance(exc, StatusError):
        return exc.code, exc.details
    # grpc.RpcError (read by shape, so the lean path never imports grpc)
    code_of, details_of = getattr(exc, "code", None), getattr(exc, "details", None)
    code = code_of() if callable(code_of) else None
    details = details_of() if callable(details_of) else ""
    return (getattr(code, "name", None) or "UNKNOWN"), details or ""


def translate_status(code: str, details: str, url: str) -> ServinError:
    """The servin error for a call to the daemon at ``url`` that ended with ``code``."""
    lowered = details.lower()
    if code == "UNAVAILABLE" and any(h in lowered for h in _TLS_HINTS):
        return tls_failure(url, details)
    if code == "UNAVAILABLE" and any(h in lowered for h in _CONNECT_HINTS):
        return unreachable(url)
    if code == "UNIMPLEMENTED":
        return Unimplemented(UNSUPPORTED)
    return error_from_grpc_code(code, details or code.lower())


def translate(exc: BaseException, url: str) -> ServinError:
    """The servin error for a failed call (grpcio ``RpcError`` or ``StatusError``)."""
    code, details = status_of(exc)
    return translate_status(code, details, url)
