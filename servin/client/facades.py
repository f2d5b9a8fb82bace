"""Typed facades of the servin.v1 services: what ``Client`` and ``AsyncClient`` expose.

Each service's RPCs are declared once (``ContainersApi``) with their request and response
messages, and read as blocking calls from ``SyncContainers`` or as asyncio calls from
``AsyncContainers`` (``servin.client.services`` says how). The declarations must match
``proto/servin/v1``: tests/client/test_facades.py checks every RPC's name, shape and messages.
The generated modules are imported for type checking only; at run time a service's ``*_pb2``
module loads when its first call is bound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from servin.client.services import (
    AsyncService,
    StreamStream,
    StreamUnary,
    SyncService,
    UnaryStream,
    UnaryUnary,
)

if TYPE_CHECKING:  # short names keep one RPC to one line
    from servin.api.servin.v1 import common_pb2 as cm
    from servin.api.servin.v1 import containers_pb2 as ct
    from servin.api.servin.v1 import images_pb2 as im
    from servin.api.servin.v1 import networks_pb2 as nw
    from servin.api.servin.v1 import pods_pb2 as po
    from servin.api.servin.v1 import system_pb2 as sy
    from servin.api.servin.v1 import volumes_pb2 as vo


class ContainersApi:
    """servin.v1.Containers: the RPCs, declared once for both call styles."""

    SERVICE = "containers"

    Create: UnaryUnary[ct.CreateContainerRequest, ct.CreateContainerResponse] = UnaryUnary()
    Start: UnaryUnary[ct.StartContainerRequest, ct.StartContainerResponse] = UnaryUnary()
    Stop: UnaryUnary[ct.StopContainerRequest, ct.StopContainerResponse] = UnaryUnary()
    Restart: UnaryUnary[ct.RestartContainerRequest, ct.RestartContainerResponse] = UnaryUnary()
    Kill: UnaryUnary[ct.KillContainerRequest, ct.KillContainerResponse] = UnaryUnary()
    Remove: UnaryUnary[ct.RemoveContainerRequest, ct.RemoveContainerResponse] = UnaryUnary()
    List: UnaryUnary[ct.ListContainersRequest, ct.ListContainersResponse] = UnaryUnary()
    Inspect: UnaryUnary[ct.InspectContainerRequest, ct.ContainerDetail] = UnaryUnary()
    Wait: UnaryUnary[ct.WaitContainerRequest, ct.WaitContainerResponse] = UnaryUnary()
    Logs: UnaryStream[ct.ContainerLogsRequest, ct.LogChunk] = UnaryStream()
    Attach: StreamStream[ct.AttachInput, ct.AttachOutput] = StreamStream()
    Resize: UnaryUnary[ct.ResizeRequest, ct.ResizeResponse] = UnaryUnary()
    ExecCreate: UnaryUnary[ct.ExecCreateRequest, ct.ExecCreateResponse] = UnaryUnary()
    ExecStart: StreamStream[ct.ExecInput, ct.AttachOutput] = StreamStream()
    ExecResize: UnaryUnary[ct.ExecResizeRequest, ct.ResizeResponse] = UnaryUnary()
    ExecInspect: UnaryUnary[ct.ExecInspectRequest, ct.ExecDetail] = UnaryUnary()
    Stats: UnaryStream[ct.StatsRequest, ct.StatsBatch] = UnaryStream()
    Top: UnaryUnary[ct.TopRequest, ct.TopResponse] = UnaryUnary()
    Pause: UnaryUnary[ct.PauseContainerRequest, ct.PauseContainerResponse] = UnaryUnary()
    Unpause: UnaryUnary[ct.UnpauseContainerRequest, ct.UnpauseContainerResponse] = UnaryUnary()
    Update: UnaryUnary[ct.UpdateContainerRequest, ct.UpdateContainerResponse] = UnaryUnary()
    Rename: UnaryUnary[ct.RenameContainerRequest, ct.RenameContainerResponse] = UnaryUnary()
    Prune: UnaryUnary[ct.PruneContainersRequest, ct.PruneContainersResponse] = UnaryUnary()
    Changes: UnaryUnary[ct.ChangesRequest, ct.ChangesResponse] = UnaryUnary()
    Export: UnaryStream[ct.ExportContainerRequest, cm.DataChunk] = UnaryStream()
    CopyTo: StreamUnary[ct.CopyToInput, ct.CopyToResponse] = StreamUnary()
    CopyFrom: UnaryStream[ct.CopyFromRequest, ct.CopyFromOutput] = UnaryStream()
    Commit: UnaryUnary[ct.CommitContainerRequest, ct.CommitContainerResponse] = UnaryUnary()


class SyncContainers(ContainersApi, SyncService):
    """Blocking servin.v1.Containers."""


class AsyncContainers(ContainersApi, AsyncService):
    """Asyncio servin.v1.Containers."""


class ImagesApi:
    """servin.v1.Images: the RPCs, declared once for both call styles."""

    SERVICE = "images"

    Pull: UnaryStream[im.PullImageRequest, im.ImageProgress] = UnaryStream()
    Push: UnaryStream[im.PushImageRequest, im.ImageProgress] = UnaryStream()
    List: UnaryUnary[im.ListImagesRequest, im.ListImagesResponse] = UnaryUnary()
    Inspect: UnaryUnary[im.InspectImageRequest, im.ImageDetail] = UnaryUnary()
    Remove: UnaryUnary[im.RemoveImageRequest, im.RemoveImageResponse] = UnaryUnary()
    Tag: UnaryUnary[im.TagImageRequest, im.TagImageResponse] = UnaryUnary()
    History: UnaryUnary[im.ImageHistoryRequest, im.ImageHistoryResponse] = UnaryUnary()
    Import: StreamUnary[im.ImportImageInput, im.ImportImageResponse] = StreamUnary()
    Load: StreamStream[im.LoadImageInput, im.ImageProgress] = StreamStream()
    Save: UnaryStream[im.SaveImagesRequest, cm.DataChunk] = UnaryStream()
    Prune: UnaryUnary[im.PruneImagesRequest, im.PruneImagesResponse] = UnaryUnary()
    Login: UnaryUnary[im.LoginRequest, im.LoginResponse] = UnaryUnary()
    Build: StreamStream[im.BuildInput, im.BuildProgress] = StreamStream()
    PruneBuildCache: UnaryUnary[im.PruneBuildCacheRequest, im.PruneBuildCacheResponse] = (
        UnaryUnary()
    )
    Search: UnaryUnary[im.SearchImagesRequest, im.SearchImagesResponse] = UnaryUnary()


class SyncImages(ImagesApi, SyncService):
    """Blocking servin.v1.Images."""


class AsyncImages(ImagesApi, AsyncService):
    """Asyncio servin.v1.Images."""


class VolumesApi:
    """servin.v1.Volumes: the RPCs, declared once for both call styles."""

    SERVICE = "volumes"

    Create: UnaryUnary[vo.CreateVolumeRequest, vo.Volume] = UnaryUnary()
    List: UnaryUnary[vo.ListVolumesRequest, vo.ListVolumesResponse] = UnaryUnary()
    Inspect: UnaryUnary[vo.InspectVolumeRequest, vo.Volume] = UnaryUnary()
    Remove: UnaryUnary[vo.RemoveVolumeRequest, vo.RemoveVolumeResponse] = UnaryUnary()
    Prune: UnaryUnary[vo.PruneVolumesRequest, vo.PruneVolumesResponse] = UnaryUnary()
    Export: UnaryStream[vo.ExportVolumeRequest, cm.DataChunk] = UnaryStream()
    Import: StreamUnary[vo.ImportVolumeInput, vo.ImportVolumeResponse] = StreamUnary()


class SyncVolumes(VolumesApi, SyncService):
    """Blocking servin.v1.Volumes."""


class AsyncVolumes(VolumesApi, AsyncService):
    """Asyncio servin.v1.Volumes."""


class NetworksApi:
    """servin.v1.Networks: the RPCs, declared once for both call styles."""

    SERVICE = "networks"

    Create: UnaryUnary[nw.CreateNetworkRequest, nw.Network] = UnaryUnary()
    List: UnaryUnary[nw.ListNetworksRequest, nw.ListNetworksResponse] = UnaryUnary()
    Inspect: UnaryUnary[nw.InspectNetworkRequest, nw.Network] = UnaryUnary()
    Remove: UnaryUnary[nw.RemoveNetworkRequest, nw.RemoveNetworkResponse] = UnaryUnary()
    Prune: UnaryUnary[nw.PruneNetworksRequest, nw.PruneNetworksResponse] = UnaryUnary()
    Connect: UnaryUnary[nw.ConnectNetworkRequest, nw.ConnectNetworkResponse] = UnaryUnary()
    Disconnect: UnaryUnary[nw.DisconnectNetworkRequest, nw.DisconnectNetworkResponse] = UnaryUnary()


class SyncNetworks(NetworksApi, SyncService):
    """Blocking servin.v1.Networks."""


class AsyncNetworks(NetworksApi, AsyncService):
    """Asyncio servin.v1.Networks."""


class PodsApi:
    """servin.v1.Pods: the RPCs, declared once for both call styles."""

    SERVICE = "pods"

    Create: UnaryUnary[po.CreatePodRequest, po.Pod] = UnaryUnary()
    Start: UnaryUnary[po.PodRequest, po.Pod] = UnaryUnary()
    Stop: UnaryUnary[po.StopPodRequest, po.Pod] = UnaryUnary()
    Restart: UnaryUnary[po.StopPodRequest, po.Pod] = UnaryUnary()
    Kill: UnaryUnary[po.KillPodRequest, po.Pod] = UnaryUnary()
    Pause: UnaryUnary[po.PodRequest, po.Pod] = UnaryUnary()
    Unpause: UnaryUnary[po.PodRequest, po.Pod] = UnaryUnary()
    Remove: UnaryUnary[po.RemovePodRequest, po.RemovePodResponse] = UnaryUnary()
    List: UnaryUnary[po.ListPodsRequest, po.ListPodsResponse] = UnaryUnary()
    Inspect: UnaryUnary[po.PodRequest, po.Pod] = UnaryUnary()
    Prune: UnaryUnary[po.PrunePodsRequest, po.PrunePodsResponse] = UnaryUnary()
    Top: UnaryUnary[po.PodTopRequest, ct.TopResponse] = UnaryUnary()
    Stats: UnaryUnary[po.PodStatsRequest, po.PodStatsResponse] = UnaryUnary()


class SyncPods(PodsApi, SyncService):
    """Blocking servin.v1.Pods."""


class AsyncPods(PodsApi, AsyncService):
    """Asyncio servin.v1.Pods."""


class SystemApi:
    """servin.v1.System: the RPCs, declared once for both call styles."""

    SERVICE = "system"

    Ping: UnaryUnary[sy.PingRequest, sy.PingResponse] = UnaryUnary()
    Version: UnaryUnary[sy.VersionRequest, sy.VersionResponse] = UnaryUnary()
    Info: UnaryUnary[sy.InfoRequest, sy.InfoResponse] = UnaryUnary()
    Events: UnaryStream[sy.EventsRequest, sy.Event] = UnaryStream()
    DiskUsage: UnaryUnary[sy.DiskUsageRequest, sy.DiskUsageResponse] = UnaryUnary()
    Prune: UnaryUnary[sy.SystemPruneRequest, sy.SystemPruneResponse] = UnaryUnary()


class SyncSystem(SystemApi, SyncService):
    """Blocking servin.v1.System."""


class AsyncSystem(SystemApi, AsyncService):
    """Asyncio servin.v1.System."""
