"""The builder's one door into the rest of the engine.

Everything the builder needs from the engine goes through ``EngineAdapter``: image records,
the content store, the snapshotter, leases, RUN steps' containers, the garbage collector's
roots and the event bus. The other modules of ``servin.engine.build`` deal in states
(``state.py``), file descriptors and paths; when the engine's internals change, this module
is the one to follow them.

Blocking work (hashing, tar writing, unpacking, mounting) runs in worker threads. Mounts the
builder makes for COPY/ADD/WORKDIR live in a private mount namespace of one worker thread
(they vanish with it, whatever happens); the read-only views a RUN step's bind mounts need
are mounted under ``<exec-root>/build/`` and unmounted after the step (and at start, after a
crash).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from servin.engine.build.options import Limits
from servin.engine.build.state import Layer, State
from servin.engine.containers.files import in_private_mount_namespace
from servin.engine.containers.model import (
    ContainerConfig,
    CreateRequest,
    HealthConfig,
    HostConfig,
    Mount,
    Resources,
    Ulimit,
)
from servin.engine.containers.service import ContainerService
from servin.engine.containers.store import ContainerStore
from servin.engine.containers.streams import AttachOptions, AttachService, StreamInput
from servin.engine.events import EventBus
from servin.engine.images import mediatypes
from servin.engine.images.commit import write_layer
from servin.engine.images.platforms import Platform, host_platform
from servin.engine.images.progress import ProgressEvent
from servin.engine.images.service import ImageService
from servin.engine.images.store import ImageRecord, ImageStore
from servin.engine.linux.mount import MS_BIND, MS_RDONLY, mount, remount_bind
from servin.engine.linux.safepath import openat2
from servin.engine.networks.service import NetworkService
from servin.engine.store.content import ContentStore
from servin.engine.store.leases import Lease
from servin.engine.store.metadata import MetadataStore
from servin.engine.store.snapshots import Snapshotter
from servin.engine.store.snapshots.layers import chain_ids
from servin.engine.store.snapshots.mounts import (
    SnapshotMounts,
    mount_snapshot,
    mounts_under,
    unmount_all,
)
from servin.errors import InvalidArgument, NotFound, ServinError
from servin.reference import parse_reference

log = logging.getLogger(__name__)
T = TypeVar("T")

BUILD_LABEL = "servin.build"  # on RUN steps' containers: the build they belong to
ETC_FILES = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")
_PARENTS_FILE = "parents.json"


@dataclass(frozen=True)
class Collaborators:
    """The parts of the engine core a build uses (``Engine`` hands them over)."""

    root: Path  # the daemon's root: the build keeps <root>/build
    exec_root: Path  # the daemon's exec root: RUN steps' mounts under <exec-root>/build
    meta: MetadataStore  # the build cache's table
    content: ContentStore
    snapshots: Snapshotter
    image_store: ImageStore
    images: ImageService  # pulls, garbage collection and its extra roots
    containers: ContainerService  # RUN steps' containers
    container_store: ContainerStore
    attach: AttachService  # RUN steps' output
    networks: NetworkService  # RUN --network by name
    events: EventBus


@dataclass(frozen=True)
class ImageInfo:
    """A recorded image as the builder sees it."""

    id: str
    config: dict[str, Any]
    layers: list[Layer]


@dataclass
class HostMount:
    """A mount for a RUN step's container (its source is a host path)."""

    type: str  # bind or tmpfs
    target: str
    source: str = ""
    read_only: bool = False
    options: list[str] = field(default_factory=list)


@dataclass
class RunSpec:
    """A RUN step's container."""

    build_id: str
    image_id: str
    argv: list[str]
    env: list[str]  # added to the image's (build arguments)
    network: str
    extra_hosts: list[str]
    mounts: list[HostMount]
    resources: Limits
    made_paths: list[str] = field(default_factory=list)  # mount targets: not part of the layer


@dataclass
class RunResult:
    """How a RUN step's container ended."""

    container_id: str
    exit_code: int
    layer: Layer | None = None


@dataclass
class Roots:
    """The roots a filesystem step works in (``O_PATH`` fds and their mount paths)."""

    dest: int  # what the step writes into
    dest_path: Path
    parent_path: Path  # the parent's view (where users and groups are looked up)
    sources: dict[str, int]  # other states' root filesystems, by the caller's names


