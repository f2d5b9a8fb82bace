"""The snapshotter: image layers unpacked once, stacked into container root filesystems.

Layers are keyed by their OCI chain ID and shared by every image and container that has
them. A layer is unpacked into ``tmp/``, verified (blob digest and diff ID), synced, and only
then renamed to ``layers/<n>`` and published in the chain index, so a crash never leaves
something that looks complete; ``repair()`` at start sweeps what a crash left.

Two drivers: ``overlay`` mounts the layers as overlayfs lowers under a per-container upper
dir; ``copy`` (for where overlayfs is unavailable) merges the layers into one directory per
container and bind-mounts it. ``auto`` probes overlay once and picks. Each container records
the driver that made it, so its snapshot keeps working if the daemon's choice changes.

Everything here blocks: the engine calls it through ``asyncio.to_thread``. Callers own the
higher-level ordering (the engine does not remove a layer while it ensures an image on top
of it); the locks here keep each chain's unpack and each key's snapshot consistent.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from servin.engine.linux.syscalls import check, libc
from servin.engine.store.content import ContentStore, check_digest
from servin.engine.store.snapshots import diff
from servin.engine.store.snapshots.layers import chain_id, unpack_blob, unpack_stream
from servin.engine.store.snapshots.layout import (
    Layout,
    NamedLocks,
    check_key,
    file_lock,
    fsync_dir,
    read_json,
    write_json,
)
from servin.engine.store.snapshots.merge import apply_layer
from servin.engine.store.snapshots.mounts import (
    SnapshotMounts,
    bind_mounts,
    is_mount_point,
    mount_snapshot,
    mount_table,
    mounts_under,
    overlay_mounts,
    overlay_usable,
    unmount_all,
)
from servin.engine.store.trash import Trash, remove_tree
from servin.errors import Conflict, Internal, InvalidArgument, NotFound

DRIVERS = ("overlay", "copy", "auto")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_DEPTH = 1000  # more layers than any kernel can stack: a loop in the parent links


class Snapshotter:
    """Layers and container snapshots under ``root`` (the engine passes <root>/snapshots)."""

    def __init__(self, root: Path, driver: str = "auto", *, durable: bool = True,
                 max_layer_size: int = 0, trash: Trash | None = None) -> None:
        """``durable``: syncfs a layer before publishing it (off only in throwaway setups).
        ``max_layer_size``: the most bytes of file content one layer may unpack to (0: any).
        ``trash``: the background deleter of removed snapshots (``discard``).
        """
        self.max_layer_size = max_layer_size
        if driver not in DRIVERS:
            raise InvalidArgument(f"unknown storage driver {driver!r} (use overlay, copy or auto)")
        self.layout = Layout(Path(os.path.abspath(root)))
        self.layout.create()
        self.durable = durable
        self.trash = trash if trash is not None else Trash()
        self._chain_locks = NamedLocks()
        self._key_locks = NamedLocks()
        self._number_lock = threading.Lock()
        self._next_number: int | None = None
        if driver == "auto":
            driver = "overlay" if overlay_usable(self.layout.scratch("probe")) else "copy"
        if driver == "overlay" and any(c in str(self.layout.root) for c in ",:\\ \t\n"):
            raise InvalidArgument(f"the overlay driver cannot use {self.layout.root}: the path"
                                  " has a character overlay mount options cannot carry")
        self.driver = driver

    # -- layers ---------------------------------------------------------------------------

    def ensure_layers(self, content: ContentStore, layers: list[tuple[str, str]]) -> str:
        """Unpack each (blob digest, diff ID) of an image, bottom first, unless already there.

        Returns the top layer's chain ID ("" for an image without layers). Concurrent
        callers for the same chain wait for one unpack. Raises BlobCorrupted when a blob's
        bytes do not match its digest, InvalidArgument for a diff ID mismatch or a hostile
        or malformed archive, NotFound when a blob is missing.
        """
        parent = ""
        for blob, diff_id in layers:
            check_digest(blob)
            check_digest(diff_id)
            chain = chain_id(parent, diff_id)
            if self._lookup(chain) is None:
                with self._lock_chain(chain):
                    if self._lookup(chain) is None:
                        self._unpack(content, blob, diff_id, chain, parent)
            parent = chain
        return parent

    def unpack_stream(self, raw: BinaryIO, blob: str, diff_id: str, parent: str,
                      verify: Callable[[], None]) -> str:
        """Unpack one layer straight from its blob's bytes (a download); return its chain ID.

        ``parent`` is the chain ID of the layer below (it need not be unpacked yet: layers
        are independent directories, so a pull unpacks them side by side). ``verify`` runs
        once the archive is read and before the layer is published; it must raise when the
        blob's bytes turned out wrong (its digest), and then nothing is kept. A layer that
        is already there is not unpacked again (``raw`` is then read to its end).
        """
        check_digest(blob)
        check_digest(diff_id)
        chain = chain_id(parent, diff_id)
        with self._lock_chain(chain):
            if self._lookup(chain) is not None:
                while raw.read(1 << 20):
                    pass
                verify()
                return chain
            self._unpack(None, blob, diff_id, chain, parent,
                         fill=lambda fs: unpack_stream(raw, diff_id, fs,
                                                       limit=self.max_layer_size),
                         verify=verify)
        return chain

    def _unpack(self, content: ContentStore | None, blob: str, diff_id: str, chain: str,
                parent: str, *, fill: Callable[[Path], int] | None = None,
                verify: Callable[[], None] | None = None) -> None:
        tmp = self.layout.scratch("unpack")
        os.mkdir(tmp, 0o700)
        number: int | None = None
        try:
            fs = tmp / "fs"
            os.mkdir(fs, 0o755)
            if fill is not None:
                size = fill(fs)
            else:
                assert content is not None
                size = unpack_blob(content, blob, diff_id, fs, limit=self.max_layer_size)
            if verify is not None:
                verify()
            write_json(tmp / "info.json", {"chain": chain, "parent": parent, "diff_id": diff_id,
                                           "blob": blob, "size": size})
            if self.durable:
                _syncfs(tmp)
            number = self._reserve_number()
            # rename(2) onto the empty reserved directory replaces it atomically.
            os.rename(tmp, self.layout.layer_dir(number))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if number is not None:
                with contextlib.suppress(OSError):
                    os.rmdir(self.layout.layer_dir(number))
            raise
        fsync_dir(self.layout.layers)
        self.layout.write_index(chain, number)

    def _reserve_number(self) -> int:
        with self._number_lock:
            if self._next_number is None:
                self._next_number = 1 + max(
                    (int(e.name) for e in os.scandir(self.layout.layers) if e.name.isdigit()),
                    default=0)
            while True:
                number = self._next_number
                self._next_number += 1
                try:
                    os.mkdir(self.layout.layer_dir(number), 0o700)
                    return number
                except FileExistsError:
                    continue

    @contextlib.contextmanager
    def _lock_chain(self, chain: str) -> Iterator[None]:
        with self._chain_locks.get(chain), file_lock(self.layout.lock_file(chain)):
            yield

    def _lookup(self, chain: str) -> int | None:
        number = self.layout.read_index(chain)
        if number is None or not self.layout.layer_fs(number).is_dir():
            return None
        return number

    def _require(self, chain: str) -> int:
        number = self._lookup(chain)
        if number is None:
            raise NotFound(f"layer {chain} is not unpacked")
        return number

    def _layer_info(self, number: int) -> dict[str, Any]:
        return read_json(self.layout.layer_dir(number) / "info.json")

    def _stack(self, chain: str) -> list[tuple[str, int]]:
        """(chain, number) of a layer and every layer below it, top first."""
        stack: list[tuple[str, int]] = []
        current = chain
        while current:
            number = self._require(current)
            stack.append((current, number))
            if len(stack) > _MAX_DEPTH:
                raise Internal(f"layer {chain} has a loop in its parents")
            current = self._layer_info(number).get("parent") or ""
        return stack

    def has_layer(self, chain: str) -> bool:
        """Whether the layer is unpacked and committed."""
        return self._lookup(chain) is not None

    def layers(self) -> list[str]:
        """The chain IDs of every committed layer."""
        return sorted(c for c, n in self.layout.indexed_chains()
                      if n is not None and self.layout.layer_fs(n).is_dir())

    def layer_size(self, chain: str) -> int:
        """Bytes of file content in one layer (not counting the layers below it)."""
        return int(self._layer_info(self._require(chain))["size"])

    def layer_path(self, chain: str) -> Path:
        """The unpacked directory of one layer (overlay lower form: whiteouts included)."""
        return self.layout.layer_fs(self._require(chain))

    def remove_layer(self, chain: str) -> None:
        """Remove a layer no image needs any more.

        Raises NotFound when it is not there, Conflict while a layer above it or a container
        snapshot still stands on it (remove those first, or use ``gc``).
        """
        with self._lock_chain(chain):
            number = self._require(chain)
            for other, n in self.layout.indexed_chains():
                if n is not None and other != chain and n != number:
                    with contextlib.suppress(OSError, ValueError):
                        if self._layer_info(n).get("parent") == chain:
                            raise Conflict(f"layer {chain} is in use by layer {other}")
            for key in self.keys():
                if chain in self._info(key).get("chains", []):
                    raise Conflict(f"layer {chain} is in use by container snapshot {key}")
            self._drop_layer(chain, number)

    def _drop_layer(self, chain: str, number: int) -> None:
        """Unpublish, then delete (the caller holds the chain's lock)."""
        self.layout.chain_link(chain).unlink(missing_ok=True)
        fsync_dir(self.layout.chains)
        trash = self.layout.scratch("del")
        os.rename(self.layout.layer_dir(number), trash)
        shutil.rmtree(trash, ignore_errors=True)
        self.layout.lock_file(chain).unlink(missing_ok=True)

    # -- container snapshots --------------------------------------------------------------

    def prepare(self, key: str, parent_chain: str | None) -> SnapshotMounts:
        """Create the writable snapshot ``key`` (a container ID) on top of ``parent_chain``.

        ``parent_chain`` None or "" gives an empty rootfs. Returns what to mount; the copy
        driver copies every layer here, which takes a while for a big image.
        Raises Conflict when ``key`` exists, NotFound when a layer is missing.
        """
        check_key(key)
        stack = self._stack(parent_chain) if parent_chain else []
        with self._key_locks.get(key):
            final = self.layout.container_dir(key)
            if final.exists():
                raise Conflict(f"snapshot {key} already exists")
            tmp = self.layout.containers / f".new-{key}-{uuid.uuid4().hex[:8]}"
            os.mkdir(tmp, 0o700)
            try:
                if self.driver == "overlay":
                    os.mkdir(tmp / "upper", 0o755)
                    os.mkdir(tmp / "work", 0o700)
                else:
                    os.mkdir(tmp / "fs", 0o755)
                    self._copy_layers([n for _, n in stack], tmp / "fs")
                # Durable before the caller records the container: a record that survives a
                # power cut must find its snapshot (the metadata commit comes after this).
                write_json(tmp / "info.json", {"driver": self.driver, "parent": parent_chain or "",
                                               "chains": [c for c, _ in stack], "mounts": []})
                os.rename(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            fsync_dir(self.layout.containers)
        return self.mounts(key)

    def _copy_layers(self, numbers_top_first: list[int], dest: Path) -> None:
        dst = os.open(dest, _DIR_FLAGS)
        try:
            for number in reversed(numbers_top_first):
                src = os.open(self.layout.layer_fs(number), _DIR_FLAGS)
                try:
                    apply_layer(src, dst)
                finally:
                    os.close(src)
        finally:
            os.close(dst)

    def _info(self, key: str) -> dict[str, Any]:
        try:
            return read_json(self.layout.container_dir(key) / "info.json")
        except FileNotFoundError:
            raise NotFound(f"no snapshot for {key}") from None

    def keys(self) -> list[str]:
        """Every container snapshot key."""
        return sorted(e.name for e in os.scandir(self.layout.containers)
                      if not e.name.startswith("."))

    def mounts(self, key: str) -> SnapshotMounts:
        """What to mount for snapshot ``key`` (see :class:`SnapshotMounts`)."""
        info = self._info(key)
        base = self.layout.container_dir(key)
        if info["driver"] == "copy":
            return bind_mounts(base / "fs")
        lowers = [self.layout.layer_fs(self._require(c)) for c in info["chains"]]
        return overlay_mounts(lowers or [self.layout.empty], base / "upper", base / "work")

    def mount(self, key: str, target: Path, *, volatile: bool = False) -> None:
        """Mount snapshot ``key`` on ``target`` (created if missing); a no-op if it is already.

        ``volatile``: for a snapshot that is thrown away after its one use (its writes need
        not survive a crash of the machine): an overlay whose unmount syncs nothing.
        """
        target = Path(target)
        with self._key_locks.get(key):
            info = self._info(key)
            m = self.mounts(key)
            target.mkdir(parents=True, exist_ok=True)
            # The mount table shows resolved paths: compare and record those.
            target = Path(os.path.realpath(target))
            # statx answers "nothing mounted there" (the usual case) without the table.
            if is_mount_point(target) and self._mounted_at(key, info, target):
                return
            if str(target) not in info["mounts"]:
                # Recorded first: if we die right after mounting, remove() still finds it.
                # Not fsynced: a power cut takes the mount too, so no record is needed then.
                info["mounts"].append(str(target))
                write_json(self.layout.container_dir(key) / "info.json", info, durable=False)
            mount_snapshot(m, target, self.layout.layers, volatile=volatile)

    def _mounted_at(self, key: str, info: dict[str, Any], target: Path) -> bool:
        entries = [e for e in mount_table() if e.mount_point == str(target)]
        if not entries:
            return False
        base = self.layout.container_dir(key)
        if info["driver"] == "copy":
            try:
                a, b = os.stat(target), os.stat(base / "fs")
            except OSError:
                return False
            return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
        top = entries[-1]
        return top.fstype == "overlay" and f"upperdir={base / 'upper'}" in top.super_options

    def unmount(self, target: Path) -> None:
        """Unmount whatever is mounted on ``target``; nothing there is fine."""
        unmount_all(Path(os.path.realpath(target)))

    def remove(self, key: str) -> None:
        """Unmount snapshot ``key`` wherever it is mounted, then delete its upper/work (or fs).

        Raises NotFound when there is no such snapshot.
        """
        self._purge_snapshot(*self._take(key))

    def discard(self, key: str) -> None:
        """``remove`` for the critical path: the snapshot is unmounted and gone for every
        lookup at once; its files are deleted by the background ``trash`` (a crash before
        that leaves them in ``tmp/``, which ``repair`` empties). Raises NotFound."""
        trash, base = self._take(key)
        self.trash.submit(lambda: self._purge_snapshot(trash, base))

    def _take(self, key: str) -> tuple[Path, Path]:
        """Unmount ``key`` where this snapshotter mounted it and move its directory into
        ``tmp/``; (where it went, where it was)."""
        with self._key_locks.get(key):
            info = self._info(key)
            base = self.layout.container_dir(key)
            for recorded in info.get("mounts", []):
                target = Path(recorded)
                if is_mount_point(target) and self._mounted_at(key, info, target):
                    unmount_all(target)
            trash = self.layout.scratch("del")
            # No fsync: a rename a power cut loses leaves a snapshot without a container,
            # which the start-up repair removes (the engine's repair).
            os.rename(base, trash)
        return trash, base

    def _purge_snapshot(self, trash: Path, base: Path) -> None:
        """Delete a snapshot moved aside by ``_take``, after unmounting what still uses it:
        an overlay of its upper dir mounted anywhere, anything mounted inside it (so the
        deletion cannot reach through a mount point into another filesystem)."""
        targets: list[str] = []
        uppers = {f"upperdir={base / 'upper'}", f"upperdir={trash / 'upper'}"}
        inside = (f"{trash}/", f"{base}/")
        for e in mount_table():
            if (e.fstype == "overlay" and not uppers.isdisjoint(e.super_options)) \
                    or e.mount_point.startswith(inside):
                targets.append(e.mount_point)
        for target in sorted(dict.fromkeys(targets), key=lambda p: p.count("/"), reverse=True):
            unmount_all(Path(target))
        remove_tree(trash)

    def usage(self, key: str) -> int:
        """Bytes the container wrote: its upper dir (overlay), or what differs (copy)."""
        info = self._info(key)
        base = self.layout.container_dir(key)
        if info["driver"] == "copy":
            return diff.copy_changes(base / "fs", self._lower_tree(info))[1]
        return diff.tree_bytes(base / "upper")

    def changes(self, key: str) -> list[tuple[str, str]]:
        """What the container changed, as docker's ``(kind, path)`` pairs sorted by path:
        ``A`` added, ``C`` changed (a directory that exists in the image and holds a change is
        ``C`` too), ``D`` deleted (only the topmost deleted path)."""
        info = self._info(key)
        base = self.layout.container_dir(key)
        lower = self._lower_tree(info)
        if info["driver"] == "copy":
            return diff.copy_changes(base / "fs", lower)[0]
        return diff.overlay_changes(base / "upper", lower)

    def diff_source(self, key: str) -> Path:
        """The directory holding what ``changes`` lists as added or changed: the overlay
        upper dir, or the copy driver's whole rootfs."""
        info = self._info(key)
        base = self.layout.container_dir(key)
        return base / ("fs" if info["driver"] == "copy" else "upper")

    def _lower_tree(self, info: dict[str, Any]) -> diff.Node:
        return diff.lower_tree([self.layout.layer_fs(self._require(c))
                                for c in reversed(info.get("chains", []))])

    # -- housekeeping ---------------------------------------------------------------------

    def gc(self, keep_chains: set[str], keep_keys: set[str]) -> int:
        """Remove every snapshot not in ``keep_keys`` and every layer that neither a kept
        chain nor a remaining snapshot stands on; return how many things were removed."""
        removed = 0
        for key in self.keys():
            if key not in keep_keys:
                with contextlib.suppress(NotFound):
                    self.remove(key)
                    removed += 1
        gone = self.unpublish_unused(keep_chains)
        for _, _, trash in gone:
            self.purge(trash)
        return removed + len(gone)

    def unpublish_unused(self, keep_chains: set[str]) -> list[tuple[str, int, Path]]:
        """Unpublish (see :meth:`unpublish_layer`) every layer that no chain in
        ``keep_chains`` and no container snapshot stands on, directly or through a layer
        above; return (chain, bytes, moved directory) of each, for :meth:`purge`."""
        keep = set(keep_chains) | self.snapshot_chains()
        parents = self.layer_parents()
        for chain in list(keep):
            while (chain := parents.get(chain, "")) and chain not in keep:
                keep.add(chain)
        gone: list[tuple[str, int, Path]] = []
        for chain in parents:
            if chain not in keep and (moved := self.unpublish_layer(chain)) is not None:
                gone.append((chain, *moved))
        return gone

    def layer_parents(self) -> dict[str, str]:
        """The parent chain ID ("" at the bottom) of every committed layer, by chain ID."""
        out: dict[str, str] = {}
        for chain, number in self.layout.indexed_chains():
            if number is None:
                continue
            with contextlib.suppress(OSError, ValueError):
                out[chain] = self._layer_info(number).get("parent") or ""
        return out

    def snapshot_chains(self) -> set[str]:
        """Every layer chain some container snapshot stands on."""
        used: set[str] = set()
        for key in self.keys():
            with contextlib.suppress(NotFound, OSError, ValueError):
                used.update(self._info(key).get("chains", []))
        return used

    def unpublish_layer(self, chain: str) -> tuple[int, Path] | None:
        """Take a layer out of the index and move its directory aside, quickly.

        Returns (bytes of file content, the moved directory) for :meth:`purge`, or None when
        the layer is not there. The caller (the garbage collector) has checked that nothing
        stands on it; deleting the files is left to ``purge`` so it can happen outside the
        collector's lock.
        """
        with self._lock_chain(chain):
            number = self.layout.read_index(chain)
            if number is None:
                return None
            size = 0
            with contextlib.suppress(OSError, ValueError, KeyError):
                size = int(self._layer_info(number)["size"])
            self.layout.chain_link(chain).unlink(missing_ok=True)
            fsync_dir(self.layout.chains)
            trash = self.layout.scratch("del")
            with contextlib.suppress(FileNotFoundError):
                os.rename(self.layout.layer_dir(number), trash)
            self.layout.lock_file(chain).unlink(missing_ok=True)
            return size, trash

    @staticmethod
    def purge(trash: Path) -> None:
        """Delete what :meth:`unpublish_layer` moved aside (repair removes it after a crash)."""
        remove_tree(trash)

    def repair(self) -> int:
        """Clean up after a crash; call once at daemon start, before anything else.

        Unmounts stale mounts under the snapshot root, deletes half-unpacked layers and
        half-made or half-deleted snapshots, and drops index entries whose layer is gone.
        Returns how many leftovers were removed.
        """
        removed = 0
        root = self.layout
        for mount_point in mounts_under(root.root):
            unmount_all(Path(mount_point))
            removed += 1
        for entry in os.scandir(root.tmp):
            remove_tree(Path(entry.path))
            removed += 1
        valid: set[int] = set()
        for chain, number in list(root.indexed_chains()):
            ok = False
            if number is not None and root.layer_fs(number).is_dir():
                with contextlib.suppress(OSError, ValueError):
                    ok = self._layer_info(number).get("chain") == chain
            if ok and number is not None:
                valid.add(number)
            else:
                root.chain_link(chain).unlink(missing_ok=True)
                removed += 1
        for entry in os.scandir(root.layers):
            if not entry.name.isdigit() or int(entry.name) not in valid:
                remove_tree(Path(entry.path))
                removed += 1
        for entry in os.scandir(root.containers):
            if entry.name.startswith(".") or not os.path.exists(
                    os.path.join(entry.path, "info.json")):
                remove_tree(Path(entry.path))
                removed += 1
        live = {c.removeprefix("sha256:") for c, _ in root.indexed_chains()}
        for entry in os.scandir(root.locks):
            if entry.name not in live:
                os.unlink(entry.path)
        return removed


def _syncfs(path: Path) -> None:
    """Flush the filesystem holding ``path``, so a published layer survives a power cut."""
    fd = os.open(path, _DIR_FLAGS)
    try:
        check(libc.syncfs(fd), "syncfs", str(path))
    finally:
        os.close(fd)
