"""The machinery under the typed service facades: RPC descriptors and the two call styles.

A facade (``servin.client.facades``) declares each RPC of a servin.v1 service once, as a
class attribute typed with its request and response messages
(``List: UnaryUnary[ListContainersRequest, ListContainersResponse]``). Read from a
``SyncService`` the attribute is a blocking call; read from an ``AsyncService`` it is a
coroutine function (or an async iterator for server streams). Either way every failure is
raised as a ``servin.errors`` exception.

Method tables come from the generated ``*_pb2`` descriptors (not the ``*_pb2_grpc`` stubs,
which import grpc), and each call is made through the channel's ``unary_unary`` /
``unary_stream`` / ``stream_unary`` / ``stream_stream``: grpcio's channels and the lean
``H2Channel`` share that shape. A call is bound on first use and cached on the service, so a
command pays only for the services and methods it calls (the ``*_pb2`` module of a service
is imported when its first method is bound).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, Self, TypeVar, overload

from servin.client.errors import translate

if TYPE_CHECKING:
    from google.protobuf.message import Message

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

Errors = tuple[type[BaseException], ...]


@dataclass(frozen=True)
class MethodSpec:
    """One RPC: its full path, message classes and streaming shape."""

    path: str  # /servin.v1.Images/List
    request: type[Message]
    response: type[Message]
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


class Channel(Protocol):
    """What a service calls through: grpcio's channels and ``H2Channel`` both fit (each
    factory takes the method path, ``request_serializer`` and ``response_deserializer``)."""

    def unary_unary(self, method: str, /, *args: Any, **kwargs: Any) -> Any: ...
    def unary_stream(self, method: str, /, *args: Any, **kwargs: Any) -> Any: ...
    def stream_unary(self, method: str, /, *args: Any, **kwargs: Any) -> Any: ...
    def stream_stream(self, method: str, /, *args: Any, **kwargs: Any) -> Any: ...


# ---- what a declared RPC is, read from a blocking or an asyncio service ----------------------

Req = TypeVar("Req", bound="Message")
Resp = TypeVar("Resp", bound="Message")
Req_contra = TypeVar("Req_contra", bound="Message", contravariant=True)
Resp_co = TypeVar("Resp_co", bound="Message", covariant=True)


if TYPE_CHECKING:  # the call shapes exist for the checker only (the CLI's start-up pays no class)

    class SyncUnaryUnary(Protocol[Req_contra, Resp_co]):
        """A blocking unary call."""

        def __call__(self, request: Req_contra, /, *, timeout: float | None = None) -> Resp_co: ...

    class SyncUnaryStream(Protocol[Req_contra, Resp_co]):
        """A blocking server-streaming call: the responses as an iterator (closing it cancels)."""

        def __call__(
            self, request: Req_contra, /, *, timeout: float | None = None
        ) -> Iterator[Resp_co]: ...

    class SyncStreamUnary(Protocol[Req_contra, Resp_co]):
        """A blocking client-streaming call: the requests are sent from the caller's thread."""

        def __call__(
            self, requests: Iterable[Req_contra], /, *, timeout: float | None = None
        ) -> Resp_co: ...

    class SyncStreamStream(Protocol[Req_contra, Resp_co]):
        """A blocking bidirectional call: requests go from a background thread."""

        def __call__(
            self, requests: Iterable[Req_contra], /, *, timeout: float | None = None
        ) -> Iterator[Resp_co]: ...

    class AsyncUnaryUnary(Protocol[Req_contra, Resp_co]):
        """An asyncio unary call."""

        def __call__(
            self, request: Req_contra, /, *, timeout: float | None = None
        ) -> Coroutine[Any, Any, Resp_co]: ...

    class AsyncUnaryStream(Protocol[Req_contra, Resp_co]):
        """An asyncio server-streaming call: the responses as an async iterator."""

        def __call__(
            self, request: Req_contra, /, *, timeout: float | None = None
        ) -> AsyncIterator[Resp_co]: ...

    class AsyncStreamUnary(Protocol[Req_contra, Resp_co]):
        """An asyncio client-streaming call."""

        def __call__(
            self,
            requests: Iterable[Req_contra] | AsyncIterable[Req_contra],
            /,
            *,
            timeout: float | None = None,
        ) -> Coroutine[Any, Any, Resp_co]: ...

    class AsyncStreamStream(Protocol[Req_contra, Resp_co]):
        """An asyncio bidirectional call."""

        def __call__(
            self,
            requests: Iterable[Req_contra] | AsyncIterable[Req_contra],
            /,
            *,
            timeout: float | None = None,
        ) -> AsyncIterator[Resp_co]: ...