class EngineAdapter:
    """The engine, as the builder uses it."""

    def __init__(self, engine: Collaborators) -> None:
        self.engine = engine
        self.root = engine.root / "build"
        self.exec_dir = engine.exec_root / "build"
        self.contexts = self.root / "contexts"
        self.cache_mounts = self.root / "cache-mounts"
        self.downloads = self.root / "downloads"
        for directory in (self.root, self.contexts, self.cache_mounts, self.downloads,
                          self.exec_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._parents: dict[str, int] = {}  # temporary parent images -> steps using them
        self._parents_lock = asyncio.Lock()
        self._recorded_for: set[str] = set()  # builds that recorded a temporary image

    # -- basics ---------------------------------------------------------------------------------

    @property
    def db(self) -> MetadataStore:
        """The metadata store (for the build cache's table)."""
        return self.engine.meta

    @property
    def platform(self) -> Platform:
        """This machine's platform."""
        return host_platform()

    def add_gc_roots(self, provider: Callable[[], tuple[set[str], set[str]]]) -> None:
        """Make the garbage collector keep what ``provider`` names (blobs, chain IDs)."""
        self.engine.images.extra_roots.append(provider)

    @contextlib.contextmanager
    def lease(self, purpose: str) -> Iterator[Lease]:
        """Hold what a build writes or reuses until the cache or an image references it."""
        with self.engine.content.leases.lease(purpose) as held:
            yield held

    def hold(self, lease: Lease, state: State) -> None:
        """Hold a state's blobs and layers in ``lease``."""
        for layer in state.layers:
            lease.add_blob(layer.blob)
        for chain in chain_ids(state.diff_ids):
            lease.add_chain(chain)

    def publish(self, action: str, build_id: str, **attributes: str) -> None:
        """A ``builder`` event (the console shows running builds from these)."""
        self.engine.events.publish("builder", action, build_id, **attributes)

    async def collect(self) -> int:
        """Collect garbage (after a failed build, temporary images, a cache prune); the bytes
        reclaimed. Never raises."""
        try:
            collected = await asyncio.to_thread(self.engine.images.collect)
        except Exception as exc:
            log.warning("garbage collection after a build failed", extra={"error": str(exc)})
            return 0
        return int(collected.reclaimed)

    # -- images ---------------------------------------------------------------------------------

    async def find_image(self, reference: str) -> ImageInfo | None:
        """A local image by name or ID, or None."""
        store = self.engine.image_store
        try:
            record = await asyncio.to_thread(store.resolve, reference)
        except NotFound:
            return None
        return await asyncio.to_thread(self._info, record)

    def _info(self, record: ImageRecord) -> ImageInfo:
        store = self.engine.image_store
        config = store.config(record)
        manifest = store.manifest(record)
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        blobs = manifest.get("layers") or []
        if len(blobs) != len(diff_ids):
            raise InvalidArgument(f"image {record.short_id} is broken: its manifest has "
                                  f"{len(blobs)} layers, its config {len(diff_ids)}")
        layers = [Layer(b["digest"], d, int(b.get("size", 0)), b.get("mediaType", ""))
                  for b, d in zip(blobs, diff_ids, strict=True)]
        return ImageInfo(record.id, config, layers)

    async def pull(self, reference: str, platform: str,
                   report: Callable[[str], None]) -> ImageInfo:
        """Pull an image (recorded under its name, as ``pull`` does)."""
        parse_reference(reference)

        def progress(event: ProgressEvent) -> None:
            if event.status:
                report(event.status)

        result = await self.engine.images.pull(reference, platform=platform, report=progress)
        return await asyncio.to_thread(self._info, result.record)

    async def ensure_layers(self, state: State, lease: Lease) -> None:
        """Unpack a state's layers (a base image's) unless they are there; hold them."""
        self.hold(lease, state)
        await asyncio.to_thread(self.engine.snapshots.ensure_layers, self.engine.content,
                                [(layer.blob, layer.diff_id) for layer in state.layers])

    def layers_present(self, state: State) -> bool:
        """Whether every blob and unpacked layer of a state is still there (blocking)."""
        content = self.engine.content
        if not all(content.exists(layer.blob) for layer in state.layers):
            return False
        chains = chain_ids(state.diff_ids)
        return not chains or self.engine.snapshots.has_layer(chains[-1])

    def _write_image(self, state: State, lease: Lease) -> ImageRecord:
        content = self.engine.content
        config_bytes = state.config_bytes()
        config_digest = content.write_bytes(config_bytes, lease=lease)
        manifest = {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_MANIFEST,
            "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": config_digest,
                       "size": len(config_bytes)},
            "layers": [{"mediaType": _oci_media_type(layer.media_type), "digest": layer.blob,
                        "size": layer.size} for layer in state.layers],
        }
        manifest_digest = content.write_bytes(
            json.dumps(manifest, separators=(",", ":")).encode(), lease=lease)
        snapshots = self.engine.snapshots
        size = 0
        for chain in chain_ids(state.diff_ids):
            with contextlib.suppress(ServinError, OSError, KeyError):
                size += snapshots.layer_size(chain)
        return ImageRecord(
            id=config_digest, manifest_digest=manifest_digest,
            manifest_media_type=mediatypes.OCI_MANIFEST, config_digest=config_digest,
            created=str(state.config.get("created") or "1970-01-01T00:00:00Z"), size=size,
            labels=dict(state.image.get("Labels") or {}))

    async def record(self, state: State, tags: list[str], lease: Lease) -> str:
        """Record the build's result as an image named ``tags``; its ID."""
        names = [parse_reference(tag) for tag in tags]
        for name in names:
            if name.digest:
                raise InvalidArgument(f"invalid tag {name}: a tag cannot carry a digest")
        store = self.engine.image_store
        image_id = state.image_id or state.id
        try:  # recorded already (a fully cached build): its blobs are there, only names change
            await asyncio.to_thread(store.get, image_id)
            for name in names:
                await asyncio.to_thread(store.tag, image_id, name)
        except NotFound:
            if state.image_id:
                raise
            record = await asyncio.to_thread(self._write_image, state, lease)
            await asyncio.to_thread(store.add, record, names)
            image_id = record.id
        for name in names:
            self.engine.events.publish("image", "tag", image_id, name=name.familiar())
        return image_id

    # Temporary parent images: a RUN step's container is made from its parent state, which
    # is recorded (untagged) while the step runs. They are counted (steps of several builds
    # may share one) and listed in a file, so a crash cannot leave them behind for good.

    def parents_used(self, build_id: str) -> bool:
        """Whether the build recorded temporary images (forgets it)."""
        if build_id in self._recorded_for:
            self._recorded_for.discard(build_id)
            return True
        return False

    async def acquire_parent(self, state: State, lease: Lease, build_id: str) -> str:
        """The state recorded as an image for a RUN step's container; its ID."""
        if state.image_id:
            return state.image_id
        image_id = state.id
        async with self._parents_lock:
            count = self._parents.get(image_id, 0)
            if count == 0:
                store = self.engine.image_store
                try:
                    await asyncio.to_thread(store.get, image_id)
                    self._parents[image_id] = -1  # a real image already: never removed
                except NotFound:
                    self._parents[image_id] = 0
                    await asyncio.to_thread(self._save_parents)
                    # Shielded: a record half made by a cancelled thread would outlive it.
                    record = await asyncio.shield(asyncio.to_thread(
                        self._write_image, state, lease))
                    await asyncio.to_thread(store.add, record, [])
                    self._recorded_for.add(build_id)
            if self._parents[image_id] >= 0:
                self._parents[image_id] += 1
        return image_id

    async def release_parent(self, image_id: str) -> None:
        """A RUN step is done with its parent image."""
        async with self._parents_lock:
            count = self._parents.get(image_id)
            if count is None:
                return
            if count > 1:
                self._parents[image_id] = count - 1
                return
            del self._parents[image_id]
            if count >= 0:
                await asyncio.to_thread(self._drop_parent, image_id)
            await asyncio.to_thread(self._save_parents)

    def _drop_parent(self, image_id: str) -> None:
        store = self.engine.image_store
        try:
            record = store.get(image_id)
        except NotFound:
            return
        if record.refs or self.engine.container_store.using_image(image_id):
            return  # tagged meanwhile (the build's result), or used by a container
        store.delete(image_id)

    def _save_parents(self) -> None:
        path = self.root / _PARENTS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(i for i, n in self._parents.items() if n >= 0)))
        os.replace(tmp, path)

    # -- filesystem steps (COPY, ADD, WORKDIR) --------------------------------------------------

    async def filesystem_step(self, parent: State, work: Callable[[Roots], T], lease: Lease,
                              *, sources: dict[str, State] | None = None,
                              link: bool = False) -> tuple[T, Layer | None]:
        """Run ``work`` over a scratch snapshot of ``parent`` (an empty one with ``link``)
        mounted in a private mount namespace; its changes become a layer (None: none)."""
        key = f"build-{secrets.token_hex(8)}"
        chains = chain_ids(parent.diff_ids)
        snapshots = self.engine.snapshots
        base = self.exec_dir / "mnt" / key
        await asyncio.to_thread(snapshots.prepare, key, "" if link else
                                (chains[-1] if chains else ""))
        try:
            def inside() -> T:
                dest_path = base / "root"
                dest_path.mkdir(parents=True, exist_ok=True)
                snapshots.mount(key, dest_path)
                parent_path = dest_path
                if link:
                    parent_path = base / "parent"
                    self._mount_view(parent, parent_path)
                fds: dict[str, int] = {}
                dest = os.open(dest_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    for i, (name, state) in enumerate((sources or {}).items()):
                        where = base / f"src{i}"
                        self._mount_view(state, where)
                        fds[name] = os.open(where, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                    return work(Roots(dest, dest_path, parent_path, fds))
                finally:
                    os.close(dest)
                    for fd in fds.values():
                        os.close(fd)

            try:
                result = await asyncio.shield(asyncio.to_thread(
                    in_private_mount_namespace, inside))
            finally:
                with contextlib.suppress(OSError):
                    shutil.rmtree(base)
            layer = await asyncio.shield(asyncio.to_thread(
                self._commit, key, parent, lease, [], link))
        finally:
            await asyncio.shield(asyncio.to_thread(self._remove_snapshot, key))
        return result, layer

    def _remove_snapshot(self, key: str) -> None:
        with contextlib.suppress(NotFound):
            self.engine.snapshots.remove(key)

    def _mount_view(self, state: State, target: Path) -> None:
        """Mount a read-only view of a state's root filesystem on ``target`` (blocking)."""
        target.mkdir(parents=True, exist_ok=True)
        snapshots = self.engine.snapshots
        paths = [snapshots.layer_path(c) for c in reversed(chain_ids(state.diff_ids))]
        if not paths:
            return  # an empty image: the empty directory is its root
        if len(paths) == 1:
            mount(str(paths[0]), str(target), None, MS_BIND, None)
            remount_bind(str(target), MS_RDONLY, label=str(target))
            return
        mount_snapshot(SnapshotMounts("overlay", "overlay",
                                      ["lowerdir=" + ":".join(str(p) for p in paths)]),
                       target, snapshots.layout.layers)

    def _commit(self, key: str, parent: State, lease: Lease, made: list[str],
                link: bool = False) -> Layer | None:
        """The snapshot's changes as a new layer (written, unpacked, held), or None."""
        snapshots = self.engine.snapshots
        changes = drop_made_paths(snapshots.changes(key), made)
        if not changes:
            return None
        digest, size = write_layer(self.engine.content, snapshots.diff_source(key), changes,
                                   lease)
        layer = Layer(digest, digest, size, mediatypes.OCI_LAYER_TAR)
        layers = [*parent.layers, layer]
        for chain in chain_ids([item.diff_id for item in layers]):
            lease.add_chain(chain)
        snapshots.ensure_layers(self.engine.content, [(x.blob, x.diff_id) for x in layers])
        return layer

    # -- RUN steps' mounts ----------------------------------------------------------------------

    def step_dir(self, build_id: str, name: str) -> Path:
        """A fresh directory for one step's mounts and secrets under the exec root."""
        path = self.exec_dir / build_id / name
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def download_dir(self, build_id: str) -> Path:
        """Where a build's ADD downloads go (on disk, not the exec root's tmpfs)."""
        path = self.downloads / build_id
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def mount_view(self, state: State, target: Path) -> None:
        """A read-only view of a state's root filesystem on ``target`` in the host's mount
        namespace (for a RUN step's bind mounts; ``release_dir`` unmounts it)."""
        self._mount_view(state, target)

    def overlay_rw(self, lower: Path, target: Path, scratch: Path) -> None:
        """A writable overlay of ``lower`` on ``target`` whose writes land in ``scratch``
        (thrown away with it)."""
        upper, work = scratch / "upper", scratch / "work"
        upper.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        target.mkdir(parents=True, exist_ok=True)
        try:
            mount("overlay", str(target), "overlay", 0,
                  f"lowerdir={lower},upperdir={upper},workdir={work}")
        except OSError:
            # overlay refused (e.g. a lower on overlay itself): a private copy instead.
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(lower, target, symlinks=True)

    def release_dir(self, path: Path) -> None:
        """Unmount everything under ``path`` and delete it (blocking)."""
        for point in sorted(mounts_under(path), key=len, reverse=True):
            unmount_all(Path(point))
        if path.exists():
            unmount_all(path)
        shutil.rmtree(path, ignore_errors=True)

    def resolve_in(self, root: Path, path: str) -> Path:
        """``path`` resolved inside ``root`` (symlinks cannot lead out); a host path."""
        fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            inner = openat2(fd, path or ".", os.O_PATH)
        finally:
            os.close(fd)
        try:
            return Path(os.readlink(f"/proc/self/fd/{inner}"))
        finally:
            os.close(inner)

    # -- RUN steps ------------------------------------------------------------------------------

    @staticmethod
    def _create_request(spec: RunSpec) -> CreateRequest:
        limits = spec.resources
        config = ContainerConfig(
            image=spec.image_id, cmd=list(spec.argv), entrypoint=[], env=list(spec.env),
            labels={BUILD_LABEL: spec.build_id},
            healthcheck=HealthConfig(test=["NONE"]),  # the image's must not probe a step
        )
        host = HostConfig(
            network_mode=spec.network or "bridge", extra_hosts=list(spec.extra_hosts),
            shm_size=limits.shm_size,
            ulimits=[Ulimit(name=name, soft=soft, hard=hard)
                     for name, soft, hard in limits.ulimits],
            mounts=[Mount(type=m.type, source=m.source, target=m.target,
                          read_only=m.read_only, options=list(m.options))
                    for m in spec.mounts],
            resources=Resources(
                memory=limits.memory, memory_swap=limits.memory_swap,
                cpu_shares=limits.cpu_shares, cpu_period=limits.cpu_period,
                cpu_quota=limits.cpu_quota, cpuset_cpus=limits.cpuset_cpus,
                cpuset_mems=limits.cpuset_mems),
        )
        return CreateRequest(config=config, host_config=host)

    async def run(self, spec: RunSpec, parent: State, lease: Lease,
                  on_start: Callable[[str], Awaitable[None]],
                  on_output: Callable[[int, bytes], Awaitable[None]]) -> RunResult:
        """Run a RUN step's container to its end; on success its changes become a layer.
        The container is removed however this ends (cancellation included)."""
        containers = self.engine.containers
        c = (await containers.create(self._create_request(spec))).container
        try:
            session = await self.engine.attach.attach(
                c.id, AttachOptions(stdin=False, stdout=True, stderr=True))
            try:
                await containers.start(c.id)
            except BaseException:
                await session.close()
                raise
            await on_start(c.id)
            async for out in session.relay(_no_input()):
                await on_output(out.stream, out.data)
            state = await containers.wait(c.id)
            result = RunResult(c.id, state.exit_code)
            if state.exit_code == 0:
                result.layer = await asyncio.shield(asyncio.to_thread(
                    self._commit, c.id, parent, lease, [*ETC_FILES, *spec.made_paths]))
            return result
        finally:
            await asyncio.shield(self._remove_container(c.id))

    async def _remove_container(self, container_id: str) -> None:
        containers = self.engine.containers
        try:
            await containers.remove(container_id, force=True, volumes=True)
        except NotFound:
            pass
        except ServinError as exc:
            log.warning("could not remove a build step's container",
                        extra={"container": container_id, "error": str(exc)})

    async def stop(self, container_id: str) -> None:
        """Kill a RUN step's container (an interrupted build)."""
        with contextlib.suppress(ServinError):
            await self.engine.containers.kill(container_id, signal.SIGKILL)

    async def check_network(self, name: str) -> None:
        """Refuse a RUN network mode that does not exist."""
        if name in ("", "default", "none", "host", "bridge"):
            return
        networks = self.engine.networks
        try:
            await asyncio.to_thread(networks.store.resolve, name)
        except NotFound:
            raise NotFound(f"network {name} not found") from None

    # -- output ---------------------------------------------------------------------------------

    async def export(self, state: State) -> AsyncIterator[bytes]:
        """The state's root filesystem as a tar stream, in chunks."""
        from servin.engine import fsarchive
        from servin.engine.images.archive.pipe import ChunkWriter

        writer = ChunkWriter()
        base = self.exec_dir / "mnt" / f"export-{secrets.token_hex(8)}"

        def inside() -> None:
            self._mount_view(state, base)
            root = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                tar = fsarchive.TarWriter(writer)  # type: ignore[arg-type]  # write() is enough
                tar.add_children(root, "")
                tar.close()
            finally:
                os.close(root)

        def work() -> None:
            try:
                in_private_mount_namespace(inside)
                writer.finish()
            finally:
                writer.close()
                shutil.rmtree(base, ignore_errors=True)

        task = asyncio.ensure_future(asyncio.to_thread(work))
        try:
            while True:
                chunk = await asyncio.to_thread(writer.next_chunk)
                if chunk is None:
                    break
                yield chunk
            await task
        finally:
            writer.close()
            if not task.done():
                with contextlib.suppress(BaseException):
                    await task

    # -- repair ---------------------------------------------------------------------------------

    def repair(self) -> None:
        """At daemon start, before anything runs: unmount and delete what an interrupted
        build left in its directories (blocking)."""
        for point in sorted(mounts_under(self.exec_dir), key=len, reverse=True):
            unmount_all(Path(point))
        for directory in (self.exec_dir, self.contexts, self.downloads):
            for entry in os.scandir(directory):
                _remove(Path(entry.path))

    async def recover(self) -> None:
        """Once containers are recovered: remove RUN steps' containers and temporary parent
        images an interrupted build left."""
        for c in await asyncio.to_thread(self.engine.container_store.list):
            if BUILD_LABEL in c.config.labels:
                log.info("removing a build step's container left behind",
                         extra={"container": c.id})
                await self._remove_container(c.id)
        path = self.root / _PARENTS_FILE
        try:
            leftovers = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return
        for image_id in leftovers:
            await asyncio.to_thread(self._drop_parent, image_id)
        path.unlink(missing_ok=True)
        await self.collect()


def _oci_media_type(media_type: str) -> str:
    return {mediatypes.DOCKER_LAYER_GZIP: mediatypes.OCI_LAYER_GZIP,
            mediatypes.DOCKER_LAYER_TAR: mediatypes.OCI_LAYER_TAR}.get(media_type, media_type)


async def _no_input() -> AsyncIterator[StreamInput]:
    """A RUN step's stdin: nothing (the container has none)."""
    nothing: tuple[StreamInput, ...] = ()
    for item in nothing:
        yield item


def drop_made_paths(changes: list[tuple[str, str]], made: list[str]) -> list[tuple[str, str]]:
    """The changes without the paths the engine made for a step (its mount points, the
    /etc files) and the directories that changed only to hold them."""
    if not made:
        return changes
    made_set = {p.rstrip("/") for p in made}
    ancestors: set[str] = set()
    for path in made_set:
        parent = os.path.dirname(path)
        while parent not in ("/", ""):
            ancestors.add(parent)
            parent = os.path.dirname(parent)
    kept = [(kind, path) for kind, path in changes if not (kind == "A" and path in made_set)]
    candidates = {path for kind, path in kept if kind != "D" and path in ancestors}
    holders: set[str] = set()  # directories with a kept entry below them

    def mark(path: str) -> None:
        parent = os.path.dirname(path)
        while parent not in ("/", "") and parent not in holders:
            holders.add(parent)
            parent = os.path.dirname(parent)

    for _, path in kept:
        if path not in candidates:
            mark(path)
    dropped: set[str] = set()
    for path in sorted(candidates, key=lambda p: p.count("/"), reverse=True):
        if path in holders:
            mark(path)
        else:
            dropped.add(path)
    return [(kind, path) for kind, path in kept if path not in dropped]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
