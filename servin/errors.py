"""The typed errors every layer shares, and the one table that maps them onto each front door.

The engine raises these; the gRPC servicers, the CRI servicers and the Docker REST routes map
them to status codes through ``ERROR_TABLE``; the client turns status codes back into the same
classes, so the CLI and TUI can catch ``NotFound`` whether the daemon is local or remote.
"""

from __future__ import annotations

from typing import NamedTuple


class ServinError(Exception):
    """Base class of every error Servin reports to a user."""

    kind = "unknown"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidArgument(ServinError):
    """The request is malformed: a bad reference, a bad flag value, a non-tar input."""

    kind = "invalid_argument"


class NotFound(ServinError):
    """The named object does not exist."""

    kind = "not_found"


class Conflict(ServinError):
    """The object exists already, is in use, or is in the wrong state for the request."""

    kind = "conflict"


class PermissionDenied(ServinError):
    """The caller may not do this."""

    kind = "permission_denied"


class ResourceExhausted(ServinError):
    """A limit was reached: addresses, ports, disk."""

    kind = "resource_exhausted"


class Unavailable(ServinError):
    """The daemon (or a registry, or a runtime) cannot be reached right now."""

    kind = "unavailable"


class Internal(ServinError):
    """A bug or an unexpected failure inside the engine."""

    kind = "internal"


class DeadlineExceeded(Unavailable):
    """The operation ran out of the time it was given (a CRI ExecSync's timeout); a kind of
    Unavailable, as clients have always treated a deadline."""

    kind = "deadline_exceeded"


class Cancelled(ServinError):
    """The operation was cancelled by the caller."""

    kind = "cancelled"


class ErrorMapping(NamedTuple):
    """How one error kind looks at each front door."""

    cls: type[ServinError]
    grpc_code: str  # a grpc.StatusCode name; kept as text so this module needs no grpc import
    http_status: int


ERROR_TABLE: tuple[ErrorMapping, ...] = (
    ErrorMapping(InvalidArgument, "INVALID_ARGUMENT", 400),
    ErrorMapping(NotFound, "NOT_FOUND", 404),
    ErrorMapping(Conflict, "FAILED_PRECONDITION", 409),
    ErrorMapping(PermissionDenied, "PERMISSION_DENIED", 403),
    ErrorMapping(ResourceExhausted, "RESOURCE_EXHAUSTED", 507),
    ErrorMapping(Unavailable, "UNAVAILABLE", 503),
    ErrorMapping(Cancelled, "CANCELLED", 499),
    ErrorMapping(DeadlineExceeded, "DEADLINE_EXCEEDED", 504),
    ErrorMapping(Internal, "INTERNAL", 500),
)

_BY_CLASS = {m.cls: m for m in ERROR_TABLE}
_BY_GRPC = {m.grpc_code: m.cls for m in ERROR_TABLE}
# Codes the table does not name but a transport may produce.
_BY_GRPC.update(
    {
        "ALREADY_EXISTS": Conflict,
        "ABORTED": Conflict,
        "UNIMPLEMENTED": Internal,
        "UNKNOWN": Internal,
        "OUT_OF_RANGE": InvalidArgument,
        "UNAUTHENTICATED": PermissionDenied,
        "DATA_LOSS": Internal,
    }
)


def mapping_for(error: ServinError) -> ErrorMapping:
    """The mapping row of an error (its nearest class in the table)."""
    for cls in type(error).__mro__:
        if cls in _BY_CLASS:
            return _BY_CLASS[cls]
    return _BY_CLASS[Internal]


def error_from_grpc_code(code_name: str, message: str) -> ServinError:
    """Rebuild a typed error from a gRPC status code name and its details."""
    return _BY_GRPC.get(code_name, Internal)(message)
