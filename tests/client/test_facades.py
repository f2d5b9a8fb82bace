"""The typed facades match proto/servin/v1, and their calls bind, cache and translate errors."""

from __future__ import annotations

import asyncio
import re
import typing
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from servin.api.servin.v1 import (
    common_pb2,
    containers_pb2,
    images_pb2,
    networks_pb2,
    pods_pb2,
    system_pb2,
    volumes_pb2,
)
from servin.client import facades
from servin.client.errors import StatusError
from servin.client.services import SERVICES, Rpc, method_table
from servin.errors import Conflict, NotFound

# The short names facades.py gives the generated modules (imported there for type checking).
ALIASES = {
    "cm": common_pb2,
    "ct": containers_pb2,
    "im": images_pb2,
    "nw": networks_pb2,
    "po": pods_pb2,
    "sy": system_pb2,
    "vo": volumes_pb2,
}
APIS = {api.SERVICE: api for api in (
    facades.ContainersApi, facades.ImagesApi, facades.VolumesApi, facades.NetworksApi,
    facades.PodsApi, facades.SystemApi,
)}  # fmt: skip


def declared(api: type) -> dict[str, tuple[Rpc[Any, Any], Any]]:
    """The RPCs a facade declares: name -> (descriptor, evaluated annotation)."""
    hints = typing.get_type_hints(api, localns={**vars(facades), **ALIASES})
    return {
        name: (value, hints[name])
        for name, value in vars(api).items()
        if isinstance(value, Rpc)
    }


def test_every_service_has_a_facade_in_both_styles() -> None:
    assert set(APIS) == set(SERVICES)
    for api in APIS.values():
        stem = api.__name__.removesuffix("Api")
        assert issubclass(getattr(facades, f"Sync{stem}"), api)
        assert issubclass(getattr(facades, f"Async{stem}"), api)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_facade_declares_exactly_the_proto_rpcs(service: str) -> None:
    table = method_table(service)
    rpcs = declared(APIS[service])
    missing, extra = sorted(set(table) - set(rpcs)), sorted(set(rpcs) - set(table))
    assert not missing and not extra, (
        f"servin/client/facades.py {APIS[service].__name__} is out of step with the proto: "
        f"declare {missing}, drop {extra}"
    )
    for name, (rpc, hint) in rpcs.items():
        spec = table[name]
        assert rpc.name == name
        assert rpc.kind == spec.kind, f"{service}.{name}: declared {rpc.kind}, proto {spec.kind}"
        assert typing.get_origin(hint) is type(rpc)
        request, response = typing.get_args(hint)
        assert request.DESCRIPTOR.full_name == spec.request.DESCRIPTOR.full_name, name
        assert response.DESCRIPTOR.full_name == spec.response.DESCRIPTOR.full_name, name


class FakeChannel:
    """Records every multi-callable made and answers with ``reply(path, request, kwargs)``."""

    def __init__(self, reply: Callable[[str, Any, dict[str, Any]], Any]) -> None:
        self.reply = reply
        self.made: list[tuple[str, str]] = []

    def _factory(self, kind: str) -> Callable[..., Any]:
        def make(path: str, request_serializer: Any, response_deserializer: Any) -> Any:
            self.made.append((kind, path))
            return lambda request, **kwargs: self.reply(path, request, kwargs)

        return make

    def __getattr__(self, kind: str) -> Callable[..., Any]:
        if kind not in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
            raise AttributeError(kind)
        return self._factory(kind)


