"""servin.v1.System: version, info, events, disk usage."""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import socket
import time
from collections.abc import AsyncIterator

import grpc

from servin import API_VERSION, __version__
from servin.api.servin.v1 import system_pb2, system_pb2_grpc
from servin.engine import hostinfo
from servin.engine.engine import Engine
from servin.engine.events import Event, SubscriberTooSlow
from servin.engine.images.platforms import host_platform
from servin.engine.server.grpc.filters import filter_map, label_matches
from servin.engine.server.grpc.timestamps import from_ns, to_ns
from servin.errors import NotFound, Unavailable
from servin.version import git_commit

_EVENT_FILTERS = {"type", "event", "container", "image", "volume", "network", "pod", "label"}


def available_runtimes(engine: Engine) -> list[str]:
    """The OCI runtimes this daemon can use: native plus runc/crun when installed."""
    names = ["native"]
    for name in ("runc", "crun"):
        if engine.config.runtimes.get(name) or shutil.which(name):
            names.append(name)
    names += [n for n in engine.config.runtimes if n not in names]
    return names


class SystemServicer(system_pb2_grpc.SystemServicer):
    """The System service of servin.v1."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def Ping(
        self, request: system_pb2.PingRequest, context: grpc.aio.ServicerContext
    ) -> system_pb2.PingResponse:
        return system_pb2.PingResponse(api_version=API_VERSION)

    async def Version(
        self, request: system_pb2.VersionRequest, context: grpc.aio.ServicerContext
    ) -> system_pb2.VersionResponse:
        return system_pb2.VersionResponse(
            version=__version__,
            api_version=API_VERSION,
            git_commit=git_commit(),
            python_version=platform.python_version(),
            os="linux",
            arch=host_platform().architecture,
            kernel_version=hostinfo.kernel_version(),
            components=[system_pb2.ComponentVersion(name="grpc", version=grpc.__version__)],
        )

    async def Info(
        self, request: system_pb2.InfoRequest, context: grpc.aio.ServicerContext
    ) -> system_pb2.InfoResponse:
        images = await asyncio.to_thread(self.engine.images.list)
        states = [c.state.status for c in await self.engine.containers.list()]
        active = states.count("running") + states.count("paused") + states.count("restarting")
        networks = await self.engine.networks.list()
        cpu_busy, cpu_total = hostinfo.cpu_times_ns()
        cfg = self.engine.config
        return system_pb2.InfoResponse(
            id=self.engine.id,
            name=socket.gethostname(),
            images=len(images),
            containers=len(states),
            containers_running=states.count("running") + states.count("restarting"),
            containers_paused=states.count("paused"),
            containers_stopped=len(states) - active,
            volumes=len(await asyncio.to_thread(self.engine.volumes.list)),
            networks=len(networks),
            storage_driver=self.engine.snapshots.driver,
            cgroup_driver="cgroupfs",
            cgroup_version=hostinfo.cgroup_version(),
            kernel_version=hostinfo.kernel_version(),
            operating_system=hostinfo.os_release_name(),
            os_type="linux",
            architecture=platform.machine(),
            ncpu=os.cpu_count() or 1,
            mem_total=hostinfo.mem_total(),
            root_dir=str(cfg.root),
            exec_root=str(cfg.exec_root),
            default_runtime=cfg.default_runtime,
            runtimes=available_runtimes(self.engine),
            server_version=__version__,
            system_time=from_ns(time.time_ns()),
            insecure_registries=cfg.registries.insecure,
            registry_mirrors={k: ",".join(v) for k, v in cfg.registries.mirrors.items()},
            logging_driver="json-file",
            security_options="seccomp,no-new-privileges",
            socket=str(cfg.main_socket),
            daemon_pid=os.getpid(),
            started_at=from_ns(self.engine.started_at_ns),
            cpu_busy_ns=cpu_busy,
            cpu_total_ns=cpu_total,
            mem_available=hostinfo.mem_available(),
            load_average=list(os.getloadavg()),
        )

    async def Events(
        self, request: system_pb2.EventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[system_pb2.Event]:
        filters = filter_map(request.filters, _EVENT_FILTERS)

        def match(event: Event) -> bool:
            if "type" in filters and event.type not in filters["type"]:
                return False
            # "health_status" matches "health_status: healthy", as docker does.
            wanted = filters.get("event")
            if wanted and event.action not in wanted and event.action.split(":")[0] not in wanted:
                return False
            for kind in ("container", "image", "volume", "network", "pod"):
                if kind in filters:
                    if event.type != kind:
                        return False
                    names = {event.id, event.attributes.get("name", "")}
                    if not any(v in names or event.id.startswith(v) for v in filters[kind]):
                        return False
            return "label" not in filters or label_matches(event.attributes, filters["label"])

        try:
            async for event in self.engine.events.subscribe(
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

    def _usage(self, container_id: str) -> int:
        try:
            return self.engine.snapshots.usage(container_id)
        except NotFound:
            return 0  # removed while we were counting

    async def _containers_usage(self) -> system_pb2.DiskUsageItem:
        containers = await self.engine.containers.list()
        sizes = await asyncio.to_thread(lambda: [self._usage(c.id) for c in containers])
        active = sum(1 for c in containers if c.state.running)
        reclaimable = sum(
            size for c, size in zip(containers, sizes, strict=True) if not c.state.running
        )
        return system_pb2.DiskUsageItem(
            type="Containers",
            total=len(containers),
            active=active,
            size=sum(sizes),
            reclaimable=reclaimable,
        )

    def _volumes_usage(self) -> system_pb2.DiskUsageItem:
        volumes = self.engine.volumes
        found = volumes.list()
        sizes = [max(0, volumes.size(v)) for v in found]
        used = [bool(volumes.in_use(v.name)) for v in found]
        return system_pb2.DiskUsageItem(
            type="Local Volumes",
            total=len(found),
            active=sum(used),
            size=sum(sizes),
            reclaimable=sum(size for size, u in zip(sizes, used, strict=True) if not u),
        )

    async def DiskUsage(
        self, request: system_pb2.DiskUsageRequest, context: grpc.aio.ServicerContext
    ) -> system_pb2.DiskUsageResponse:
        images = await asyncio.to_thread(self.engine.images.list)
        containers = await self.engine.containers.list()
        users: dict[str, int] = {}
        for c in containers:
            users[c.image_id] = users.get(c.image_id, 0) + 1
        total = sum(i.size for i in images)
        unused = sum(i.size for i in images if i.id not in users)
        items = [
            system_pb2.DiskUsageItem(
                type="Images",
                total=len(images),
                active=len(images) - sum(1 for i in images if i.id not in users),
                size=total,
                reclaimable=unused,
            ),
            await self._containers_usage(),
            await asyncio.to_thread(self._volumes_usage),
            system_pb2.DiskUsageItem(type="Build Cache"),
        ]
        refs = [
            system_pb2.ImageSummaryRef(
                id=i.id, repo_tags=i.repo_tags, size=i.size, containers=users.get(i.id, 0)
            )
            for i in images
        ]
        return system_pb2.DiskUsageResponse(items=items, images=refs)
