"""The image side of the engine core: what every front door calls for images."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from servin.engine import limits
from servin.engine.crashpoints import crashpoint
from servin.engine.events import EventBus
from servin.engine.images import gc
from servin.engine.images.archive import docker_archive, oci_layout
from servin.engine.images.archive.load import LoadEvent, load_archive
from servin.engine.images.archive.pipe import ChunkReader, ChunkWriter
from servin.engine.images.importer import finish_import
from servin.engine.images.platforms import parse_platform
from servin.engine.images.progress import ProgressEvent
from servin.engine.images.pull import Puller, PullResult
from servin.engine.images.push import Pusher, PushResult
from servin.engine.images.registry.auth import Credentials
from servin.engine.images.registry.client import Registries
from servin.engine.images.registry.login import login
from servin.engine.images.search import SearchResult, search
from servin.engine.images.store import ImageRecord, ImageStore
from servin.engine.semantics import filters as docker_filters
from servin.engine.store.leases import Lease
from servin.engine.store.snapshots import Snapshotter
from servin.engine.store.snapshots.layers import chain_ids
from servin.errors import Cancelled, Conflict, InvalidArgument, NotFound
from servin.reference import familiar, parse_reference

log = logging.getLogger(__name__)

SAVE_FORMATS = ("docker-archive", "oci-archive")


@dataclass(frozen=True)
class ImageDetails:
    """An image with its config and manifest read from the content store."""

    record: ImageRecord
    config: dict[str, Any]
    manifest: dict[str, Any]
    raw_config: bytes = b""  # the config blob as stored (its digest is the image ID)


@dataclass(frozen=True)
class HistoryEntry:
    """One step of an image's history, newest first as docker prints it."""

    id: str  # the image ID on the newest step, "<missing>" on the others
    created: str  # RFC 3339
    created_by: str
    size: int
    comment: str
    empty_layer: bool


@dataclass(frozen=True)
class PruneReport:
    """What ``prune`` removed."""

    untagged: list[str]
    deleted: list[str]
    reclaimed: int


