"""Turns the core's typed errors into gRPC statuses, in one place for every servicer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, cast

import grpc

from servin.engine.server.grpc.rpc import Context
from servin.errors import InvalidArgument, ServinError, mapping_for

log = logging.getLogger(__name__)


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The gRPC status code and message for an exception raised by the core."""
    if isinstance(exc, ServinError):
        return grpc.StatusCode[mapping_for(exc).grpc_code], exc.message
    if isinstance(exc, NotImplementedError):  # a generated servicer's method not written yet
        return grpc.StatusCode.UNIMPLEMENTED, "method not implemented"
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}"


async def _abort(context: Context, exc: BaseException, method: str) -> None:
    if not isinstance(exc, ServinError | NotImplementedError):
        log.exception("unexpected error in %s", method)
    code, message = status_for(exc)
    await context.abort(code, message)


class _Malformed:
    """What a request that does not parse becomes (see ``_lenient``)."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _lenient(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """A deserializer that never raises: grpc would answer a message that does not parse with
    an opaque UNKNOWN; the handler answers INVALID_ARGUMENT for it instead."""
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # protobuf's DecodeError, or a deserializer's own error
            return _Malformed(exc)

    return parse


def _checked(request: Any) -> Any:
    if isinstance(request, _Malformed):
        raise InvalidArgument(f"malformed request: {request.error}")
    return request


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        yield _checked(request)


def _request(request: Any, streaming: bool) -> Any:
    return _checked_stream(request) if streaming else _checked(request)


def _wrap_unary(behavior: Callable[..., Awaitable[Any]], method: str,
                streaming: bool = False) -> Callable[..., Any]:
    async def call(request: Any, context: Context) -> Any:
        try:
            return await behavior(_request(request, streaming), context)
        except ServinError as exc:
            await _abort(context, exc, method)
        except Exception as exc:
            if isinstance(exc, grpc.aio.AbortError):
                raise
            await _abort(context, exc, method)

    return call


def _wrap_stream(behavior: Callable[..., AsyncIterator[Any]], method: str,
                 streaming: bool = False) -> Callable[..., Any]:
    async def call(request: Any, context: Context) -> AsyncIterator[Any]:
        try:
            async for item in behavior(_request(request, streaming), context):
                yield item
        except ServinError as exc:
            await _abort(context, exc, method)
        except Exception as exc:
            if isinstance(exc, grpc.aio.AbortError):
                raise
            await _abort(context, exc, method)

    return call


_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every handler so a ServinError becomes its mapped gRPC status."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails],
                               Awaitable[grpc.RpcMethodHandler[_Req, _Resp] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Req, _Resp] | None:
        found = await continuation(handler_call_details)
        if found is None:
            return None
        # The stubs describe synchronous handlers; grpc.aio's are coroutines: untyped here.
        handler: Any = found
        method = handler_call_details.method
        kwargs = {
            "request_deserializer": _lenient(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        wrapped: Any
        if handler.unary_unary:
            wrapped = grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, method), **kwargs
            )
        elif handler.stream_unary:
            wrapped = grpc.stream_unary_rpc_method_handler(
                _wrap_unary(handler.stream_unary, method, streaming=True), **kwargs
            )
        elif handler.unary_stream:
            wrapped = grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream, method), **kwargs
            )
        else:
            wrapped = grpc.stream_stream_rpc_method_handler(
                _wrap_stream(handler.stream_stream, method, streaming=True), **kwargs
            )
        return cast("grpc.RpcMethodHandler[_Req, _Resp]", wrapped)
