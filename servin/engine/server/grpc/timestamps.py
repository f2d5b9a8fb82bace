"""Conversions between the engine's times and protobuf Timestamps."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from servin.errors import InvalidArgument


def from_ns(ns: int) -> Timestamp:
    """A Timestamp from nanoseconds since the epoch (0 stays unset)."""
    ts = Timestamp()
    if ns:
        ts.FromNanoseconds(ns)
    return ts


def from_rfc3339(text: str) -> Timestamp:
    """A Timestamp from an RFC 3339 string as found in image configs (empty stays unset)."""
    ts = Timestamp()
    if text:
        try:
            ts.FromJsonString(text)
        except ValueError:
            ts.FromDatetime(datetime.fromisoformat(text.replace("Z", "+00:00")))
    return ts


def to_ns(ts: Timestamp) -> int | None:
    """Nanoseconds since the epoch, or None for an unset Timestamp; InvalidArgument for one
    out of protobuf's range (negative nanos, years past 9999)."""
    if not ts.seconds and not ts.nanos:
        return None
    try:
        return ts.ToNanoseconds() if _valid(ts) else _invalid(ts)
    except ValueError:
        return _invalid(ts)


def _valid(ts: Timestamp) -> bool:
    return 0 <= ts.nanos < 1_000_000_000 and _MIN_SECONDS <= ts.seconds <= _MAX_SECONDS


def _invalid(ts: Timestamp) -> int:
    raise InvalidArgument(f"invalid timestamp: seconds {ts.seconds}, nanos {ts.nanos}")


# Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799