class ImageService:
    """Import, load, save, list, inspect, tag, remove and prune images; collect garbage."""

    def __init__(
        self,
        store: ImageStore,
        snapshots: Snapshotter,
        events: EventBus,
        in_use: Callable[[str], Sequence[Any]],
        puller: Puller,
        pusher: Pusher,
        registries: Registries,
    ) -> None:
        self.store = store
        self.snapshots = snapshots
        self.events = events
        # Containers created from an image (the image must outlive them).
        self.in_use = in_use
        self.puller = puller
        self.pusher = pusher
        self.registries = registries
        # More garbage-collection roots (the build cache registers its layers here).
        self.extra_roots: builtins.list[gc.RootProvider] = []

    # -- registries ---------------------------------------------------------------------

    async def pull(self, reference: str, *, platform: str = "", creds: Credentials | None = None,
                   report: Callable[[ProgressEvent], None] = lambda event: None) -> PullResult:
        """Pull an image from its registry (mirrors and auth from the config), reporting
        progress per layer."""
        return await self.puller.pull(reference, platform=platform, creds=creds, report=report)

    async def push(self, reference: str, *, creds: Credentials | None = None,
                   report: Callable[[ProgressEvent], None] = lambda event: None) -> PushResult:
        """Push an image to its registry, reporting progress per layer."""
        return await self.pusher.push(reference, creds=creds, report=report)

    async def login(self, server: str, creds: Credentials) -> str:
        """Check credentials against a registry; the identity token it gave, if any."""
        return await login(self.registries, server, creds)

    async def search(self, term: str, creds: Credentials,
                     limit: int = 25) -> builtins.list[SearchResult]:
        """Repositories a registry knows whose name contains ``term`` (``search``)."""
        return await search(self.registries, term, creds, limit)

    async def import_rootfs(
        self,
        chunks: AsyncIterator[bytes],
        *,
        reference: str,
        changes: builtins.list[str],
        comment: str = "",
        platform: str = "",
        created: str = "",
    ) -> ImageRecord:
        """Stream a rootfs tarball into a new image; tag it when ``reference`` is given
        (``created``: an RFC 3339 creation time instead of now).

        Every argument is checked before the first byte is stored, and a failure at any point
        leaves no image and no blob behind.
        """
        limits.check_text(comment, "the message")
        name = parse_reference(reference) if reference else None
        if name is not None and name.digest:
            raise InvalidArgument("cannot import with a digest reference: give a tag")
        plat = parse_platform(platform)
        content = self.store.content
        try:
            with content.leases.lease("import") as lease:
                writer = await asyncio.to_thread(content.writer, lease)
                try:
                    async for chunk in chunks:
                        await asyncio.to_thread(writer.write, chunk)
                except BaseException:
                    await asyncio.to_thread(writer.abort)
                    raise
                record = await asyncio.to_thread(
                    self._finish_import, writer, lease, plat, changes, comment, name, created
                )
        except BaseException:
            await self._collect_quietly()
            raise
        self.events.publish("image", "import", record.id, name=str(name.familiar()) if name else "")
        return record

    def _finish_import(
        self, writer: Any, lease: Lease, plat: Any, changes: builtins.list[str], comment: str,
        name: Any, created: str = "",
    ) -> ImageRecord:
        content = self.store.content
        record = finish_import(
            content, writer, platform=plat, changes=changes, comment=comment, lease=lease,
            created=created,
        )
        # Unpacked now, through the safe extractor, so a hostile layer is refused at import.
        crashpoint("image.import.after-blobs")
        self._unpack(record, lease)
        crashpoint("image.import.after-unpack")
        self.store.add(record, [name] if name else [])
        return self.store.get(record.id)

    def _unpack(self, record: ImageRecord, lease: Lease) -> None:
        """Unpack an image's layers into the snapshotter, holding them in ``lease``."""
        config = self.store.config(record)
        manifest = self.store.manifest(record)
        ids = (config.get("rootfs") or {}).get("diff_ids") or []
        for chain in chain_ids(ids):
            lease.add_chain(chain)
        layers = [(layer["digest"], ids[i]) for i, layer in enumerate(manifest.get("layers", []))]
        self.snapshots.ensure_layers(self.store.content, layers)

    # -- garbage collection -----------------------------------------------------------------

    def collect(self) -> gc.Collected:
        """Remove blobs and layers nothing references (blocking)."""
        return gc.collect(self.store, self.snapshots, self.extra_roots)

    async def _collect_quietly(self) -> None:
        """Collect after a failed operation; a failure here must not hide the first one."""
        try:
            await asyncio.to_thread(self.collect)
        except Exception as exc:
            log.warning("garbage collection after a failure failed", extra={"error": str(exc)})

    # -- load and save ----------------------------------------------------------------------

    async def load(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[LoadEvent]:
        """Load a docker-archive or OCI layout tarball streamed in ``chunks``.

        Yields progress as it goes and one ``Loaded`` event per image. Streamed: the archive
        is never held in memory. On failure nothing is recorded and what was stored for it
        is collected again.
        """
        reader = ChunkReader()
        events: asyncio.Queue[LoadEvent | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def report(event: LoadEvent) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        def work() -> builtins.list[tuple[ImageRecord, builtins.list[str]]]:
            try:
                with self.store.content.leases.lease("load") as lease:
                    # The chunk reader is a RawIOBase: a binary file to tarfile.
                    return load_archive(cast(BinaryIO, reader), self.store, self.snapshots,
                                        lease, report)
            finally:
                reader.close()  # the feeder stops at its next chunk

        async def feed() -> None:
            try:
                async for chunk in chunks:
                    await asyncio.to_thread(reader.feed, chunk)
                await asyncio.to_thread(reader.end)
            except Cancelled:
                pass  # the loader stopped reading: it finished or failed
            except BaseException:
                reader.close()
                raise

        task = asyncio.ensure_future(asyncio.to_thread(work))
        task.add_done_callback(lambda _: events.put_nowait(None))
        feeder = asyncio.ensure_future(feed())
        ok = False
        try:
            while (event := await events.get()) is not None:
                yield event
            loaded = await task
            ok = True
        finally:
            reader.close()
            if not task.done():
                with contextlib.suppress(BaseException):
                    await task
            feeder.cancel()
            with contextlib.suppress(BaseException):
                await feeder
            if not ok:
                await self._collect_quietly()
        for record, names in loaded:
            for name in names:
                self.events.publish("image", "tag", record.id, name=familiar(name))
            self.events.publish("image", "load", record.id)

    def _save_targets(self, references: builtins.list[str]
                      ) -> builtins.list[tuple[ImageRecord, builtins.list[str]]]:
        """Each named image once, with the names to write (all its tags when named by ID)."""
        out: dict[str, tuple[ImageRecord, list[str]]] = {}
        for text in references:
            record = self.store.resolve(text)
            name = _name_in(text, record)
            names = [name] if name and "@" not in name else record.repo_tags
            entry = out.setdefault(record.id, (record, []))
            entry[1].extend(n for n in names if n not in entry[1])
        return list(out.values())

    async def save(self, references: builtins.list[str], fmt: str = "") -> AsyncIterator[bytes]:
        """The named images as a docker-archive (default) or OCI layout tarball, in chunks."""
        fmt = fmt or "docker-archive"
        if fmt not in SAVE_FORMATS:
            raise InvalidArgument(f"unknown format {fmt!r} (use {' or '.join(SAVE_FORMATS)})")
        if not references:
            raise InvalidArgument("save: name at least one image")
        targets = await asyncio.to_thread(self._save_targets, references)
        writer = ChunkWriter()
        content = self.store.content

        def work() -> None:
            try:
                with content.leases.lease("save") as lease:
                    for record, _ in targets:
                        for digest in gc.referenced_blobs(self.store, record):
                            lease.add_blob(digest)
                            if not content.exists(digest):
                                raise NotFound(f"image {record.short_id}: blob {digest} is missing")
                    if fmt == "oci-archive":
                        oci_layout.write(cast(BinaryIO, writer), content, [
                            (r.manifest_digest, r.manifest_media_type, names)
                            for r, names in targets
                        ])
                    else:
                        docker_archive.write(cast(BinaryIO, writer), content, [
                            (r.config_digest, self.store.manifest(r), [familiar(n) for n in names])
                            for r, names in targets
                        ], content.ingest_dir)
                writer.finish()
            finally:
                writer.close()

        task = asyncio.ensure_future(asyncio.to_thread(work))
        try:
            while True:
                try:
                    chunk = await asyncio.to_thread(writer.next_chunk)
                except Cancelled:
                    await task  # the writer failed: raise its error
                    raise
                if chunk is None:
                    break
                yield chunk
            await task
        finally:
            writer.close()
            if not task.done():
                with contextlib.suppress(BaseException):
                    await task
        for record, _ in targets:
            self.events.publish("image", "save", record.id)

    # -- queries --------------------------------------------------------------------------

    async def list(self, filters: docker_filters.Filters | None = None
                   ) -> builtins.list[ImageRecord]:
        """The images docker's ``filters`` select (dangling, label, reference, before, since,
        until)."""
        wanted = docker_filters.check(filters or {}, docker_filters.IMAGE_KEYS)
        return await asyncio.to_thread(self._list, wanted)

    def _list(self, filters: docker_filters.Filters) -> builtins.list[ImageRecord]:
        records = self.store.list()
        if not filters:
            return records
        pivots = {key: [self.store.resolve(v).created for v in filters.get(key, [])]
                  for key in ("before", "since")}
        out = []
        for r in records:
            if not docker_filters.image_matches(r, filters, pivots):
                continue
            if "reference" in filters:
                # As docker: only the matching names (tags and digests) are listed (an image
                # whose other names match is not listed under those).
                names = [n for n in r.refs
                         if docker_filters.reference_matches(n, filters["reference"])]
                r = dataclasses.replace(r, refs=names)
            out.append(r)
        return out

    async def get(self, ref: str) -> ImageRecord:
        """An image by name, ID or ID prefix."""
        return await asyncio.to_thread(self.store.resolve, ref)

    async def inspect(self, ref: str) -> ImageDetails:
        """An image with its config and manifest (digest-verified)."""
        return await asyncio.to_thread(self._inspect, ref)

    def _inspect(self, text: str) -> ImageDetails:
        record = self.store.resolve(text)
        raw = self.store.content.read_verified(record.config_digest)
        return ImageDetails(record, json.loads(raw), self.store.manifest(record), raw)

    async def history(self, ref: str) -> builtins.list[HistoryEntry]:
        """The image's history, newest first, with each layer's size."""
        details = await self.inspect(ref)
        layer_sizes = [layer["size"] for layer in details.manifest.get("layers", [])]
        entries = []
        layer_index = 0
        for item in details.config.get("history") or []:
            empty = bool(item.get("empty_layer"))
            size = 0
            if not empty and layer_index < len(layer_sizes):
                size = layer_sizes[layer_index]
                layer_index += 1
            entries.append(HistoryEntry(
                id="<missing>", created=item.get("created", ""),
                created_by=item.get("created_by", ""), size=size,
                comment=item.get("comment", ""), empty_layer=empty))
        entries.reverse()  # newest first, as docker prints it
        if entries:
            entries[0] = dataclasses.replace(entries[0], id=details.record.id)
        return entries

    async def tag(self, source: str, target: str) -> None:
        """Give an image another name."""
        await asyncio.to_thread(self._tag, source, target)

    def _tag(self, source: str, target: str) -> None:
        """Give an image another name."""
        record = self.store.resolve(source)
        name = parse_reference(target)
        if name.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        self.store.tag(record.id, name)
        self.events.publish("image", "tag", record.id, name=name.familiar())

    async def remove(self, ref: str, *, force: bool = False
                     ) -> tuple[builtins.list[str], builtins.list[str]]:
        """Untag or delete an image as ``docker rmi`` does; return (untagged, deleted).

        By name: the name goes; the image goes too when it was its last name. By ID: an image
        known under several repositories needs ``force``.
        """
        return await asyncio.to_thread(self._remove, ref, force)

    def _remove(self, text: str, force: bool) -> tuple[builtins.list[str], builtins.list[str]]:
        record = self.store.resolve(text)
        name = _name_in(text, record)
        users = self.in_use(record.id)
        # As docker: a repo@digest name does not keep an image alive once its last tag goes.
        last_name = name is None or not [r for r in record.repo_tags if r != name]
        if users and last_name and not force:
            what = f"repository reference {text!r}" if name else record.short_id
            raise Conflict(
                f"conflict: unable to remove {what} (must force) - container "
                f"{users[0].id[:12]} is using its referenced image {record.short_id}"
            )
        untagged: builtins.list[str] = []
        if name is not None:
            self.store.untag(name)
            untagged.append(name)
            self.events.publish("image", "untag", record.id, name=name)
            untagged += self._drop_orphan_digests(record, name)
            remaining = self.store.get(record.id).refs
            if remaining:
                return untagged, []
        else:
            repos = {_repository(r) for r in record.refs}
            if len(repos) > 1 and not force:
                raise Conflict(
                    f"unable to delete {record.short_id} (must be forced) - image is referenced "
                    "in multiple repositories"
                )
            for name in record.refs:
                self.store.untag(name)
                untagged.append(name)
                self.events.publish("image", "untag", record.id, name=name)
        if users:
            return untagged, []  # untagged only: the image stays for its containers
        self.store.delete(record.id)
        self.events.publish("image", "delete", record.id)
        self.collect()
        return untagged, [record.id]

    def _drop_orphan_digests(self, record: ImageRecord, removed_tag: str) -> builtins.list[str]:
        """After a tag goes: the image's repo@digest names in that repository go too when no
        tag of the repository is left (as docker does)."""
        if "@" in removed_tag:
            return []
        repo = _repository(removed_tag)
        refs = self.store.get(record.id).refs
        if any("@" not in r and _repository(r) == repo for r in refs):
            return []
        dropped = [r for r in refs if "@" in r and _repository(r) == repo]
        for name in dropped:
            self.store.untag(name)
            self.events.publish("image", "untag", record.id, name=name)
        return dropped

    async def prune(self, *, all_images: bool = False,
                    filters: docker_filters.Filters | None = None) -> PruneReport:
        """Remove dangling images (every unused one with ``all_images`` or
        ``dangling=false``) that docker's prune ``filters`` (until=, label=, label!=) select,
        then collect. Images a container uses are never pruned."""
        wanted = docker_filters.check(filters or {}, docker_filters.IMAGE_PRUNE_KEYS)
        if "dangling" in wanted:
            all_images = all_images or not docker_filters.parse_bool("dangling",
                                                                     wanted["dangling"])
        return await asyncio.to_thread(
            self._prune, all_images, lambda r: docker_filters.image_prune_matches(r, wanted))

    def _prune(self, all_images: bool, match: Callable[[ImageRecord], bool]) -> PruneReport:
        untagged: builtins.list[str] = []
        deleted: builtins.list[str] = []
        for record in self.store.list():
            if (record.repo_tags and not all_images) or not match(record):
                continue
            if self.in_use(record.id):
                continue
            for name in record.refs:
                self.store.untag(name)
                untagged.append(name)
                self.events.publish("image", "untag", record.id, name=name)
            self.store.delete(record.id)
            self.events.publish("image", "delete", record.id)
            deleted.append(record.id)
        collected = self.collect()
        return PruneReport(untagged, deleted, collected.reclaimed)


def _repository(name: str) -> str:
    """``docker.io/library/busybox`` from a normalised name with a tag or digest."""
    base = name.split("@", 1)[0]
    slash, colon = base.rfind("/"), base.rfind(":")
    return base[:colon] if colon > slash else base


def _name_in(text: str, record: ImageRecord) -> str | None:
    """The normalised name ``text`` is, when it is one of the image's names."""
    try:
        name = str(parse_reference(text))
    except InvalidArgument:
        return None
    return name if name in record.refs else None