class Rpc(Generic[Req, Resp]):
    """One declared RPC of a facade (a descriptor); the subclass says its streaming shape."""

    kind: ClassVar[str]

    def __init__(self) -> None:
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def _get(self, obj: _Service | None) -> Any:
        return self if obj is None else obj._bind(self.name)


class UnaryUnary(Rpc[Req, Resp]):
    """``rpc M(Req) returns (Resp)``."""

    kind = "unary_unary"

    @overload
    def __get__(self, obj: None, owner: type) -> Self: ...
    @overload
    def __get__(self, obj: SyncService, owner: type) -> SyncUnaryUnary[Req, Resp]: ...
    @overload
    def __get__(self, obj: AsyncService, owner: type) -> AsyncUnaryUnary[Req, Resp]: ...
    def __get__(self, obj: _Service | None, owner: type) -> Any:
        return self._get(obj)


class UnaryStream(Rpc[Req, Resp]):
    """``rpc M(Req) returns (stream Resp)``."""

    kind = "unary_stream"

    @overload
    def __get__(self, obj: None, owner: type) -> Self: ...
    @overload
    def __get__(self, obj: SyncService, owner: type) -> SyncUnaryStream[Req, Resp]: ...
    @overload
    def __get__(self, obj: AsyncService, owner: type) -> AsyncUnaryStream[Req, Resp]: ...
    def __get__(self, obj: _Service | None, owner: type) -> Any:
        return self._get(obj)


class StreamUnary(Rpc[Req, Resp]):
    """``rpc M(stream Req) returns (Resp)``."""

    kind = "stream_unary"

    @overload
    def __get__(self, obj: None, owner: type) -> Self: ...
    @overload
    def __get__(self, obj: SyncService, owner: type) -> SyncStreamUnary[Req, Resp]: ...
    @overload
    def __get__(self, obj: AsyncService, owner: type) -> AsyncStreamUnary[Req, Resp]: ...
    def __get__(self, obj: _Service | None, owner: type) -> Any:
        return self._get(obj)


class StreamStream(Rpc[Req, Resp]):
    """``rpc M(stream Req) returns (stream Resp)``."""

    kind = "stream_stream"

    @overload
    def __get__(self, obj: None, owner: type) -> Self: ...
    @overload
    def __get__(self, obj: SyncService, owner: type) -> SyncStreamStream[Req, Resp]: ...
    @overload
    def __get__(self, obj: AsyncService, owner: type) -> AsyncStreamStream[Req, Resp]: ...
    def __get__(self, obj: _Service | None, owner: type) -> Any:
        return self._get(obj)


# ---- the services ------------------------------------------------------------------------------


class _Service:
    """A service on a channel; its facade's RPCs are bound on first use and raise servin.errors.

    ``errors`` are the transport's failure classes (grpc.RpcError, or StatusError).
    """

    SERVICE: ClassVar[str]  # the key of SERVICES: "containers", ...

    def __init__(self, channel: Channel, url: str, errors: Errors) -> None:
        self._channel = channel
        self._url = url
        self._errors = errors

    def _bind(self, method: str) -> Callable[..., Any]:
        spec = method_table(self.SERVICE)[method]
        rpc = getattr(self._channel, spec.kind)(
            spec.path,
            request_serializer=spec.request.SerializeToString,
            response_deserializer=spec.response.FromString,
        )
        call = self._wrap(rpc, spec.server_streaming)
        call.__name__ = method
        # Cached in the instance: the descriptor (which has no __set__) is not asked again.
        self.__dict__[method] = call
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


def _sync_stream(result: Iterator[Any], url: str, errors: Errors) -> Iterator[Any]:
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


async def _async_stream(call: Any, url: str, errors: Errors) -> AsyncIterator[Any]:
    try:
        async for item in call:
            yield item
    except errors as exc:
        raise translate(exc, url) from None
    finally:
        call.cancel()
