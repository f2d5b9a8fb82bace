"""List responses assembled from per-object cached wire bytes.

The kubelet sends the CRI's ListContainers every second and ``ps -a`` lists every container;
building hundreds of protobuf messages in Python each time cost more than everything else in
those calls. An object's message only changes when the object does, so it is serialized once
per version of the core's view (``ContainerService.entries``) and kept as bytes; a response
is the concatenation of the wanted elements (protobuf encodes a repeated message field as
key, length, bytes per element, and a message as its fields in any order, so a cached
message can also be completed with a field that changes with time) and leaves through a
handler whose response serializer passes bytes through (``add_servicer``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any, Generic, TypeVar

import grpc

_T = TypeVar("_T")

# The methods whose handlers return their response already encoded.
PREENCODED = {
    "runtime.v1.RuntimeService": frozenset({"ListContainers"}),
    "servin.v1.Containers": frozenset({"List"}),
}


class WireCache(Generic[_T]):
    """Object ID -> (key, the bytes ``build`` made of the object when it had that key); the
    key is whatever the bytes depend on (the view's version, and more if a door adds to it)."""

    def __init__(self, build: Callable[[_T], bytes]) -> None:
        self._build = build
        self._cached: dict[str, tuple[Hashable, bytes]] = {}

    def get(self, object_id: str, key: Hashable, obj: _T) -> bytes:
        """The bytes of ``obj`` (built only when its key is new)."""
        hit = self._cached.get(object_id)
        if hit is not None and hit[0] == key:
            return hit[1]
        data = self._build(obj)
        self._cached[object_id] = (key, data)
        return data

    def prune(self, live: Iterable[str]) -> None:
        """Drop the objects that are gone (called with every ID the view holds)."""
        for object_id in self._cached.keys() - set(live):
            del self._cached[object_id]

    def __len__(self) -> int:
        return len(self._cached)


def passthrough(response: bytes) -> bytes:
    """The response serializer of handlers that return their message already encoded."""
    return response


class _Registrar:
    """Takes what a generated ``add_*_to_server`` registers and hands it to the server with
    the ``PREENCODED`` methods' response serializers replaced by ``passthrough``. The
    generated function registers one handler table twice (generic, then as registered
    methods): both come from the table it passes to ``add_registered_method_handlers``."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass  # the same table arrives through add_registered_method_handlers

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        table = dict(handlers)
        for method in PREENCODED.get(service, ()):
            table[method] = table[method]._replace(response_serializer=passthrough)
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, table),))
        self._server.add_registered_method_handlers(service, table)


def add_servicer(add: Callable[[Any, Any], None], servicer: object,
                 server: grpc.aio.Server) -> None:
    """Register ``servicer`` through its generated ``add`` function (pre-encoded methods
    answered as bytes)."""
    add(servicer, _Registrar(server))
