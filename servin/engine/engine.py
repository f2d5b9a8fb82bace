"""The engine core: its stores, its services, and the narrow API the front doors call.

``Engine`` builds everything from the daemon's configuration, each service getting its
collaborators at construction. ``Engine.api`` (a ``CoreAPI``) is all a front door receives:
the door-facing services, every method async, taking and returning the core's model. Stores,
the snapshotter and monitor clients stay inside the core.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from servin.engine import permissions
from servin.engine.build.adapter import Collaborators
from servin.engine.build.service import BuildService
from servin.engine.config import DaemonConfig
from servin.engine.containers.execs import ExecService
from servin.engine.containers.files import FileOperations
from servin.engine.containers.locks import ContainerLocks
from servin.engine.containers.logs import LogService
from servin.engine.containers.monitors import Monitors
from servin.engine.containers.recovery import remove_unrecorded
from servin.engine.containers.runner import Runner
from servin.engine.containers.service import ContainerService
from servin.engine.containers.stats import StatsSampler
from servin.engine.containers.store import ContainerStore
from servin.engine.containers.streams import AttachService
from servin.engine.containers.supervisor import Supervisor
from servin.engine.events import EventBus
from servin.engine.images.pull import Puller
from servin.engine.images.push import Pusher
from servin.engine.images.registry.client import Registries
from servin.engine.images.service import ImageService
from servin.engine.images.store import ImageStore
from servin.engine.networks.service import NetworkService
from servin.engine.pods.cgroups import PodCgroups
from servin.engine.pods.members import PodMembers
from servin.engine.pods.service import PodService
from servin.engine.pods.store import PodStore
from servin.engine.store import trash
from servin.engine.store.content import ContentStore
from servin.engine.store.metadata import MetadataStore
from servin.engine.store.snapshots import Snapshotter
from servin.engine.store.trash import Trash
from servin.engine.system import SystemService
from servin.engine.volumes.service import VolumeManager, VolumeService, VolumeUser
from servin.engine.volumes.store import VolumeStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CoreAPI:
    """What every front door calls, and nothing else (see docs/architecture.md, "The core
    API")."""

    containers: ContainerService  # create, start, stop, kill, wait, remove, list, inspect, ...
    attach: AttachService  # attach sessions to containers' streams, terminal size
    execs: ExecService  # exec create, start (a stream session), resize, inspect
    logs: LogService  # log entries, with follow
    files: FileOperations  # cp both ways, export, diff, commit
    stats: StatsSampler  # live CPU/memory/network/block figures, one sampler for all
    images: ImageService  # pull, push, login, import, load, save, list, inspect, tag, rm, prune
    volumes: VolumeService  # create, list, inspect, rm, prune, export, import
    networks: NetworkService  # create, list, inspect, rm, prune, connect, disconnect
    pods: PodService  # create, start, stop, kill, restart, pause, unpause, rm, list, top, stats
    system: SystemService  # version, info, disk usage
    events: EventBus  # subscribe to every state change
    builds: BuildService  # Dockerfile builds (streamed context in, events out), cache prune


class Engine:
    """Everything the daemon serves, built from its configuration."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.started_at_ns = time.time_ns()
        config.root.mkdir(parents=True, exist_ok=True, mode=permissions.ROOT_MODE)
        config.exec_root.mkdir(parents=True, exist_ok=True, mode=permissions.EXEC_ROOT_MODE)
        # Before the database is opened: its WAL must never be readable by others.
        permissions.secure_roots(config.root, config.exec_root)
        for directory in (config.root / "containers", config.exec_root / "containers",
                          config.exec_root / "runtime"):
            directory.mkdir(exist_ok=True, mode=permissions.PRIVATE_DIR)
        self.id = self._engine_id(config.root / "engine-id")
        self.meta = MetadataStore(config.root / "servin.db")
        self.content = ContentStore(config.root / "content")
        self.events = EventBus()
        # Deletes removed containers' files off the request's path (see store/trash.py).
        self.trash = Trash()
        self.snapshots = Snapshotter(config.root / "snapshots", driver=config.storage_driver,
                                     max_layer_size=config.max_layer_size, trash=self.trash)
        container_store = ContainerStore(self.meta)
        image_store = ImageStore(self.meta, self.content)

        self.volume_manager = VolumeManager(
            VolumeStore(self.meta, config.root / "volumes"), self.events,
            users=lambda name: [VolumeUser(cid, running)
                                for cid, running in container_store.volume_users(name)],
        )
        # Registry access (pools, tokens) shared by every pull, push and login.
        self.registries = Registries(config.registries)
        self.images = ImageService(
            image_store, self.snapshots, self.events, in_use=container_store.using_image,
            puller=Puller(image_store, self.snapshots, self.registries, self.events),
            pusher=Pusher(image_store, self.registries, self.events),
            registries=self.registries,
        )
        self.networks = NetworkService(config, self.meta, container_store, self.events)

        monitors = Monitors(config)
        locks = ContainerLocks()
        self.execs = ExecService(container_store, monitors, self.events)

        self.attach = AttachService(container_store, monitors, locks)
        runner = Runner(config, container_store, image_store, self.snapshots, monitors, locks,
                        self.networks, self.volume_manager, self.attach, self.events)
        pod_store = PodStore(self.meta)
        pod_cgroups = PodCgroups()
        pod_members = PodMembers(pod_store, container_store, pod_cgroups)
        supervisor = Supervisor(container_store, locks, runner, monitors, self.networks,
                                self.events, probe=self.execs.probe, pods=pod_members)
        self.containers = ContainerService(
            config, container_store, image_store, self.snapshots, monitors, locks, runner,
            supervisor, self.networks, self.volume_manager, self.events,
            pods=pod_members,
            exec_ids=self.execs.running_in,
        )
        self.logs = LogService(container_store, monitors, locks)
        self.files = FileOperations(self.containers, image_store, self.volume_manager)
        self.volumes = VolumeService(self.volume_manager)
        # One sampler for every stats client; it runs only while someone subscribes.
        self.stats = StatsSampler(container_store, lambda cid: monitors.paths(cid).dir,
                                  self.events)
        self.pods = PodService(pod_store, container_store, self.containers, pod_cgroups,
                               self.stats, self.events)
        # Dockerfile builds and their cache (servin.engine.build; adapter.py is its door).
        self.builds = BuildService(Collaborators(
            root=config.root, exec_root=config.exec_root, meta=self.meta,
            content=self.content, snapshots=self.snapshots, image_store=image_store,
            images=self.images, containers=self.containers, container_store=container_store,
            attach=self.attach, networks=self.networks, events=self.events,
        ))
        self.system = SystemService(config, self.id, self.started_at_ns, self.containers,
                                    image_store, self.volume_manager, self.networks,
                                    self.snapshots, build_cache=self.builds.usage,
                                    pod_count=lambda: len(pod_store.names()))
        self.api = CoreAPI(
            containers=self.containers, attach=self.attach, execs=self.execs, logs=self.logs,
            files=self.files, stats=self.stats, images=self.images, volumes=self.volumes,
            networks=self.networks, pods=self.pods, system=self.system, events=self.events,
            builds=self.builds,
        )
        permissions.secure_roots(config.root, config.exec_root)  # what the services made

    def repair(self) -> None:
        """Undo what a crash may have left half-done (blocking; runs once at start)."""
        removed = self.content.clean_ingest()
        if removed:
            log.info("removed partial blobs left by an interrupted write", extra={"count": removed})
        self.snapshots.repair()
        # Removals the background had not done when the daemon stopped.
        trash.sweep(self.config.root / "containers")
        trash.sweep(self.config.exec_root / "containers")
        self.volume_manager.repair_disk()
        # No operation runs yet: a snapshot without a container record is a create that a
        # crash interrupted, and whatever no record references is garbage.
        known = {c.id for c in self.containers.store.list()}
        for key in list(self.snapshots.keys()):
            if key not in known:
                log.info("removing a snapshot without a container", extra={"key": key})
                self.snapshots.remove(key)
        remove_unrecorded(self.config, self.snapshots, known)
        self.builds.repair()
        collected = self.images.collect()
        if collected.blobs or collected.layers:
            log.info(
                "collected unreferenced blobs and layers at start",
                extra={"blobs": len(collected.blobs), "layers": len(collected.layers)},
            )

    async def start(self) -> None:
        """Bring the core up after ``repair``: host networking, running containers
        reattached, volume mounts and the firewall reconciled."""
        await asyncio.to_thread(self.networks.setup)
        await self.networks.start()
        await self.containers.recover()
        await self.pods.recover()
        await self.builds.recover()  # after containers: it removes build steps' leftovers
        await asyncio.to_thread(self.volume_manager.repair)
        await self.networks.sync_firewall_or_warn()

    async def stop(self) -> None:
        """Stop watching (containers keep running under their monitors), release host
        networking when nothing runs, and close the registries' connections."""
        await self.stats.stop()
        await self.execs.shutdown()
        await self.containers.shutdown()
        containers = await asyncio.to_thread(self.containers.store.list)
        running = any(c.state.running for c in containers)
        await self.networks.shutdown(any_running=running)
        await self.registries.aclose()

    def close(self) -> None:
        """Flush and close the stores."""
        # What is left undone is swept at the next start; waiting a little spares that.
        self.trash.drain(timeout=5.0)
        self.meta.close()

    @staticmethod
    def _engine_id(path: Path) -> str:
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            value = uuid.uuid4().hex
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            permissions.create_private_file(tmp)
            tmp.write_text(value + "\n")
            os.replace(tmp, path)
            return value
