"""docker-style list filters (``--filter key=value``) as the servicers receive them."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from datetime import datetime

from servin.api.servin.v1 import common_pb2
from servin.errors import InvalidArgument


def filter_map(filters: Iterable[common_pb2.Filter], allowed: set[str]) -> dict[str, list[str]]:
    """Group filter values by key; raise InvalidArgument for a key the list does not know."""
    out: dict[str, list[str]] = {}
    for f in filters:
        if f.key not in allowed:
            raise InvalidArgument(f"invalid filter {f.key!r} (valid: {', '.join(sorted(allowed))})")
        out.setdefault(f.key, []).extend(f.values)
    return out


def label_matches(labels: dict[str, str], wanted: list[str]) -> bool:
    """True when every ``key`` or ``key=value`` in ``wanted`` is in ``labels``."""
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def parse_bool(key: str, values: list[str]) -> bool:
    """A boolean filter value (true/false/1/0)."""
    value = values[-1].lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise InvalidArgument(
        f"invalid value {values[-1]!r} for filter {key!r}: expected true or false"
    )


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                   "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


def parse_until(value: str, now: float | None = None) -> int:
    """docker's ``until=`` filter value as nanoseconds since the epoch: a Go duration before
    now (``24h``, ``1h30m``), a Unix timestamp (``1700000000[.5]``) or an RFC 3339 time."""
    now = time.time() if now is None else now
    parts = _DURATION_PART.findall(value)
    if parts and "".join(n + u for n, u in parts) == value:
        return int((now - sum(float(n) * _DURATION_UNITS[u] for n, u in parts)) * 1e9)
    try:
        return int(float(value) * 1e9)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(
            f"invalid until filter {value!r}: use a duration (24h), a Unix time or RFC 3339"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return int(moment.timestamp() * 1e9)


PRUNE_FILTERS = {"until", "label", "label!"}


def prune_predicate(filters: dict[str, list[str]]) -> Callable[[int, dict[str, str]], bool]:
    """docker's prune filters (``until=``, ``label=``, ``label!=``) as one predicate over an
    object's creation time (ns) and labels: True means it may be pruned."""
    cutoffs = [parse_until(v) for v in filters.get("until", [])]
    labels = filters.get("label", [])
    not_labels = filters.get("label!", [])

    def match(created_ns: int, object_labels: dict[str, str]) -> bool:
        if any(created_ns >= cutoff for cutoff in cutoffs):
            return False
        if labels and not label_matches(object_labels, labels):
            return False
        return not any(label_matches(object_labels, [x]) for x in not_labels)

    return match
