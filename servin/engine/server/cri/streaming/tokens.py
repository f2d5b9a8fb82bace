"""Single-use, expiring tokens that name a pending streaming request (the URL's last part)."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from servin.errors import ResourceExhausted

T = TypeVar("T")

DEFAULT_TTL = 60.0
DEFAULT_MAX_IN_FLIGHT = 1000


class RequestCache(Generic[T]):
    """Requests waiting for their client; each token can be consumed once, before it expires.

    Tokens are 128 random bits, URL-safe (the kubelet's are 48 bits: more costs nothing).
    """

    def __init__(self, ttl: float = DEFAULT_TTL, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_in_flight = max_in_flight
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, T]] = OrderedDict()

    def insert(self, request: T) -> str:
        """Store a request; its token. ResourceExhausted when too many wait unused."""
        self._expire()
        if len(self._entries) >= self.max_in_flight:
            raise ResourceExhausted(
                "maximum number of in-flight streaming requests exceeded; retry later")
        token = secrets.token_urlsafe(16)
        self._entries[token] = (self._clock() + self.ttl, request)
        return token

    def consume(self, token: str) -> T | None:
        """The request of a valid token (which is then spent); None when unknown or expired."""
        entry = self._entries.pop(token, None)
        if entry is None:
            return None
        expires, request = entry
        if self._clock() > expires:
            return None
        return request

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def _expire(self) -> None:
        now = self._clock()
        while self._entries:
            token, (expires, _) = next(iter(self._entries.items()))
            if expires >= now:
                return
            del self._entries[token]
