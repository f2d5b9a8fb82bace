"""Create, list, inspect, remove, prune, mount, back up and restore volumes.

``VolumeManager`` does the work; every method blocks (disk and mount work), so the container
services call it from worker threads. ``VolumeService`` is the door-facing async API over it.
Which containers use a volume comes from the container store through ``users`` (given at
construction), so the volume records hold no reference counts that could drift.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from servin.engine import fsarchive, limits
from servin.engine.crashpoints import crashpoint
from servin.engine.events import EventBus
from servin.engine.semantics import filters as docker_filters
from servin.engine.streamio import reader, stream_from_thread
from servin.engine.volumes import local
from servin.engine.volumes.model import LOCAL, Volume, VolumeView, validate_name
from servin.engine.volumes.store import VolumeStore
from servin.errors import Conflict, InvalidArgument, NotFound, Unavailable

log = logging.getLogger(__name__)

TRASH = "trash"  # .trash-<hex>: a removed volume's data, deleted after its record
STAGE = "import"  # .import-<hex>: a new volume's imported data, renamed into place

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class VolumeUser:
    """A container that references a volume, and whether it runs now."""

    container_id: str
    running: bool


class VolumeManager:
    """Volumes' records, directories and mounts (blocking)."""

    def __init__(self, store: VolumeStore, events: EventBus,
                 users: Callable[[str], builtins.list[VolumeUser]]) -> None:
        self.store = store
        self.events = events
        self.root = store.root
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.RLock()
        # Containers using a volume name (from the container store).
        self.users = users

    # -- records ---------------------------------------------------------------------------

    def create(self, name: str = "", driver: str = "", options: dict[str, str] | None = None,
               labels: dict[str, str] | None = None, *, anonymous: bool = False,
               staged: Path | None = None) -> Volume:
        """Create a volume (a generated name when ``name`` is empty).

        Creating a name that exists returns it when the driver and options agree (docker's
        idempotent create) and is a Conflict otherwise. ``staged``: a directory made by
        ``stage`` (holding ``_data``) that becomes the new volume's (Conflict if it exists).
        """
        driver = driver or LOCAL
        if driver != LOCAL:
            raise InvalidArgument(f"volume driver {driver!r} is not available (only local)")
        limits.check_labels(dict(labels or {}))
        limits.check_options(dict(options or {}))
        opts = local.validate_options(dict(options or {}))
        if not name:
            name = secrets.token_hex(32)
        validate_name(name)
        with self._lock:
            existing = self.store.find(name)
            if existing is not None:
                if staged is not None:
                    raise Conflict(f"volume {name} was created meanwhile")
                if existing.driver != driver or (opts and existing.options != opts):
                    raise Conflict(f"volume {name} already exists with different options")
                return existing
            v = Volume(name=name, driver=driver, created_ns=time.time_ns(),
                       mountpoint=str(self.root / name / "_data"), labels=dict(labels or {}),
                       options=opts, anonymous=anonymous)
            # Directories first, then the record: a crash between leaves a directory without
            # a record, which the next start deletes (``repair``).
            if staged is not None:
                os.rename(staged, Path(v.mountpoint).parent)
            else:
                local.create_dirs(v)
            crashpoint("volume.create.after-dirs")
            try:
                self.store.add(v)
            except BaseException:
                local.remove_dirs(v)
                raise
        self.events.publish("volume", "create", name, driver=driver)
        return v

    def get(self, name: str) -> Volume:
        """A volume by name."""
        return self.store.get(name)

    def find(self, name: str) -> Volume | None:
        """A volume by name, or None."""
        return self.store.find(name)

    def list(self) -> builtins.list[Volume]:
        """Every volume."""
        return self.store.list()

    def in_use(self, name: str) -> builtins.list[VolumeUser]:
        """Containers referencing the volume."""
        return self.users(name)

    def size(self, v: Volume) -> int:
        """Bytes of data in the volume."""
        return local.data_size(v)

    def remove(self, name: str, *, force: bool = False) -> None:
        """Delete a volume and its data; refused while any container references it.

        ``force`` only makes a missing volume not an error (as docker's ``rm -f``).
        """
        with self._lock:
            v = self.store.find(name)
            if v is None:
                if force:
                    return
                raise NotFound(f"get {name}: no such volume")
            users = self.users(name)
            if users:
                ids = ", ".join(u.container_id[:12] for u in users)
                raise Conflict(f"remove {name}: volume is in use - [{ids}]")
            local.unmount_for_removal(v)
            # Out of the way first (atomic): a crash anywhere after leaves no data under the
            # name (a new volume of that name starts empty) and a record without a directory,
            # which the next start removes; the trash is deleted last, or by that start.
            trash = self._scratch(TRASH)
            with contextlib.suppress(FileNotFoundError):
                os.rename(Path(v.mountpoint).parent, trash)
            crashpoint("volume.rm.after-rename")
            self.store.delete(name)
            crashpoint("volume.rm.after-record")
            try:
                local.remove_tree(trash)
            except Unavailable as exc:  # the next start tries again
                log.warning("cannot delete a removed volume's data", extra={"error": str(exc)})
        self.events.publish("volume", "destroy", name, driver=v.driver)

    def _scratch(self, kind: str) -> Path:
        """A fresh path in the volumes dir that no volume name can take (names start with a
        letter or digit)."""
        return self.root / f".{kind}-{secrets.token_hex(8)}"

    def prune(self, *, all_volumes: bool,
              match: Callable[[Volume], bool] = lambda v: True) -> tuple[builtins.list[str], int]:
        """Remove unused volumes (anonymous ones only unless ``all_volumes``); the names
        removed and the bytes reclaimed."""
        deleted: builtins.list[str] = []
        reclaimed = 0
        for v in self.store.list():
            if not (all_volumes or v.anonymous):
                continue
            if not match(v):
                continue
            if self.users(v.name):
                continue
            size = max(0, local.data_size(v))
            try:
                self.remove(v.name)
            except Conflict:
                continue  # taken into use meanwhile
            deleted.append(v.name)
            reclaimed += size
        if deleted:
            self.events.publish("volume", "prune", "", reclaimed=str(reclaimed))
        return deleted, reclaimed

    # -- containers ------------------------------------------------------------------------

    def acquire(self, name: str) -> Path:
        """The host directory to bind for a starting container; mounts a ``type=`` volume's
        filesystem first when no running container holds it yet."""
        with self._lock:
            v = self.store.get(name)
            if local.mount_volume(v):
                self.events.publish("volume", "mount", name, driver=v.driver)
            return Path(v.mountpoint)

    def release(self, names: builtins.list[str], stopping: str) -> None:
        """Container ``stopping`` stopped: unmount each ``type=`` volume no other running
        container uses."""
        with self._lock:
            for name in dict.fromkeys(names):
                v = self.store.find(name)
                if v is None or not local.is_mounted_kind(v) or not local.is_mounted(v):
                    continue
                others = [u for u in self.users(name)
                          if u.running and u.container_id != stopping]
                if not others:
                    local.unmount_volume(v)
                    self.events.publish("volume", "unmount", name, driver=v.driver)

    def repair(self) -> None:
        """At daemon start (after containers were recovered): unmount ``type=`` volumes that
        no running container holds (their last user stopped while the daemon was down)."""
        for v in self.store.list():
            if local.is_mounted_kind(v):
                self.release([v.name], "")

    def repair_disk(self) -> None:
        """At daemon start, before anything runs: finish what a crash interrupted.

        Trash and staged imports are deleted; a record whose directory is gone is a removal
        interrupted after its rename (the record goes); a directory without a record is a
        create interrupted before its record (the directory goes).
        """
        records = {v.name: v for v in self.store.list()}
        for v in records.values():
            if not os.path.lexists(Path(v.mountpoint).parent):
                log.warning("finishing the removal of a volume", extra={"volume": v.name})
                self.store.delete(v.name)
        with os.scandir(self.root) as it:
            entries = [(e.name, Path(e.path), e.is_dir(follow_symlinks=False)) for e in it]
        for name, path, is_dir in entries:
            if name.startswith((f".{TRASH}-", f".{STAGE}-")) or (
                    is_dir and name not in records):
                log.warning("removing volume data no record owns", extra={"path": str(path)})
                try:
                    local.remove_tree(path)
                except Unavailable as exc:
                    log.warning("cannot delete it", extra={"error": str(exc)})

    def is_empty(self, name: str) -> bool:
        """Whether the volume holds no files (a first mount copies the image's content)."""
        return local.is_empty(Path(self.store.get(name).mountpoint))

    # -- backups ---------------------------------------------------------------------------

    def export(self, name: str, out: BinaryIO) -> None:
        """Write the volume's content as a tar stream (entries relative to its root)."""
        v = self.store.get(name)
        with self._lock:
            mounted_here = local.mount_volume(v)
        fd = os.open(v.mountpoint, _DIR)
        try:
            writer = fsarchive.TarWriter(out)
            writer.add_entry(fd, ".", ".", recursive=False)
            writer.add_children(fd, ".")
            writer.close()
        finally:
            os.close(fd)
            if mounted_here:
                self.release([name], "")

    def import_(self, name: str, source: BinaryIO) -> bool:
        """Restore a tar stream into the volume (created when missing); True if created.

        The archive is spooled and checked first: an entry that would land outside the
        volume refuses the whole import, and nothing is written.
        """
        with tempfile.TemporaryFile(dir=self.root) as spool:
            shutil.copyfileobj(source, spool, 1 << 20)
            spool.seek(0)
            fsarchive.check_members(spool)
            spool.seek(0)
            if self.store.find(name) is None:
                self._import_new(name, spool)
                return True
            v = self.create(name)
            created = False
            mounted_here = False
            try:
                with self._lock:
                    mounted_here = local.mount_volume(v)
                fd = os.open(v.mountpoint, _DIR)
                try:
                    fsarchive.Extractor(fd).extract(spool)
                except OSError as exc:
                    raise InvalidArgument(f"volume import into {name}: {exc.strerror or exc}"
                                          ) from exc
                finally:
                    os.close(fd)
            except BaseException:
                if created:
                    with contextlib.suppress(Exception):
                        self.remove(name)
                raise
            finally:
                if mounted_here and self.store.find(name) is not None:
                    self.release([name], "")
        return created

    def _import_new(self, name: str, spool: BinaryIO) -> None:
        """Import into a volume that does not exist yet: the data is extracted aside and the
        volume appears whole or not at all (a crash leaves a staged dir the next start
        deletes)."""
        validate_name(name)
        staged = self._scratch(STAGE)
        data = staged / "_data"
        os.mkdir(staged, 0o700)
        try:
            os.mkdir(data, 0o755)
            fd = os.open(data, _DIR)
            try:
                fsarchive.Extractor(fd).extract(spool)
            except OSError as exc:
                raise InvalidArgument(f"volume import into {name}: {exc.strerror or exc}"
                                      ) from exc
            finally:
                os.close(fd)
            crashpoint("volume.import.after-extract")
            self.create(name, staged=staged)
        except BaseException:
            local.remove_tree(staged)
            raise

