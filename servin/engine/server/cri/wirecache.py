"""List responses assembled from per-object cached wire bytes.

The kubelet sends ListContainers every second; building hundreds of runtime.v1 messages in
Python each time cost more than everything else in the call. An object's message only changes
when the object does, so it is serialized once per (ID, version) of the core's view and kept
already framed as one element of the response's repeated field; a response is the
concatenation of the wanted elements (protobuf's encoding of a repeated message field is
exactly tag, length, bytes per element) and leaves through a handler whose response
serializer passes bytes through (``passthrough``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from google.protobuf.message import Message

_T = TypeVar("_T")


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def framed(field_number: int, payload: bytes) -> bytes:
    """One element of a repeated message field: key (wire type 2), length, payload."""
    return _varint(field_number << 3 | 2) + _varint(len(payload)) + payload


class WireCache(Generic[_T]):
    """ID -> (version, framed bytes of the object's message), for one repeated field."""

    def __init__(self, field_number: int, build: Callable[[_T], Message]) -> None:
        self._field = field_number
        self._build = build
        self._cached: dict[str, tuple[int, bytes]] = {}

    def element(self, object_id: str, version: int, obj: _T) -> bytes:
        """The framed message of ``obj`` at ``version`` (built only when the version is new)."""
        hit = self._cached.get(object_id)
        if hit is not None and hit[0] == version:
            return hit[1]
        data = framed(self._field, self._build(obj).SerializeToString())
        self._cached[object_id] = (version, data)
        return data

    def prune(self, live: Iterable[str]) -> None:
        """Drop the objects that are gone (called with every ID the view holds)."""
        stale = self._cached.keys() - set(live)
        for object_id in stale:
            del self._cached[object_id]

    def __len__(self) -> int:
        return len(self._cached)


def passthrough(response: bytes) -> bytes:
    """A response serializer for handlers that return their message already encoded."""
    return response
