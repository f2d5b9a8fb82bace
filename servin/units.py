"""Sizes and durations as docker spells them, for the CLI and the engine alike.

This module depends on nothing of Servin but its errors, so the CLI (which must not import
the engine) and the engine parse ``512m`` or ``1m30s`` the same way.
"""

from __future__ import annotations

import re

from servin.errors import InvalidArgument

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$", re.I)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
                "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_bytes(text: str, what: str = "size") -> int:
    """``512m`` -> bytes (docker's RAMInBytes: binary units, an optional ``b``); ``-1`` stays
    -1 (unlimited). InvalidArgument naming ``what`` otherwise."""
    if text.strip() == "-1":
        return -1
    m = _SIZE.match(text.strip())
    if not m:
        raise InvalidArgument(f"invalid size for {what}: {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_duration_ns(text: str, what: str = "duration") -> int:
    """A Go duration (``1m30s``, ``500ms``, ``2h``) in nanoseconds."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise InvalidArgument(f"invalid duration {text!r} for {what} (e.g. 30s, 1m30s, 500ms)")
    return int(sum(float(n) * _DURATION_NS[u] for n, u in parts))


def is_duration(text: str) -> bool:
    """Whether ``text`` is a Go duration."""
    parts = _DURATION_PART.findall(text)
    return bool(parts) and "".join(n + u for n, u in parts) == text
