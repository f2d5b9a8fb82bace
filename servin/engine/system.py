"""System-wide facts for every door: version, info, disk usage, available runtimes."""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import socket
import time
from dataclasses import dataclass, field

from servin import API_VERSION, __version__
from servin.engine import hostinfo
from servin.engine.config import DaemonConfig
from servin.engine.containers.model import PAUSED, RESTARTING, RUNNING
from servin.engine.containers.store import ContainerStore
from servin.engine.images.platforms import host_platform
from servin.engine.images.store import ImageRecord, ImageStore
from servin.engine.store.snapshots import Snapshotter
from servin.engine.volumes.service import VolumeManager
from servin.errors import NotFound
from servin.version import git_commit


@dataclass(frozen=True)
class VersionInfo:
    """The daemon's version facts."""

    version: str
    api_version: str
    git_commit: str
    python_version: str
    os: str
    arch: str
    kernel_version: str


@dataclass(frozen=True)
class SystemInfo:
    """What ``info`` shows."""

    id: str
    name: str
    images: int
    containers: int
    containers_running: int
    containers_paused: int
    containers_stopped: int
    volumes: int
    storage_driver: str
    cgroup_driver: str
    cgroup_version: int
    kernel_version: str
    operating_system: str
    os_type: str
    architecture: str
    ncpu: int
    mem_total: int
    root_dir: str
    exec_root: str
    default_runtime: str
    runtimes: list[str]
    server_version: str
    system_time_ns: int
    insecure_registries: list[str]
    registry_mirrors: dict[str, list[str]]
    logging_driver: str
    security_options: list[str]
    socket: str
    daemon_pid: int
    started_at_ns: int


@dataclass(frozen=True)
class UsageItem:
    """One row of ``system df``."""

    type: str  # "Images", "Containers", "Local Volumes", "Build Cache"
    total: int = 0
    active: int = 0
    size: int = 0
    reclaimable: int = 0


@dataclass(frozen=True)
class DiskUsage:
    """``system df``: the rows, and each image with how many containers use it."""

    items: list[UsageItem]
    images: list[tuple[ImageRecord, int]] = field(default_factory=list)


class SystemService:
    """Version, info and disk usage."""

    def __init__(self, config: DaemonConfig, engine_id: str, started_at_ns: int,
                 containers: ContainerStore, images: ImageStore, volumes: VolumeManager,
                 snapshots: Snapshotter) -> None:
        self.config = config
        self.engine_id = engine_id
        self.started_at_ns = started_at_ns
        self._containers = containers
        self._images = images
        self._volumes = volumes
        self._snapshots = snapshots

    def runtimes(self) -> list[str]:
        """The OCI runtimes this daemon can use: native plus runc/crun when installed."""
        names = ["native"]
        for name in ("runc", "crun"):
            if self.config.runtimes.get(name) or shutil.which(name):
                names.append(name)
        names += [n for n in self.config.runtimes if n not in names]
        return names

    async def version(self) -> VersionInfo:
        """The daemon's version facts."""
        return VersionInfo(
            version=__version__, api_version=API_VERSION, git_commit=git_commit(),
            python_version=platform.python_version(), os="linux",
            arch=host_platform().architecture, kernel_version=hostinfo.kernel_version(),
        )

    async def info(self) -> SystemInfo:
        """What ``info`` shows."""
        return await asyncio.to_thread(self._info)

    def _info(self) -> SystemInfo:
        images = self._images.list()
        states = [c.state.status for c in self._containers.list()]
        active = states.count(RUNNING) + states.count(PAUSED) + states.count(RESTARTING)
        cfg = self.config
        return SystemInfo(
            id=self.engine_id,
            name=socket.gethostname(),
            images=len(images),
            containers=len(states),
            containers_running=states.count(RUNNING) + states.count(RESTARTING),
            containers_paused=states.count(PAUSED),
            containers_stopped=len(states) - active,
            volumes=len(self._volumes.list()),
            storage_driver=self._snapshots.driver,
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
            runtimes=self.runtimes(),
            server_version=__version__,
            system_time_ns=time.time_ns(),
            insecure_registries=list(cfg.registries.insecure),
            registry_mirrors={k: list(v) for k, v in cfg.registries.mirrors.items()},
            logging_driver="json-file",
            security_options=["seccomp", "no-new-privileges"],
            socket=str(cfg.main_socket),
            daemon_pid=os.getpid(),
            started_at_ns=self.started_at_ns,
        )

    async def disk_usage(self) -> DiskUsage:
        """``system df``: space used by images, containers and volumes."""
        return await asyncio.to_thread(self._disk_usage)

    def _usage(self, container_id: str) -> int:
        try:
            return self._snapshots.usage(container_id)
        except NotFound:
            return 0  # removed while we were counting

    def _disk_usage(self) -> DiskUsage:
        images = self._images.list()
        containers = self._containers.list()
        users: dict[str, int] = {}
        for c in containers:
            users[c.image_id] = users.get(c.image_id, 0) + 1
        sizes = [self._usage(c.id) for c in containers]
        volumes = self._volumes.list()
        volume_sizes = [max(0, self._volumes.size(v)) for v in volumes]
        volume_used = [bool(self._volumes.in_use(v.name)) for v in volumes]
        items = [
            UsageItem(
                type="Images", total=len(images),
                active=sum(1 for i in images if i.id in users),
                size=sum(i.size for i in images),
                reclaimable=sum(i.size for i in images if i.id not in users),
            ),
            UsageItem(
                type="Containers", total=len(containers),
                active=sum(1 for c in containers if c.state.running), size=sum(sizes),
                reclaimable=sum(size for c, size in zip(containers, sizes, strict=True)
                                if not c.state.running),
            ),
            UsageItem(
                type="Local Volumes", total=len(volumes), active=sum(volume_used),
                size=sum(volume_sizes),
                reclaimable=sum(size for size, used in zip(volume_sizes, volume_used, strict=True)
                                if not used),
            ),
            UsageItem(type="Build Cache"),
        ]
        return DiskUsage(items, [(i, users.get(i.id, 0)) for i in images])