def test_sync_calls_bind_once_pass_the_timeout_and_raise_servin_errors() -> None:
    seen: list[tuple[str, Any, dict[str, Any]]] = []

    def reply(path: str, request: Any, kwargs: dict[str, Any]) -> Any:
        seen.append((path, request, kwargs))
        if path.endswith("/Inspect"):
            raise StatusError("NOT_FOUND", "no such container: x")
        if path.endswith("/Logs"):
            return iter([containers_pb2.LogChunk(data=b"a"), containers_pb2.LogChunk(data=b"b")])
        return containers_pb2.ListContainersResponse(
            containers=[containers_pb2.ContainerSummary(id="c1")]
        )

    channel = FakeChannel(reply)
    svc = facades.SyncContainers(channel, "unix:///fake.sock", (StatusError,))
    request = containers_pb2.ListContainersRequest(all=True)
    assert svc.List(request, timeout=3).containers[0].id == "c1"
    assert svc.List is svc.List  # bound once, then cached on the instance
    svc.List(request)
    assert channel.made == [("unary_unary", "/servin.v1.Containers/List")]
    assert seen[0] == ("/servin.v1.Containers/List", request, {"timeout": 3})
    with pytest.raises(NotFound, match="no such container: x"):
        svc.Inspect(containers_pb2.InspectContainerRequest(id="x"))
    chunks = svc.Logs(containers_pb2.ContainerLogsRequest(id="c1"))
    assert isinstance(chunks, Iterator)
    assert [c.data for c in chunks] == [b"a", b"b"]
    assert channel.made[-1] == ("unary_stream", "/servin.v1.Containers/Logs")


def test_async_calls_are_coroutines_and_async_iterators() -> None:
    class Call:
        """grpc.aio's shape: awaitable for unary calls, async-iterable for streams."""

        def __init__(self, items: list[Any], error: BaseException | None = None) -> None:
            self.items, self.error, self.cancelled = items, error, False

        def __await__(self) -> Any:
            if self.error:
                raise self.error
            yield from asyncio.sleep(0).__await__()
            return self.items[0]

        async def __aiter__(self) -> AsyncIterator[Any]:
            for item in self.items:
                yield item
            if self.error:
                raise self.error

        def cancel(self) -> None:
            self.cancelled = True

    calls: list[Call] = []

    def reply(path: str, request: Any, kwargs: dict[str, Any]) -> Any:
        if path.endswith("/Create"):
            call = Call([], StatusError("ALREADY_EXISTS", "volume v exists"))
        elif path.endswith("/Export"):
            call = Call([common_pb2.DataChunk(data=b"x")], StatusError("NOT_FOUND", "gone"))
        else:
            call = Call([volumes_pb2.ListVolumesResponse(volumes=[volumes_pb2.Volume(name="v")])])
        calls.append(call)
        return call

    svc = facades.AsyncVolumes(FakeChannel(reply), "unix:///fake.sock", (StatusError,))

    async def scenario() -> None:
        reply_ = await svc.List(volumes_pb2.ListVolumesRequest(), timeout=5)
        assert [v.name for v in reply_.volumes] == ["v"]
        with pytest.raises(Conflict, match="volume v exists"):
            await svc.Create(volumes_pb2.CreateVolumeRequest(name="v"))
        got = []
        with pytest.raises(NotFound, match="gone"):
            async for chunk in svc.Export(volumes_pb2.ExportVolumeRequest(name="v")):
                got.append(chunk.data)
        assert got == [b"x"]
        assert calls[-1].cancelled  # the stream is cancelled however it ends

    asyncio.run(scenario())


def test_unknown_methods_are_attribute_errors() -> None:
    svc = facades.SyncSystem(FakeChannel(lambda *_: None), "unix:///fake.sock", (StatusError,))
    with pytest.raises(AttributeError):
        svc.NoSuchCall  # type: ignore[attr-defined]  # the point: it is not declared  # noqa: B018


def test_the_cli_and_console_never_call_the_daemon_by_name() -> None:
    """Calls go through the typed facades: no request class looked up by name, no service or
    method named in a string (the console's Source.call takes a function of the client)."""
    root = Path(__file__).resolve().parents[2] / "servin"
    by_name = re.compile(r"getattr\(\s*\w+_pb2\b|source\.(call|stream)\(\s*(f?[\"']|self\.SERVICE)|"
                         r"getattr\(\s*(self\.)?(client|source|cl)\b")
    found = [
        f"{path.relative_to(root.parent)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group()}"
        for sub in ("cli", "tui")
        for path in sorted((root / sub).rglob("*.py"))
        for text in [path.read_text()]
        for m in by_name.finditer(text)
    ]
    assert not found, "call the daemon through the typed facades:\n" + "\n".join(found)
