"""RFC 3339 times as docker writes and reads them (nanosecond precision, any offset)."""

from __future__ import annotations

import re
import time
from datetime import datetime

# docker's zero time (Go's time.Time{}), shown for "never".
ZERO = "0001-01-01T00:00:00Z"
_FRACTION = re.compile(r"\.(\d+)")


def format_ns(ns: int) -> str:
    """``2024-05-01T10:20:30.123456789Z`` (UTC, trailing zeros of the fraction dropped, as Go's
    RFC3339Nano); 0 is docker's zero time."""
    if not ns:
        return ZERO
    seconds, nanos = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def parse_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time (up to 9 decimals, ``Z`` or an offset);
    ValueError if it is not one."""
    m = _FRACTION.search(text)
    nanos = 0
    if m:
        nanos = int((m.group(1) + "000000000")[:9])
        text = text[: m.start()] + text[m.end():]
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return int(moment.timestamp()) * 1_000_000_000 + nanos


def parse_ns_or_zero(text: str) -> int:
    """``parse_ns``, with 0 for an empty or malformed time."""
    if not text:
        return 0
    try:
        return parse_ns(text)
    except ValueError:
        return 0
