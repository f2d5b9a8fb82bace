"""The servin.v1 services, wrapped so every call raises servin.errors on failure.

Method tables come from the generated ``*_pb2`` descriptors (not the ``*_pb2_grpc`` stubs,
which import grpc), and each call is made through the channel's ``unary_unary`` /
``unary_stream`` / ``stream_unary`` / ``stream_stream``: grpcio's channels and the lean
``H2Channel`` share that shape.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from servin.client.errors import translate

# attribute name -> (generated module stem, service name); modules load on first use so a
# command pays only for the services it calls.
SERVICES: dict[str, tuple[str, str]] = {
    "containers": ("containers", "Containers"),
    "images": ("images", "Images"),
    "volumes": ("volumes", "Volumes"),
    "networks": ("networks", "Networks"),
    "pods": ("pods", "Pods"),
    "system": ("system", "System"),
}


@dataclass(frozen=True)
class MethodSpec:
    """One RPC: its full path, message classes and streaming shape."""

    path: str  # /servin.v1.Images/List
    request: type
    response: type
    client_streaming: bool
    server_streaming: bool

    @property
    def kind(self) -> str:
        """The channel factory for this shape: ``unary_unary``, ``stream_stream``, ..."""
        return (
            f"{'stream' if self.client_streaming else 'unary'}_"
            f"{'stream' if self.server_streaming else 'unary'}"
        )


_TABLES: dict[str, dict[str, MethodSpec]] = {}


def method_table(name: str) -> dict[str, MethodSpec]:
    """Every method of the service behind attribute ``name`` (``"images"``), by method name."""
    table = _TABLES.get(name)
    if table is None:
        from google.protobuf.message_factory import GetMessageClass

        stem, service = SERVICES[name]
        pb2 = importlib.import_module(f"servin.api.servin.v1.{stem}_pb2")
        descriptor = pb2.DESCRIPTOR.services_by_name[service]
        table = {
            m.name: MethodSpec(
                path=f"/{descriptor.full_name}/{m.name}",
                request=GetMessageClass(m.input_type),
                response=GetMessageClass(m.output_type),
                client_streaming=m.client_streaming,
                server_streaming=m.server_streaming,
            )
            for m in descriptor.methods
        }
        _TABLES[name] = table
    return table


class _Service:
    """A service whose methods are bound on first use and raise servin.errors.

    ``errors`` are the transport's failure classes (grpc.RpcError, or StatusError).
    """

    def __init__(
        self, channel: Any, name: str, url: str, errors: tuple[type[BaseException], ...]
    ) -> None:
        self._channel = channel
        self._name = name
        self._url = url
        self._errors = errors

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)
        try:
            spec = method_table(self._name)[method]
        except KeyError:
            raise AttributeError(method) from None
        rpc = getattr(self._channel, spec.kind)(
            spec.path,
            request_serializer=spec.request.SerializeToString,
            response_deserializer=spec.response.FromString,
        )
        call = self._wrap(rpc, spec.server_streaming)
        call.__name__ = method
        setattr(self, method, call)  # cached: __getattr__ runs once per method
        return call

    def _wrap(self, rpc: Any, streaming: bool) -> Callable[..., Any]:
        raise NotImplementedError


class SyncService(_Service):
    """A blocking service: unary calls return messages, streams are iterators."""

    def _wrap(self, rpc: Any, streaming: bool) -> Callable[..., Any]:
        url, errors = self._url, self._errors

        def call(request: Any, **kwargs: Any) -> Any:
            try:
                result = rpc(request, **kwargs)
            except errors as exc:
                raise translate(exc, url) from None
            return _sync_stream(result, url, errors) if streaming else result

        return call


def _sync_stream(
    result: Iterator[Any], url: str, errors: tuple[type[BaseException], ...]
) -> Iterator[Any]:
    try:
        yield from result
    except errors as exc:
        raise translate(exc, url) from None
    finally:
        if hasattr(result, "cancel"):
            result.cancel()


class AsyncService(_Service):
    """An asyncio service: unary calls are coroutines, streams are async iterators."""

    def _wrap(self, rpc: Any, streaming: bool) -> Callable[..., Any]:
        url, errors = self._url, self._errors
        if streaming:

            def stream(request: Any, **kwargs: Any) -> AsyncIterator[Any]:
                return _async_stream(rpc(request, **kwargs), url, errors)

            return stream

        async def call(request: Any, **kwargs: Any) -> Any:
            try:
                return await rpc(request, **kwargs)
            except errors as exc:
                raise translate(exc, url) from None

        return call


async def _async_stream(
    call: Any, url: str, errors: tuple[type[BaseException], ...]
) -> AsyncIterator[Any]:
    try:
        async for item in call:
            yield item
    except errors as exc:
        raise translate(exc, url) from None
    finally:
        call.cancel()
