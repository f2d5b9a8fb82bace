"""The engine core: the one model every front door translates onto.

``Engine`` owns the stores and the services (images now; containers, volumes, networks and
pods as they land). Front doors call its services; they never touch the stores directly.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path

from servin.engine import permissions
from servin.engine.build.service import BuildService
from servin.engine.config import DaemonConfig
from servin.engine.containers.execs import ExecService
from servin.engine.containers.files import FileOperations
from servin.engine.containers.recovery import remove_unrecorded
from servin.engine.containers.service import ContainerService
from servin.engine.containers.stats import StatsSampler
from servin.engine.containers.store import ContainerStore
from servin.engine.events import EventBus
from servin.engine.images.pull import Puller
from servin.engine.images.push import Pusher
from servin.engine.images.registry.client import Registries
from servin.engine.images.service import ImageService
from servin.engine.images.store import ImageStore
from servin.engine.networks.service import NetworkService
from servin.engine.store import trash
from servin.engine.store.content import ContentStore
from servin.engine.store.metadata import MetadataStore
from servin.engine.store.snapshots import Snapshotter
from servin.engine.store.trash import Trash
from servin.engine.volumes.service import VolumeService
from servin.engine.volumes.store import VolumeStore

log = logging.getLogger(__name__)


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
        self.meta = MetadataStore(config.root / "servin.db")
        self.content = ContentStore(config.root / "content")
        self.events = EventBus()
        image_store = ImageStore(self.meta, self.content)
        # Deletes removed containers' files off the request's path (see store/trash.py).
        self.trash = Trash()
        self.snapshots = Snapshotter(config.root / "snapshots", driver=config.storage_driver,
                                     max_layer_size=config.max_layer_size, trash=self.trash)
        self.containers = ContainerService(
            config, ContainerStore(self.meta), image_store, self.snapshots, self.events
        )
        self.volumes = VolumeService(VolumeStore(self.meta, config.root / "volumes"), self.events)
        self.containers.volumes = self.volumes
        self.volumes.users = self.containers.volume_users
        self.images = ImageService(
            image_store, self.snapshots, self.events, in_use=self.containers.image_in_use
        )
        self.files = FileOperations(self.containers, self.images)
        # Registry access (pools, tokens) shared by every pull, push and login.
        self.registries = Registries(config.registries)
        self.puller = Puller(image_store, self.snapshots, self.registries, self.events)
        self.pusher = Pusher(image_store, self.registries, self.events)
        self.networks = NetworkService(config, self.meta, self.containers.store, self.events)
        self.containers.networks = self.networks
        self.execs = ExecService(self.containers, self.events)
        self.containers.health_probe = self.execs.probe  # health checks run as execs
        # One sampler for every stats client; it runs only while someone subscribes.
        self.stats = StatsSampler(
            self.containers.store, lambda cid: self.containers.paths(cid).dir, self.events
        )
        # Dockerfile builds and their cache (servin.engine.build).
        self.builds = BuildService(self)
        self.id = self._engine_id(config.root / "engine-id")
        permissions.secure_roots(config.root, config.exec_root)  # what the services made

    def repair(self) -> None:
        """Undo what a crash may have left half-done (runs once at start)."""
        removed = self.content.clean_ingest()
        if removed:
            log.info("removed partial blobs left by an interrupted write", extra={"count": removed})
        self.snapshots.repair()
        # Removals the background had not done when the daemon stopped.
        trash.sweep(self.config.root / "containers")
        trash.sweep(self.config.exec_root / "containers")
        self.volumes.repair_disk()
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
            tmp = path.with_suffix(".tmp")
            permissions.create_private_file(tmp)
            tmp.write_text(value + "\n")
            os.replace(tmp, path)
            return value
