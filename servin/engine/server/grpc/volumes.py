"""The Volumes service of servin.v1: a thin translation onto the engine's VolumeService."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from servin.api.servin.v1 import common_pb2, volumes_pb2, volumes_pb2_grpc
from servin.engine.engine import Engine
from servin.engine.server.grpc.filters import filter_map, label_matches, parse_bool
from servin.engine.server.grpc.streams import AsyncReader, split_upload, stream_from_thread
from servin.engine.server.grpc.timestamps import from_ns
from servin.engine.volumes.model import Volume
from servin.errors import InvalidArgument

_LIST_FILTERS = {"dangling", "label", "label!", "name", "driver"}
_PRUNE_FILTERS = {"label", "label!", "all"}


class VolumesServicer(volumes_pb2_grpc.VolumesServicer):
    """Create, list, inspect, remove, prune, export and import volumes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.volumes = engine.volumes

    def _message(self, v: Volume, *, size: bool = False) -> volumes_pb2.Volume:
        users = self.volumes.in_use(v.name)
        return volumes_pb2.Volume(
            name=v.name,
            driver=v.driver,
            mountpoint=v.mountpoint,
            created=from_ns(v.created_ns),
            labels=v.labels,
            options=v.options,
            scope="local",
            size=self.volumes.size(v) if size else -1,
            ref_count=len(users),
            anonymous=v.anonymous,
        )

    async def Create(
        self, request: volumes_pb2.CreateVolumeRequest, context: grpc.aio.ServicerContext
    ) -> volumes_pb2.Volume:
        v = await asyncio.to_thread(
            self.volumes.create, request.name, request.driver, dict(request.options),
            dict(request.labels))
        return await asyncio.to_thread(self._message, v)

    async def List(
        self, request: volumes_pb2.ListVolumesRequest, context: grpc.aio.ServicerContext
    ) -> volumes_pb2.ListVolumesResponse:
        filters = filter_map(request.filters, _LIST_FILTERS)

        def listing() -> list[volumes_pb2.Volume]:
            out = []
            for v in self.volumes.list():
                if not _list_match(v, filters, bool(self.volumes.in_use(v.name))):
                    continue
                out.append(self._message(v))
            return out

        return volumes_pb2.ListVolumesResponse(volumes=await asyncio.to_thread(listing))

    async def Inspect(
        self, request: volumes_pb2.InspectVolumeRequest, context: grpc.aio.ServicerContext
    ) -> volumes_pb2.Volume:
        v = await asyncio.to_thread(self.volumes.get, request.name)
        return await asyncio.to_thread(self._message, v, size=True)

    async def Remove(
        self, request: volumes_pb2.RemoveVolumeRequest, context: grpc.aio.ServicerContext
    ) -> volumes_pb2.RemoveVolumeResponse:
        await asyncio.to_thread(self.volumes.remove, request.name, force=request.force)
        return volumes_pb2.RemoveVolumeResponse()

    async def Prune(
        self, request: volumes_pb2.PruneVolumesRequest, context: grpc.aio.ServicerContext
    ) -> volumes_pb2.PruneVolumesResponse:
        filters = filter_map(request.filters, _PRUNE_FILTERS)
        all_volumes = request.all or ("all" in filters and parse_bool("all", filters["all"]))

        def match(v: Volume) -> bool:
            return label_matches(v.labels, filters.get("label", [])) and not any(
                label_matches(v.labels, [item]) for item in filters.get("label!", []))

        deleted, reclaimed = await asyncio.to_thread(
            self.volumes.prune, all_volumes=all_volumes, match=match)
        return volumes_pb2.PruneVolumesResponse(deleted=deleted, space_reclaimed=reclaimed)

    async def Export(
        self, request: volumes_pb2.ExportVolumeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[common_pb2.DataChunk]:
        await asyncio.to_thread(self.volumes.get, request.name)  # NotFound before streaming
        async for chunk in stream_from_thread(lambda out: self.volumes.export(request.name, out)):
            yield common_pb2.DataChunk(data=chunk)

    async def Import(
        self,
        request_iterator: AsyncIterator[volumes_pb2.ImportVolumeInput],
        context: grpc.aio.ServicerContext,
    ) -> volumes_pb2.ImportVolumeResponse:
        first, chunks = await split_upload(request_iterator)
        if first is None or not first.name:
            raise InvalidArgument("volume import: the first message must name the volume")

        reader = AsyncReader(chunks, asyncio.get_running_loop())
        await asyncio.to_thread(self.volumes.import_, first.name, reader)
        return volumes_pb2.ImportVolumeResponse()


def _list_match(v: Volume, filters: dict[str, list[str]], used: bool) -> bool:
    if "dangling" in filters and parse_bool("dangling", filters["dangling"]) == used:
        return False
    if "name" in filters and not any(n in v.name for n in filters["name"]):
        return False
    if "driver" in filters and v.driver not in filters["driver"]:
        return False
    if "label" in filters and not label_matches(v.labels, filters["label"]):
        return False
    return not any(label_matches(v.labels, [item]) for item in filters.get("label!", []))
