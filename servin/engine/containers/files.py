"""Files in and out of containers: ``cp`` (both ways), ``export`` and ``diff``.

Every path is resolved inside the container's root with openat2(RESOLVE_IN_ROOT): a symlink
in the container pointing at ``/`` or ``/etc`` resolves to the container's own root or /etc,
and a container process swapping a path component for a symlink mid-copy cannot lead the
daemon to a host path (see servin.engine.fsarchive).

The root is the container's own view, mounts included (copying into ``/data`` where a volume
is mounted lands in the volume, as with docker):
- running: ``/proc/<pid>/root`` (lookups from it cross the container's own mounts);
- stopped: a worker thread enters a private mount namespace of its own, mounts the snapshot
  there and binds the container's volumes and bind mounts on it; everything vanishes with the
  thread, so nothing can leak onto the host's mount table.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

from servin.engine import fsarchive, limits
from servin.engine.containers.collaborators import ContainerVolumes
from servin.engine.containers.model import PAUSED, RUNNING, Container
from servin.engine.containers.monitors import Monitors
from servin.engine.containers.service import ContainerService
from servin.engine.crashpoints import crashpoint
from servin.engine.images.commit import CommitInputs, build_committed_image, write_layer
from servin.engine.images.store import ImageRecord, ImageStore
from servin.engine.linux.mount import (
    MS_BIND,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    mount,
    remount_bind,
    set_propagation,
)
from servin.engine.linux.namespaces import CLONE_NEWNS, unshare
from servin.engine.linux.safepath import open_in_root, openat2
from servin.engine.store import compression
from servin.engine.store.snapshots import Snapshotter
from servin.engine.store.snapshots.mounts import mount_snapshot
from servin.engine.streamio import reader, stream_from_thread
from servin.errors import Conflict, InvalidArgument, NotFound, PermissionDenied, ServinError

T = TypeVar("T")
CLONE_FS = 0x00000200
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_ETC_FILES = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")


@dataclass(frozen=True)
class PathStat:
    """What ``cp`` needs to know about a path in a container."""

    name: str
    size: int
    mode: int  # st_mode (type and permission bits)
    mtime_ns: int
    link_target: str

    @property
    def is_dir(self) -> bool:
        """Whether the path is a directory."""
        return stat.S_ISDIR(self.mode)


def _error(exc: OSError, path: str, c: Container) -> ServinError:
    if exc.errno in (errno.ENOENT,):
        return NotFound(f"Could not find the file {path} in container {c.name}")
    if exc.errno == errno.ENOTDIR:
        return InvalidArgument(f"{path} in container {c.name}: not a directory")
    if exc.errno == errno.EROFS:
        return PermissionDenied(f"{path} in container {c.name}: read-only file system")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return PermissionDenied(f"{path} in container {c.name}: {os.strerror(exc.errno)}")
    if exc.errno == errno.ELOOP:
        return InvalidArgument(f"{path} in container {c.name}: too many levels of symbolic links")
    return InvalidArgument(f"{path} in container {c.name}: {exc.strerror or exc}")


def in_private_mount_namespace(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a new thread that has a private mount namespace of its own (blocking).

    Mounts made by ``fn`` are seen by nobody else and are gone when the thread ends.
    """
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            unshare(CLONE_NEWNS | CLONE_FS)
            set_propagation("/", MS_PRIVATE | MS_REC)
            result["value"] = fn()
        except BaseException as exc:  # handed to the caller
            result["error"] = exc

    thread = threading.Thread(target=run, name="servin-private-mnt", daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    value: T = result["value"]
    return value


class ContainerFiles:
    """cp, export and diff over a container's filesystem (blocking; run in threads)."""

    def __init__(self, monitors: Monitors, snapshots: Snapshotter,
                 volumes: ContainerVolumes) -> None:
        self.monitors = monitors
        self.snapshots = snapshots
        self.volumes = volumes

    # -- the container's root ----------------------------------------------------------

    def with_root(self, c: Container, fn: Callable[[int], T], *, mounts: bool = True) -> T:
        """Call ``fn(root_fd)`` with an fd of the container's root as the container sees it
        (the caller holds the container's lock when it is not running)."""
        if c.state.status in (RUNNING, PAUSED) and c.state.pid:
            try:
                root = os.open(f"/proc/{c.state.pid}/root", os.O_PATH | os.O_DIRECTORY
                               | os.O_CLOEXEC)
            except OSError as exc:
                raise Conflict(f"container {c.name} stopped while being accessed") from exc
            try:
                return fn(root)
            finally:
                os.close(root)
        return in_private_mount_namespace(lambda: self._stopped_root(c, fn, mounts))

    def _stopped_root(self, c: Container, fn: Callable[[int], T], mounts: bool) -> T:
        target = self.monitors.paths(c.id).rootfs
        target.mkdir(parents=True, exist_ok=True)
        mount_snapshot(self.snapshots.mounts(c.id), target, self.snapshots.layout.layers)
        root = os.open(target, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if mounts:
                self._bind_mounts(c, root)
            return fn(root)
        finally:
            os.close(root)

    def _bind_mounts(self, c: Container, root: int) -> None:
        """Bind the container's volumes and bind mounts on its root (private namespace)."""
        for m in c.mounts:
            volume = self.volumes.find(m.name) if m.type == "volume" and m.name else None
            if volume is not None:
                source = volume.mountpoint
            elif m.type == "bind":
                source = m.source
            else:
                continue  # a tmpfs is empty while the container is stopped
            try:
                is_dir = os.path.isdir(source)
                with open_in_root(root, m.target, create="dir" if is_dir else "file") as where:
                    mount(source, where.proc_path, None, MS_BIND | MS_REC, label=m.target)
                    if m.read_only:
                        remount_bind(where.proc_path, MS_RDONLY, label=m.target)
            except OSError:
                continue  # the source is gone: cp sees the directory underneath

    # -- stat and copy out ----------------------------------------------------------------

    def stat(self, c: Container, path: str, follow: bool = False) -> PathStat:
        """The stat of ``path`` in the container (a final symlink is followed if asked)."""
        return self.with_root(c, lambda root: self._stat(c, root, path, follow))

    def _open(self, c: Container, root: int, path: str, follow: bool) -> int:
        if not path.startswith("/"):
            path = "/" + path
        try:
            return openat2(root, path, os.O_PATH | (0 if follow else os.O_NOFOLLOW))
        except OSError as exc:
            raise _error(exc, path, c) from None

    def _stat(self, c: Container, root: int, path: str, follow: bool) -> PathStat:
        fd = self._open(c, root, path, follow)
        try:
            st = os.fstat(fd)
            link = os.readlink("", dir_fd=fd) if stat.S_ISLNK(st.st_mode) else ""
        finally:
            os.close(fd)
        return PathStat(_basename(path), st.st_size, st.st_mode, st.st_mtime_ns, link)

    def copy_from(self, c: Container, path: str, out: BinaryIO, follow: bool = False) -> None:
        """Write ``path`` (file, directory or link) as a tar stream whose top entry is named
        after the path's last component."""

        def run(root: int) -> None:
            fd = self._open(c, root, path, follow)
            try:
                writer = fsarchive.TarWriter(out)
                try:
                    writer.add_fd(fd, _basename(path))
                except OSError as exc:
                    raise _error(exc, path, c) from None
                writer.close()
            finally:
                os.close(fd)

        self.with_root(c, run)

    # -- copy in ---------------------------------------------------------------------------

    def copy_to(self, c: Container, path: str, source: BinaryIO, *,
                preserve_owner: bool) -> None:
        """Extract a tar stream (uncompressed, gzip, bzip2, xz or zstd, as docker's
        DecompressStream reads one) into the directory ``path`` of the container."""

        def run(root: int) -> None:
            fd = self._open(c, root, path, True)
            try:
                if not stat.S_ISDIR(os.fstat(fd).st_mode):
                    raise InvalidArgument(f"extraction point is not a directory: {path}")
                try:
                    fsarchive.Extractor(fd, preserve_owner=preserve_owner).extract(source)
                except OSError as exc:
                    raise _error(exc, path, c) from None
            finally:
                os.close(fd)

        self.with_root(c, run)

    # -- export and diff -------------------------------------------------------------------

    def export(self, c: Container, out: BinaryIO) -> None:
        """The container's root filesystem (without its volumes) as a tar stream."""
        mounted = self.monitors.paths(c.id).rootfs
        if c.state.rootfs_mounted and c.state.status in (RUNNING, PAUSED):
            # The daemon's own view of the rootfs has none of the container's mounts.
            root = os.open(mounted, _DIR | os.O_NOFOLLOW)
            try:
                _export_tree(root, out)
            finally:
                os.close(root)
            return

        def run(root_path: int) -> None:
            root = os.open(".", _DIR, dir_fd=root_path)
            try:
                _export_tree(root, out)
            finally:
                os.close(root)

        self.with_root(c, run, mounts=False)

    def changes(self, c: Container) -> list[tuple[str, str]]:
        """docker diff: (kind, path) pairs, without the mount points the engine added."""
        found = self.snapshots.changes(c.id)
        return [(kind, path) for kind, path in found if not _engine_made(c, kind, path)]


def _engine_made(c: Container, kind: str, path: str) -> bool:
    """An added path that only exists as a mount point the runtime created."""
    if kind != "A":
        return False
    return path in _ETC_FILES or any(path == m.target for m in c.mounts)


def _export_tree(root: int, out: BinaryIO) -> None:
    writer = fsarchive.TarWriter(out)
    writer.add_children(root, "")
    writer.close()


def _basename(path: str) -> str:
    clean = path.rstrip("/")
    if clean.endswith("/."):
        clean = clean[:-2]
    name = clean.rsplit("/", 1)[-1]
    return name or "."


class FileOperations:
    """Files in and out of containers for every door (async): cp, export, diff, commit."""

    def __init__(self, containers: ContainerService, images: ImageStore,
                 volumes: ContainerVolumes) -> None:
        self.containers = containers
        self.images = images
        self.files = ContainerFiles(containers.monitors, containers.snapshots, volumes)

    @contextlib.asynccontextmanager
    async def _access(self, ref: str) -> AsyncIterator[Container]:
        """The container, locked against start/remove while it is not running (its
        snapshot is mounted privately meanwhile)."""
        c = await self.containers.get(ref)
        if c.state.status in (RUNNING, PAUSED):
            yield c
            return
        async with self.containers.locks.lock(c.id):
            yield await asyncio.to_thread(self.containers.store.get, c.id)

    async def stat(self, ref: str, path: str, follow: bool = False) -> PathStat:
        """The stat of a path in the container."""
        async with self._access(ref) as c:
            return await asyncio.to_thread(self.files.stat, c, path, follow)

    async def copy_from(self, ref: str, path: str, *,
                        follow: bool = False) -> AsyncGenerator[PathStat | bytes, None]:
        """The path's stat, then a tar stream of it (chunks of bytes) whose top entry is
        named after the path's last component."""
        async with self._access(ref) as c:
            yield await asyncio.to_thread(self.files.stat, c, path, follow)
            async for chunk in stream_from_thread(
                    lambda out: self.files.copy_from(c, path, out, follow)):
                yield chunk

    async def copy_to(self, ref: str, path: str, chunks: AsyncIterator[bytes], *,
                      preserve_owner: bool = False) -> None:
        """Extract a tar stream (uncompressed, gzip, bzip2, xz or zstd, as docker's
        DecompressStream reads one) into the directory ``path`` of the container."""
        async with self._access(ref) as c:
            source = reader(chunks, asyncio.get_running_loop())

            def copy() -> None:  # sniffing the compression reads: in the worker thread
                self.files.copy_to(c, path, compression.archive_reader(source),
                                   preserve_owner=preserve_owner)

            await asyncio.to_thread(copy)

    async def export(self, ref: str) -> AsyncIterator[bytes]:
        """The container's root filesystem (without its volumes) as a tar stream."""
        async with self._access(ref) as c:
            async for chunk in stream_from_thread(lambda out: self.files.export(c, out)):
                yield chunk

    async def changes(self, ref: str) -> list[tuple[str, str]]:
        """docker diff of the container: (kind, path) pairs."""
        c = await self.containers.get(ref)
        return await asyncio.to_thread(self.files.changes, c)

    async def commit(self, text: str, reference: str, *, comment: str = "", author: str = "",
                     changes: list[str] | None = None, pause: bool = True) -> ImageRecord:
        """A new image from the container's changes, tagged ``reference`` if given."""
        from servin.engine.images.changes import apply_changes
        from servin.engine.runtime.bundle import process_env
        from servin.reference import parse_reference

        name = parse_reference(reference) if reference else None
        if name is not None and name.digest:
            raise InvalidArgument("cannot commit with a digest reference: give a tag")
        apply_changes({}, list(changes or []))  # refuse bad instructions before any work
        limits.check_text(comment, "the commit message")
        limits.check_text(author, "the author")
        c = await self.containers.get(text)
        store = self.images
        record = await asyncio.to_thread(store.get, c.image_id)
        base_config = await asyncio.to_thread(store.config, record)
        base_manifest = await asyncio.to_thread(store.manifest, record)
        image = base_config.get("config") or {}
        env = [e for e in process_env(c.config, image, "") if not e.startswith("HOSTNAME=")]
        container_config: dict[str, Any] = {
            "Env": env,
            "Cmd": list(c.config.cmd) or None,
            "WorkingDir": c.config.working_dir or None,
            "User": c.config.user or None,
            "Labels": {**(image.get("Labels") or {}), **dict(c.config.labels)} or None,
        }
        if c.config.entrypoint is not None:
            container_config["Entrypoint"] = list(c.config.entrypoint) or None
        paused_here = False
        if pause and c.state.status == RUNNING:
            await self.containers.pause(c.id, by_commit=True)
            paused_here = True
            crashpoint("commit.after-freeze")
        try:
            found = await asyncio.to_thread(self.files.changes, c)
            source = await asyncio.to_thread(self.containers.snapshots.diff_source, c.id)
            digest, size = await asyncio.to_thread(write_layer, store.content, source, found)
            crashpoint("commit.after-layer")
        finally:
            if paused_here:
                with contextlib.suppress(ServinError):
                    await self.containers.unpause(c.id, by_commit=True)
        inputs = CommitInputs(
            base_config=base_config, base_manifest=base_manifest, base_size=record.size,
            container_config=container_config, changes=list(changes or []), comment=comment,
            author=author, created_by=" ".join(process_args_text(c, image)),
        )
        new = await asyncio.to_thread(build_committed_image, store.content, digest, size, inputs)
        crashpoint("commit.before-record")
        await asyncio.to_thread(store.add, new, [name] if name else [])
        self.containers.events.publish("container", "commit", c.id, name=c.name,
                                    imageID=new.id, comment=comment)
        return await asyncio.to_thread(store.get, new.id)


def process_args_text(c: Container, image: dict[str, Any]) -> list[str]:
    """The container's command for the image history ("created_by")."""
    from servin.engine.runtime.bundle import process_args

    try:
        return process_args(c.config, image)
    except ServinError:
        return []
