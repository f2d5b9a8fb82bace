"""servin.v1.Volumes: translates requests onto the core's volume API."""

from __future__ import annotations

from collections.abc import AsyncIterator

from servin.api.servin.v1 import common_pb2, volumes_pb2, volumes_pb2_grpc
from servin.engine.engine import CoreAPI
from servin.engine.semantics.inspect import to_json, volume_document
from servin.engine.server.grpc import convert
from servin.engine.server.grpc.rpc import Context
from servin.engine.server.grpc.streams import split_upload
from servin.engine.server.grpc.timestamps import from_ns
from servin.engine.volumes.model import VolumeView
from servin.errors import InvalidArgument


def volume_message(view: VolumeView, *, document: bool = False) -> volumes_pb2.Volume:
    """A volume as servin.v1 sends it (with docker's document for inspect)."""
    v = view.volume
    return volumes_pb2.Volume(
        name=v.name,
        driver=v.driver,
        mountpoint=v.mountpoint,
        created=from_ns(v.created_ns),
        labels=v.labels,
        options=v.options,
        scope="local",
        size=view.size,
        ref_count=view.ref_count,
        anonymous=v.anonymous,
        document=to_json(volume_document(view)) if document else "",
    )


class VolumesServicer(volumes_pb2_grpc.VolumesServicer):
    """Create, list, inspect, remove, prune, export and import volumes."""

    def __init__(self, core: CoreAPI) -> None:
        self.volumes = core.volumes

    async def Create(
        self, request: volumes_pb2.CreateVolumeRequest, context: Context
    ) -> volumes_pb2.Volume:
        view = await self.volumes.create(request.name, request.driver, dict(request.options),
                                         dict(request.labels))
        return volume_message(view)

    async def List(
        self, request: volumes_pb2.ListVolumesRequest, context: Context
    ) -> volumes_pb2.ListVolumesResponse:
        views = await self.volumes.list(convert.filters(list(request.filters)))
        return volumes_pb2.ListVolumesResponse(volumes=[volume_message(v) for v in views])

    async def Inspect(
        self, request: volumes_pb2.InspectVolumeRequest, context: Context
    ) -> volumes_pb2.Volume:
        return volume_message(await self.volumes.inspect(request.name), document=True)

    async def Remove(
        self, request: volumes_pb2.RemoveVolumeRequest, context: Context
    ) -> volumes_pb2.RemoveVolumeResponse:
        await self.volumes.remove(request.name, force=request.force)
        return volumes_pb2.RemoveVolumeResponse()

    async def Prune(
        self, request: volumes_pb2.PruneVolumesRequest, context: Context
    ) -> volumes_pb2.PruneVolumesResponse:
        deleted, reclaimed = await self.volumes.prune(
            all_volumes=request.all, filters=convert.filters(list(request.filters)))
        return volumes_pb2.PruneVolumesResponse(deleted=deleted, space_reclaimed=reclaimed)

    async def Export(
        self, request: volumes_pb2.ExportVolumeRequest, context: Context
    ) -> AsyncIterator[common_pb2.DataChunk]:
        async for chunk in self.volumes.export(request.name):
            yield common_pb2.DataChunk(data=chunk)

    async def Import(
        self,
        request_iterator: AsyncIterator[volumes_pb2.ImportVolumeInput],
        context: Context,
    ) -> volumes_pb2.ImportVolumeResponse:
        first, chunks = await split_upload(request_iterator)
        if first is None or not first.name:
            raise InvalidArgument("volume import: the first message must name the volume")
        await self.volumes.import_(first.name, chunks)
        return volumes_pb2.ImportVolumeResponse()
