"""Docker Engine API versions: the ones served, and docker's way of comparing them."""

from __future__ import annotations

from functools import lru_cache

# The newest API version served, and advertised by /_ping's Api-Version: docker 28.2's (the
# docker CLI v28 negotiates down to what the server advertises, never up).
API_VERSION = "1.50"
# The oldest accepted (dockerd's own minimum).
MIN_API_VERSION = "1.24"


@lru_cache(maxsize=64)
def version_key(version: str) -> tuple[int, ...]:
    """``"1.50"`` -> (1, 50); a part that is not a number counts as 0, as docker counts it."""
    parts = []
    for part in version.split("."):
        try:
            parts.append(int(part))
        except ValueError:
            parts.append(0)
    return tuple(parts)


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older than, the same as or newer than ``b``."""
    if a == b:
        return 0
    ka, kb = version_key(a), version_key(b)
    width = max(len(ka), len(kb))
    ka += (0,) * (width - len(ka))
    kb += (0,) * (width - len(kb))
    return (ka > kb) - (ka < kb)


def version_at_least(version: str, minimum: str) -> bool:
    """True when ``version`` is ``minimum`` or newer (an empty version means the newest)."""
    return not version or compare_versions(version, minimum) >= 0
