"""servin.v1.System: version, info, events, disk usage."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from servin import API_VERSION
from servin.api.servin.v1 import system_pb2, system_pb2_grpc
from servin.engine.engine import CoreAPI
from servin.engine.events import SubscriberTooSlow
from servin.engine.semantics import filters as docker_filters
from servin.engine.semantics.filters import event_predicate
from servin.engine.server.grpc import convert
from servin.engine.server.grpc.rpc import Context
from servin.engine.server.grpc.timestamps import from_ns, to_ns
from servin.errors import InvalidArgument, Unavailable


class SystemServicer(system_pb2_grpc.SystemServicer):
    """The System service of servin.v1."""

    def __init__(self, core: CoreAPI) -> None:
        self.core = core
        self.system = core.system

    async def Ping(
        self, request: system_pb2.PingRequest, context: Context
    ) -> system_pb2.PingResponse:
        return system_pb2.PingResponse(api_version=API_VERSION)

    async def Version(
        self, request: system_pb2.VersionRequest, context: Context
    ) -> system_pb2.VersionResponse:
        v = await self.system.version()
        return system_pb2.VersionResponse(
            version=v.version,
            api_version=v.api_version,
            git_commit=v.git_commit,
            python_version=v.python_version,
            os=v.os,
            arch=v.arch,
            kernel_version=v.kernel_version,
            components=[system_pb2.ComponentVersion(name="grpc", version=grpc.__version__)],
        )

    async def Info(
        self, request: system_pb2.InfoRequest, context: Context
    ) -> system_pb2.InfoResponse:
        i = await self.system.info()
        return system_pb2.InfoResponse(
            id=i.id,
            name=i.name,
            images=i.images,
            containers=i.containers,
            containers_running=i.containers_running,
            containers_paused=i.containers_paused,
            containers_stopped=i.containers_stopped,
            volumes=i.volumes,
            storage_driver=i.storage_driver,
            cgroup_driver=i.cgroup_driver,
            cgroup_version=i.cgroup_version,
            kernel_version=i.kernel_version,
            operating_system=i.operating_system,
            os_type=i.os_type,
            architecture=i.architecture,
            ncpu=i.ncpu,
            mem_total=i.mem_total,
            root_dir=i.root_dir,
            exec_root=i.exec_root,
            default_runtime=i.default_runtime,
            runtimes=i.runtimes,
            server_version=i.server_version,
            system_time=from_ns(i.system_time_ns),
            insecure_registries=i.insecure_registries,
            registry_mirrors={k: ",".join(v) for k, v in i.registry_mirrors.items()},
            logging_driver=i.logging_driver,
            security_options=",".join(i.security_options),
            socket=i.socket,
            daemon_pid=i.daemon_pid,
            started_at=from_ns(i.started_at_ns),
            networks=i.networks,
            pods=i.pods,
            cpu_busy_ns=i.cpu_busy_ns,
            cpu_total_ns=i.cpu_total_ns,
            mem_available=i.mem_available,
            load_average=list(i.load_average),
        )

    async def Events(
        self, request: system_pb2.EventsRequest, context: Context
    ) -> AsyncIterator[system_pb2.Event]:
        match = event_predicate(convert.filters(list(request.filters)))
        try:
            async for event in self.core.events.subscribe(
                since_ns=to_ns(request.since), until_ns=to_ns(request.until), match=match
            ):
                yield system_pb2.Event(
                    type=event.type,
                    action=event.action,
                    id=event.id,
                    attributes=event.attributes,
                    time=from_ns(event.time_ns),
                    seq=event.seq,
                )
        except SubscriberTooSlow as exc:
            raise Unavailable(str(exc)) from exc

    async def DiskUsage(
        self, request: system_pb2.DiskUsageRequest, context: Context
    ) -> system_pb2.DiskUsageResponse:
        usage = await self.system.disk_usage()
        return system_pb2.DiskUsageResponse(
            items=[system_pb2.DiskUsageItem(type=u.type, total=u.total, active=u.active,
                                            size=u.size, reclaimable=u.reclaimable)
                   for u in usage.items],
            images=[system_pb2.ImageSummaryRef(id=i.record.id, repo_tags=i.record.repo_tags,
                                               size=i.record.size, shared_size=i.shared_size,
                                               containers=i.containers)
                    for i in usage.images],
        )

    async def Prune(
        self, request: system_pb2.SystemPruneRequest, context: Context
    ) -> system_pb2.SystemPruneResponse:
        """docker's ``system prune`` in one call: stopped containers, unused networks,
        unused volumes (with ``volumes``), dangling (with ``all``: unused) images, in that
        order so that each step frees what the next may take."""
        wanted = convert.filters(list(request.filters))
        # Every step takes these keys: a bad filter is refused before anything is removed.
        docker_filters.check(wanted, docker_filters.CONTAINER_PRUNE_KEYS)
        if request.volumes and "until" in wanted:
            raise InvalidArgument('The "until" filter is not supported with "--volumes"')
        containers, reclaimed = await self.core.containers.prune(wanted)
        networks = await self.core.networks.prune(wanted)
        volumes: list[str] = []
        if request.volumes:
            volumes, freed = await self.core.volumes.prune(filters=wanted)
            reclaimed += freed
        images = await self.core.images.prune(all_images=request.all, filters=wanted)
        return system_pb2.SystemPruneResponse(
            containers_deleted=containers, networks_deleted=networks, volumes_deleted=volumes,
            images_deleted=[*images.untagged, *images.deleted],
            space_reclaimed=reclaimed + images.reclaimed)
