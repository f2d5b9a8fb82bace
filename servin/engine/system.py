"""System-wide facts for every door: version, info, disk usage, available runtimes."""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from servin import API_VERSION, __version__
from servin.engine import fsusage, hostinfo
from servin.engine.config import DaemonConfig
from servin.engine.containers.model import PAUSED, RESTARTING, RUNNING
from servin.engine.containers.service import ContainerService
from servin.engine.containers.views import ContainerListing
from servin.engine.fsusage import FilesystemUsage
from servin.engine.images.platforms import host_platform
from servin.engine.images.store import ImageRecord, ImageStore
from servin.engine.networks.service import NetworkService
from servin.engine.store.snapshots import Snapshotter
from servin.engine.store.snapshots.layers import chain_ids
from servin.engine.volumes.model import VolumeView
from servin.engine.volumes.service import VolumeManager
from servin.errors import ServinError
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
    networks: int = 0
    pods: int = 0
    # The host's load, for dashboards: cumulative CPU time since boot over all CPUs (busy and
    # total; two readings give the usage between them), MemAvailable, load averages.
    cpu_busy_ns: int = 0
    cpu_total_ns: int = 0
    mem_available: int = 0
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class UsageItem:
    """One row of ``system df``."""

    type: str  # "Images", "Containers", "Local Volumes", "Build Cache"
    total: int = 0
    active: int = 0
    size: int = 0
    reclaimable: int = 0


@dataclass(frozen=True)
class ImageUsage:
    """An image in ``system df``: how many containers use it and the bytes of its layers
    that other images share."""

    record: ImageRecord
    containers: int
    shared_size: int


@dataclass(frozen=True)
class DiskUsage:
    """``system df``: the summary rows and the objects behind them."""

    items: list[UsageItem]
    images: list[ImageUsage] = field(default_factory=list)
    layers_size: int = 0  # bytes of every unpacked layer, each counted once
    containers: list[ContainerListing] = field(default_factory=list)  # with size_rw
    volumes: list[VolumeView] = field(default_factory=list)  # with size and ref_count


IMAGE_FS_TTL_NS = 5_000_000_000  # a walk of the layers is reused this long


class SystemService:
    """Version, info, disk usage, and the daemon's configuration (read-only) for the doors
    that report it."""

    def __init__(self, config: DaemonConfig, engine_id: str, started_at_ns: int,
                 containers: ContainerService, images: ImageStore, volumes: VolumeManager,
                 networks: NetworkService, snapshots: Snapshotter,
                 build_cache: Callable[[], tuple[int, int]] = lambda: (0, 0),
                 pod_count: Callable[[], int] = lambda: 0) -> None:
        self.config = config
        self._pod_count = pod_count  # blocking: the pod store's count
        self._build_cache = build_cache  # (entries, bytes): the build service's cache
        self.engine_id = engine_id
        self.started_at_ns = started_at_ns
        self._containers = containers
        self._images = images
        self._volumes = volumes
        self._networks = networks
        self._snapshots = snapshots
        self._image_fs: FilesystemUsage | None = None

    @property
    def storage_driver(self) -> str:
        """The snapshotter's driver: "overlay" or "copy"."""
        return self._snapshots.driver

    def runtime_path(self, name: str) -> str:
        """Where OCI runtime ``name``'s binary is ("" for native or when it is missing)."""
        if name == "native":
            return ""
        return self.config.runtimes.get(name) or shutil.which(name) or ""

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
        networks = len(await self._networks.list())
        return await asyncio.to_thread(self._info, networks)

    def _info(self, networks: int) -> SystemInfo:
        images = self._images.list()
        states = [e.container.state.status for e in self._containers.entries()]
        active = states.count(RUNNING) + states.count(PAUSED) + states.count(RESTARTING)
        cpu_busy, cpu_total = hostinfo.cpu_times_ns()
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
            storage_driver=self.storage_driver,
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
            networks=networks,
            pods=self._pod_count(),
            cpu_busy_ns=cpu_busy,
            cpu_total_ns=cpu_total,
            mem_available=hostinfo.mem_available(),
            load_average=os.getloadavg(),
        )

    async def image_fs(self) -> FilesystemUsage:
        """Bytes and inodes the unpacked image layers use (measured at most every 5 s:
        crictl asks before every command, the kubelet every few seconds)."""
        cached = self._image_fs
        if cached is None or time.time_ns() - cached.timestamp_ns > IMAGE_FS_TTL_NS:
            cached = await asyncio.to_thread(self._measure_image_fs)
            self._image_fs = cached
        return cached

    def _measure_image_fs(self) -> FilesystemUsage:
        return fsusage.measure(str(self._snapshots.layout.layers))

    async def disk_usage(self) -> DiskUsage:
        """``system df``: space used by images, containers and volumes."""
        listings = await self._containers.list(all=True, size=True)
        return await asyncio.to_thread(self._disk_usage, listings)

    def _layer_size(self, chain: str) -> int:
        try:
            return self._snapshots.layer_size(chain)
        except ServinError:
            return 0

    def _disk_usage(self, listings: list[ContainerListing]) -> DiskUsage:
        images = self._images.list()
        users: dict[str, int] = {}
        for row in listings:
            users[row.container.image_id] = users.get(row.container.image_id, 0) + 1
        chains: dict[str, list[str]] = {}
        for record in images:
            try:
                diff_ids = (self._images.config(record).get("rootfs") or {}).get("diff_ids")
            except (ServinError, OSError, ValueError):
                diff_ids = []
            chains[record.id] = chain_ids(list(diff_ids or []))
        count: dict[str, int] = {}
        for ids in chains.values():
            for chain in set(ids):
                count[chain] = count.get(chain, 0) + 1
        layer_sizes = {chain: self._layer_size(chain) for chain in count}
        image_usage = [
            ImageUsage(record, users.get(record.id, 0),
                       sum(layer_sizes[c] for c in set(chains[record.id]) if count[c] > 1))
            for record in images
        ]
        sizes = [row.size_rw or 0 for row in listings]
        volumes = [VolumeView(v, len(self._volumes.in_use(v.name)), max(0, self._volumes.size(v)))
                   for v in self._volumes.list()]
        items = [
            UsageItem(
                type="Images", total=len(images),
                active=sum(1 for i in images if i.id in users),
                size=sum(i.size for i in images),
                reclaimable=sum(i.size for i in images if i.id not in users),
            ),
            UsageItem(
                type="Containers", total=len(listings),
                active=sum(1 for row in listings if row.container.state.running),
                size=sum(sizes),
                reclaimable=sum(size for row, size in zip(listings, sizes, strict=True)
                                if not row.container.state.running),
            ),
            UsageItem(
                type="Local Volumes", total=len(volumes),
                active=sum(1 for v in volumes if v.ref_count),
                size=sum(v.size for v in volumes),
                reclaimable=sum(v.size for v in volumes if not v.ref_count),
            ),
        ]
        entries, cache_bytes = self._build_cache()
        # Nothing holds a cache entry once its build is done: all of it can be pruned.
        items.append(UsageItem(type="Build Cache", total=entries, size=cache_bytes,
                               reclaimable=cache_bytes))
        return DiskUsage(items, image_usage, sum(layer_sizes.values()), listings, volumes)
