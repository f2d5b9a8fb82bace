"""The servin.v1 service stubs, wrapped so every call raises servin.errors on failure."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc

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


def _load(name: str) -> tuple[type, Any]:
    stem, service = SERVICES[name]
    pb2 = importlib.import_module(f"servin.api.servin.v1.{stem}_pb2")
    pb2_grpc = importlib.import_module(f"servin.api.servin.v1.{stem}_pb2_grpc")
    return getattr(pb2_grpc, f"{service}Stub"), pb2.DESCRIPTOR.services_by_name[service]


class _Service:
    """A stub loaded on first use whose methods raise servin.errors, not grpc.RpcError."""

    def __init__(self, channel: Any, name: str, url: str) -> None:
        self._channel = channel
        self._name = name
        self._url = url
        self._stub: Any = None
        self._descriptor: Any = None

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)
        if self._stub is None:
            stub_cls, self._descriptor = _load(self._name)
            self._stub = stub_cls(self._channel)
        streaming = self._descriptor.methods_by_name[method].server_streaming
        call = self._wrap(getattr(self._stub, method), streaming)
        call.__name__ = method
        setattr(self, method, call)  # cached: __getattr__ runs once per method
        return call

    def _wrap(self, rpc: Any, streaming: bool) -> Callable[..., Any]:
        raise NotImplementedError


class SyncService(_Service):
    """A blocking service: unary calls return messages, streams are iterators."""

    def _wrap(self, rpc: Any, streaming: bool) -> Callable[..., Any]:
        url = self._url

        def call(request: Any, **kwargs: Any) -> Any:
            try:
                result = rpc(request, **kwargs)
            except grpc.RpcError as exc:
                raise translate(exc, url) from None
            return _sync_stream(result, url) if streaming else result

        return call


def _sync_stream(result: Iterator[Any], url: str) -> Iterator[Any]:
    try:
        yield from result
    except grpc.RpcError as exc:
        raise translate(exc, url) from None
    finally:
        if hasattr(result, "cancel"):
            result.cancel()


class AsyncService(_Service):
    """An asyncio service: unary calls are coroutines, streams are async iterators."""

    def _wrap(self, rpc: Any, streaming: bool) -> Callable[..., Any]:
        url = self._url
        if streaming:

            def stream(request: Any, **kwargs: Any) -> AsyncIterator[Any]:
                return _async_stream(rpc(request, **kwargs), url)

            return stream

        async def call(request: Any, **kwargs: Any) -> Any:
            try:
                return await rpc(request, **kwargs)
            except grpc.RpcError as exc:
                raise translate(exc, url) from None

        return call


async def _async_stream(call: Any, url: str) -> AsyncIterator[Any]:
    try:
        async for item in call:
            yield item
    except grpc.RpcError as exc:
        raise translate(exc, url) from None
    finally:
        call.cancel()
