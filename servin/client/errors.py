"""gRPC failures turned into servin.errors, with the one-line "daemon unreachable" message."""

from __future__ import annotations

import grpc

from servin.errors import ServinError, Unavailable, error_from_grpc_code

_CONNECT_HINTS = (
    "failed to connect",
    "connection refused",
    "no such file",
    "connect failed",
    "socket closed",
    "connection reset",
    "permission denied",
)


class DaemonUnreachable(Unavailable):
    """No daemon answers at the address."""


def unreachable(url: str, detail: str = "") -> DaemonUnreachable:
    """The one line a user sees when the daemon cannot be reached."""
    why = f" ({detail})" if detail else ""
    return DaemonUnreachable(
        f"Cannot connect to the Servin daemon at {url}{why}. Is the daemon running? "
        "Start it with 'sudo servin daemon' (or 'sudo servind')."
    )


def translate(exc: grpc.RpcError, url: str) -> ServinError:
    """The servin error for a failed call to the daemon at ``url``."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = (exc.details() if hasattr(exc, "details") else "") or ""
    if code == grpc.StatusCode.UNAVAILABLE and any(h in details.lower() for h in _CONNECT_HINTS):
        return unreachable(url)
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return error_from_grpc_code("UNIMPLEMENTED", "the daemon does not support this call yet")
    return error_from_grpc_code(code.name, details or code.name.lower())
