"""``logs`` output and flags, shared by the click command and the quick front.

Light on purpose (no click, no protobuf at import): the quick front imports it on its way to
the first byte. ``write_logs`` takes any ``LogChunk``-shaped object (the generated message or
the quick front's lite one).
"""

from __future__ import annotations

import sys
import time

from servin.client.logs import Stamper, records
from servin.errors import InvalidArgument

TYPE_CHECKING = False  # typing and collections stay out of the quick CLI's start-up
if TYPE_CHECKING:
    from collections.abc import Iterable

    from servin.client.logs import LogChunkLike

_NS = 1_000_000_000


def parse_tail(text: str) -> int:
    """``--tail``: ``all`` (-1) or a count."""
    try:
        return -1 if text == "all" else int(text)
    except ValueError:
        raise InvalidArgument(f"invalid value for --tail: {text!r}") from None


def parse_time_ns(text: str, flag: str) -> int:
    """docker's --since/--until as nanoseconds since the epoch (0 when empty): RFC 3339, a
    Unix timestamp, or a duration back from now (10m, 1h30m)."""
    if not text:
        return 0
    import re

    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", text)
    if m and any(m.groups()):
        hours, minutes, seconds = (float(g) if g else 0.0 for g in m.groups())
        return int((time.time() - hours * 3600 - minutes * 60 - seconds) * 1e9)
    try:
        return int(float(text) * 1e9)
    except ValueError:
        pass
    from datetime import UTC, datetime

    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f"invalid value for {flag}: {text!r}") from None
    if when.tzinfo is None:  # a time without a zone is UTC (as protobuf's FromDatetime reads it)
        when = when.replace(tzinfo=UTC)
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * _NS + delta.microseconds * 1000


def write_logs(chunks: Iterable[LogChunkLike], *, timestamps: bool, details: bool,
               follow: bool) -> None:
    """Write ``LogChunk``s to stdout and stderr: buffered (flushed where the stream changes,
    so the two keep their order on one terminal), and at once after each chunk when
    following. ``timestamps`` put docker's time, ``details`` the entry's attributes
    (``k=v,k=v``, from ``--log-opt labels=/env=``) and a space before each line."""
    stdout, stderr = sys.stdout.buffer, sys.stderr.buffer
    stamp = Stamper() if timestamps else None
    last = stdout
    try:
        for chunk in chunks:
            attrs = b""
            if details:
                text = ",".join(f"{k}={v}" for k, v in sorted(chunk.attrs.items()))
                attrs = text.encode() + b" "
            for stream, ns, data in records(chunk):
                target = stderr if stream == 2 else stdout
                if target is not last:
                    last.flush()
                    last = target
                if stamp is not None:
                    target.write(stamp(ns) + b" " + attrs + data)
                elif details:
                    target.write(attrs + data)
                else:
                    target.write(data)
            if follow:
                last.flush()
    finally:
        last.flush()