class VolumeService:
    """The door-facing volume API (async)."""

    def __init__(self, manager: VolumeManager) -> None:
        self.manager = manager

    def _view(self, v: Volume, size: bool = False) -> VolumeView:
        return VolumeView(v, len(self.manager.in_use(v.name)),
                          self.manager.size(v) if size else -1)

    async def create(self, name: str = "", driver: str = "",
                     options: dict[str, str] | None = None,
                     labels: dict[str, str] | None = None) -> VolumeView:
        """Create a volume (docker's idempotent create: an existing one of that name with the
        same driver and options is returned)."""
        v = await asyncio.to_thread(self.manager.create, name, driver, options, labels)
        return await asyncio.to_thread(self._view, v)

    async def inspect(self, name: str) -> VolumeView:
        """A volume by name, with its size."""
        v = await asyncio.to_thread(self.manager.get, name)
        return await asyncio.to_thread(self._view, v, True)

    async def list(self, filters: docker_filters.Filters | None = None
                   ) -> builtins.list[VolumeView]:
        """The volumes docker's ``filters`` select."""
        wanted = docker_filters.check(filters or {}, docker_filters.VOLUME_KEYS)

        def build() -> builtins.list[VolumeView]:
            views = [self._view(v) for v in self.manager.list()]
            return [v for v in views if docker_filters.volume_matches(v, wanted)]

        return await asyncio.to_thread(build)

    async def remove(self, name: str, *, force: bool = False) -> None:
        """Delete a volume and its data; refused while any container references it."""
        await asyncio.to_thread(self.manager.remove, name, force=force)

    async def prune(self, *, all_volumes: bool = False,
                    filters: docker_filters.Filters | None = None
                    ) -> tuple[builtins.list[str], int]:
        """Remove unused volumes (anonymous ones only unless ``all_volumes`` or
        ``all=true``) that ``filters`` select; the names removed and the bytes reclaimed."""
        wanted = docker_filters.check(filters or {}, docker_filters.VOLUME_PRUNE_KEYS)
        if "all" in wanted:
            all_volumes = all_volumes or docker_filters.parse_bool("all", wanted["all"])
        return await asyncio.to_thread(
            self.manager.prune, all_volumes=all_volumes,
            match=lambda v: docker_filters.labels_ok(v.labels, wanted))

    async def export(self, name: str) -> AsyncIterator[bytes]:
        """The volume's content as a tar stream."""
        await asyncio.to_thread(self.manager.get, name)  # NotFound before streaming
        async for chunk in stream_from_thread(lambda out: self.manager.export(name, out)):
            yield chunk

    async def import_(self, name: str, chunks: AsyncIterator[bytes]) -> bool:
        """Restore a tar stream into the volume (created when missing); True if created."""
        source = reader(chunks, asyncio.get_running_loop())
        return await asyncio.to_thread(self.manager.import_, name, source)
