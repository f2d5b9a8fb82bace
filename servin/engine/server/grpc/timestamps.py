"""Conversions between the engine's times and protobuf Timestamps."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp


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
    """Nanoseconds since the epoch, or None for an unset Timestamp."""
    if not ts.seconds and not ts.nanos:
        return None
    return ts.ToNanoseconds()
