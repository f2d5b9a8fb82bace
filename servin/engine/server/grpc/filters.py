"""docker-style list filters (``--filter key=value``) as the servicers receive them."""

from __future__ import annotations

from collections.abc import Iterable

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
