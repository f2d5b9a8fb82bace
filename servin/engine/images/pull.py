"""Pulling an image from a registry into the content store and the snapshotter.

The manifest (and, for a multi-platform index, the platform's manifest) is fetched and
verified against its digest; then up to ``CONCURRENT_DOWNLOADS`` layers at a time each get a
thread of their own that reads the blob off the connection (``registry/blobfetch.py``),
stores and hashes every chunk once, and feeds the same chunk through the decompressor into
the snapshotter's safe extraction: no second pass over a blob, and nothing per chunk on the
event loop. The layer is published only after its blob digest, size and diff ID checked
out. The image is recorded only when every layer is unpacked: an interrupted pull leaves
partial ingests (removed at the next start) and perhaps complete layers, never a half image.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from servin.engine.crashpoints import crashpoint
from servin.engine.events import EventBus
from servin.engine.images.platforms import Platform, parse_platform
from servin.engine.images.progress import ProgressEvent, Reporter, short
from servin.engine.images.registry import manifests
from servin.engine.images.registry.auth import Credentials
from servin.engine.images.registry.blobfetch import BlobSource, Location
from servin.engine.images.registry.client import Endpoint, Registries, RepositorySession
from servin.engine.images.store import ImageRecord, ImageStore
from servin.engine.store.snapshots import Snapshotter
from servin.engine.store.snapshots.layers import chain_ids
from servin.errors import InvalidArgument, NotFound, ServinError, Unavailable
from servin.reference import Reference, parse_reference

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

CONCURRENT_DOWNLOADS = 3
_CHUNK = 1 << 20
_REPORT_EVERY = 512 * 1024  # bytes between two progress events of one layer


@dataclass(frozen=True)
class PullResult:
    """What a pull recorded."""

    record: ImageRecord
    digest: str           # the digest the reference resolved to (index or manifest)
    reference: str        # the normalised name pulled
    fresh: bool           # whether anything new was stored


class Puller:
    """Pulls images for the engine."""

    def __init__(self, store: ImageStore, snapshots: Snapshotter, registries: Registries,
                 events: EventBus) -> None:
        self.store = store
        self.content = store.content
        self.snapshots = snapshots
        self.registries = registries
        self.events = events

    async def pull(self, text: str, *, platform: str = "", creds: Credentials | None = None,
                   report: Reporter = lambda e: None) -> PullResult:
        """Pull ``text`` (a reference, by tag or digest) for ``platform`` (default: host's)."""
        ref = parse_reference(text)
        want = parse_platform(platform)
        endpoints = await self.registries.endpoints(ref.domain, pull=True)
        session = self.registries.session(ref.domain, ref.path, creds or Credentials(),
                                          endpoints)
        name = ref.familiar()
        report(ProgressEvent.line(f"{ref.digest or ref.tag}: Pulling from "
                                  f"{ref.familiar_repository}"))
        endpoint, top_digest, doc = await self._resolve(session, ref)
        manifest_digest, manifest_bytes, manifest = top_digest, doc[0], doc[1]
        if isinstance(manifest, manifests.Index):
            entry = manifests.select(manifest, want, name)
            manifest_digest = entry.digest
            manifest_bytes, _, manifest = await self._fetch_manifest(
                session, endpoint, entry.digest, name)
            if isinstance(manifest, manifests.Index):
                raise InvalidArgument(f"{name}: an index entry is itself an index")
        assert isinstance(manifest, manifests.Manifest)
        config_bytes = await self._small_blob(session, endpoint, manifest.config, name)
        config = _parse_config(config_bytes, name)
        diff_ids = config["rootfs"]["diff_ids"]
        if len(diff_ids) != len(manifest.layers):
            raise InvalidArgument(f"{name}: the manifest has {len(manifest.layers)} layers "
                                  f"but the config lists {len(diff_ids)} diff IDs")
        _check_platform(config, want, name, report)
        # Hold everything this pull writes or reuses until the image record points at it,
        # so a garbage collection running meanwhile leaves it alone (see store/leases.py).
        with self.content.leases.lease(f"pull {name}") as lease:
            for digest in (manifest_digest, manifest.config.digest,
                           *(layer.digest for layer in manifest.layers)):
                lease.add_blob(digest)
            for chain in chain_ids(diff_ids):
                lease.add_chain(chain)
            fresh = await self._layers(session, endpoint, manifest, diff_ids, report)
            crashpoint("image.pull.after-layers")
            await asyncio.to_thread(self.content.write_bytes, config_bytes, manifest.config.digest)
            await asyncio.to_thread(self.content.write_bytes, manifest_bytes, manifest_digest)
            chains = chain_ids(diff_ids)
            size = sum([await asyncio.to_thread(self.snapshots.layer_size, c) for c in chains])
            record = ImageRecord(
                id=manifest.config.digest,
                manifest_digest=manifest_digest,
                manifest_media_type=manifest.media_type,
                config_digest=manifest.config.digest,
                created=str(config.get("created") or "1970-01-01T00:00:00Z"),
                size=size,
                labels=dict((config.get("config") or {}).get("Labels") or {}),
            )
            names: list[Reference] = [Reference(ref.domain, ref.path, None, top_digest)]
            if ref.tag:
                names.insert(0, ref.with_tag(ref.tag))
            previous = await asyncio.to_thread(self._current_id, names[0])
            crashpoint("image.pull.before-record")
            await asyncio.to_thread(self.store.add, record, names)
            record = await asyncio.to_thread(self.store.get, record.id)
            fresh = fresh or previous != record.id
        report(ProgressEvent.line(f"Digest: {top_digest}"))
        verdict = "Downloaded newer image" if fresh else "Image is up to date"
        report(ProgressEvent.line(f"Status: {verdict} for {name}"))
        self.events.publish("image", "pull", record.id, name=name)
        return PullResult(record, top_digest, str(ref), fresh)

    def _current_id(self, name: Reference) -> str | None:
        try:
            return self.store.resolve(str(name)).id
        except NotFound:
            return None

    # -- manifests ------------------------------------------------------------------------

    async def _resolve(self, session: RepositorySession, ref: Reference
                       ) -> tuple[Endpoint, str, tuple[bytes, manifests.Manifest |
                                                        manifests.Index]]:
        """Fetch the reference's manifest from the first endpoint that has it."""
        target = ref.digest or ref.tag or "latest"
        name = ref.familiar()
        last: ServinError | None = None
        for endpoint in session.endpoints:
            try:
                data, digest, doc = await self._fetch_manifest(session, endpoint, target, name)
                return endpoint, digest, (data, doc)
            except ServinError as exc:
                if not endpoint.mirror:
                    raise
                log.info("mirror failed, trying the next endpoint",
                         extra={"mirror": endpoint.base, "error": exc.message})
                last = exc
        raise last or NotFound(f"manifest for {name} not found")

    async def _fetch_manifest(self, session: RepositorySession, endpoint: Endpoint,
                              target: str, name: str
                              ) -> tuple[bytes, str, manifests.Manifest | manifests.Index]:
        resp = await session.send("GET", f"manifests/{target}", endpoint=endpoint,
                                  headers={"Accept": manifests.ACCEPT}, stream=True,
                                  what=f"manifest for {name}")
        try:
            data = bytearray()
            async for chunk in resp.aiter_bytes():
                data += chunk
                if len(data) > manifests.MAX_MANIFEST:
                    raise InvalidArgument(f"{name}: the manifest is larger than 4 MiB")
        finally:
            await resp.aclose()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if target.startswith("sha256:") and digest != target:
            raise InvalidArgument(f"{name}: the registry sent a manifest whose digest is "
                                  f"{digest}, not the {target} asked for")
        doc = manifests.parse(bytes(data), resp.headers.get("content-type", ""), name)
        return bytes(data), digest, doc

    async def _small_blob(self, session: RepositorySession, endpoint: Endpoint,
                          desc: manifests.Descriptor, name: str) -> bytes:
        if await asyncio.to_thread(self.content.exists, desc.digest):
            return await asyncio.to_thread(self.content.read_verified, desc.digest)
        if desc.size > manifests.MAX_MANIFEST:
            raise InvalidArgument(f"{name}: the image config is larger than 4 MiB")
        resp = await self._blob_response(session, endpoint, desc.digest, 0, name)
        data = bytearray()
        async for chunk in session.stream_bytes(resp, _CHUNK):
            data += chunk
            if len(data) > desc.size:
                break
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != desc.digest:
            raise InvalidArgument(f"{name}: config blob {desc.digest} arrived with digest "
                                  f"{actual}")
        return bytes(data)

    # -- layers ---------------------------------------------------------------------------

    async def _layers(self, session: RepositorySession, endpoint: Endpoint,
                      manifest: manifests.Manifest, diff_ids: list[str],
                      report: Reporter) -> bool:
        """Download the missing layer blobs, unpacking each as it streams in.

        Up to CONCURRENT_DOWNLOADS layers at a time; each download feeds the content store
        and, when its layer is not unpacked yet, an unpacking thread. A layer whose blob is
        stored already but not unpacked is unpacked from the store at the end.
        """
        layers = list(manifest.layers)
        chains = chain_ids(diff_ids)
        semaphore = asyncio.Semaphore(CONCURRENT_DOWNLOADS)
        jobs: list[tuple[int, bool]] = []  # (index, unpack while downloading)
        for i, (desc, chain) in enumerate(zip(layers, chains, strict=True)):
            unpacked = await asyncio.to_thread(self.snapshots.has_layer, chain)
            stored = await asyncio.to_thread(self.content.exists, desc.digest)
            if unpacked and stored:
                report(ProgressEvent(short(desc.digest), "Already exists", done=True))
            elif not stored:
                report(ProgressEvent(short(desc.digest), "Waiting", 0, desc.size))
                jobs.append((i, not unpacked))

        async def job(i: int, unpack: bool) -> None:
            async with semaphore:
                parent = chains[i - 1] if i else ""
                await self._download(session, endpoint, layers[i], report,
                                     (diff_ids[i], parent) if unpack else None)
            if unpack:
                item = short(layers[i].digest)
                report(ProgressEvent(item, "Pull complete", layers[i].size, layers[i].size,
                                     done=True))

        tasks = [asyncio.create_task(job(i, unpack)) for i, unpack in jobs]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        # Whatever is not unpacked yet (blobs that were stored already) goes now, bottom up.
        pairs = [(d.digest, diff) for d, diff in zip(layers, diff_ids, strict=True)]
        for i, (desc, chain) in enumerate(zip(layers, chains, strict=True)):
            if not await asyncio.to_thread(self.snapshots.has_layer, chain):
                report(ProgressEvent(short(desc.digest), "Extracting", 0, desc.size))
                await asyncio.to_thread(self.snapshots.ensure_layers, self.content,
                                        pairs[:i + 1])
                report(ProgressEvent(short(desc.digest), "Pull complete", desc.size,
                                     desc.size, done=True))
        return bool(jobs)

    async def _blob_response(self, session: RepositorySession, endpoint: Endpoint,
                             digest: str, offset: int, name: str, *,
                             probe: bool = False) -> httpx.Response:
        """A streamed GET of a blob from ``endpoint`` (else the other endpoints), from
        ``offset`` on (``probe``: of that one byte only)."""
        if probe:
            headers = {"Range": f"bytes={offset}-{offset}"}
        else:
            headers = {"Range": f"bytes={offset}-"} if offset else {}
        order = [endpoint] + [e for e in session.endpoints if e != endpoint]
        last: ServinError | None = None
        for ep in order:
            try:
                return await session.send("GET", f"blobs/{digest}", endpoint=ep,
                                          headers=headers, stream=True, ok=(200, 206),
                                          what=f"{name}: blob {short(digest)}")
            except (NotFound, Unavailable) as exc:
                last = exc
        assert last is not None
        raise last

    async def _download(self, session: RepositorySession, endpoint: Endpoint,
                        desc: manifests.Descriptor, report: Reporter,
                        unpack: tuple[str, str] | None) -> None:
        """Stream one blob into the content store, unpacking it on the way (``unpack``:
        its diff ID and the parent chain ID), in a thread of its own.

        The session finds where the bytes are (auth, mirrors, redirects); the thread reads
        them (``BlobSource``: one megabyte at a time, resumed with Range after a cut), stores
        and hashes each chunk once and feeds the same chunk to the decompressor and the tar
        reader. The layer is published only after the blob's digest and size checked out.
        """
        name = f"{session.domain}/{session.path}"
        item = short(desc.digest)
        loop = asyncio.get_running_loop()
        writer = await asyncio.to_thread(self.content.writer)

        async def locate(offset: int) -> Location:
            # One byte is enough to pass auth and redirects; the thread fetches the rest.
            resp = await self._blob_response(session, endpoint, desc.digest, offset, name,
                                             probe=True)
            try:
                headers = {k: v for k, v in resp.request.headers.items()
                           if k.lower() in ("authorization", "user-agent")}
                return Location(str(resp.url), headers)
            finally:
                await resp.aclose()

        reported = [0]

        def progress(stored: int) -> None:
            if stored - reported[0] >= _REPORT_EVERY or stored == desc.size:
                reported[0] = stored
                loop.call_soon_threadsafe(report, ProgressEvent(item, "Downloading", stored,
                                                                desc.size))

        def relocate(offset: int) -> Location:
            return asyncio.run_coroutine_threadsafe(locate(offset), loop).result()

        source = BlobSource(relocate, desc.size, writer, self.registries.ssl_context,
                            progress, what=f"{name}: blob {item}")

        def verify() -> None:
            source.drain()
            if writer.size != desc.size or writer.digest != desc.digest:
                raise InvalidArgument(f"{name}: blob {desc.digest} arrived with digest "
                                      f"{writer.digest} ({writer.size} bytes)")

        def transfer() -> None:
            try:
                if unpack is not None:
                    diff_id, parent = unpack
                    # A RawIOBase: read() and readinto() as a binary file's.
                    self.snapshots.unpack_stream(cast(BinaryIO, source), desc.digest, diff_id,
                                                 parent, verify)
                else:
                    verify()
                loop.call_soon_threadsafe(report, ProgressEvent(item, "Verifying Checksum",
                                                                desc.size, desc.size))
                writer.commit(desc.digest)
            finally:
                source.close()

        try:
            await _in_thread(transfer, f"pull-{item}", on_cancel=source.cancel)
        except BaseException:
            await asyncio.to_thread(writer.abort)
            raise
        report(ProgressEvent(item, "Download complete", desc.size, desc.size))


async def _in_thread(work: Callable[[], None], name: str, *,
                     on_cancel: Callable[[], None]) -> None:
    """Run ``work`` in a thread of its own (a pool could starve: pulls block on the network);
    if the caller is cancelled, ``on_cancel`` stops it and the caller still waits for it."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(exc: BaseException | None) -> None:
        if not done.done():
            if exc is None:
                done.set_result(None)
            else:
                done.set_exception(exc)

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the event loop
            loop.call_soon_threadsafe(settle, exc)
        else:
            loop.call_soon_threadsafe(settle, None)

    threading.Thread(target=run, name=name, daemon=True).start()
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        on_cancel()
        await asyncio.gather(done, return_exceptions=True)
        raise


def _parse_config(data: bytes, name: str) -> dict[str, Any]:
    try:
        config = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"{name}: the image config is not valid JSON") from exc
    if not isinstance(config, dict):
        raise InvalidArgument(f"{name}: the image config is not a JSON object")
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list) or not all(
            isinstance(d, str) for d in rootfs["diff_ids"]):
        raise InvalidArgument(f"{name}: the image config has no rootfs.diff_ids")
    return config


def _check_platform(config: dict[str, Any], want: Platform, name: str,
                    report: Reporter) -> None:
    have = Platform(str(config.get("os", "")), str(config.get("architecture", "")),
                    str(config.get("variant", "")))
    if (have.os, have.architecture) != (want.os, want.architecture):
        # As docker: a single-platform image of another platform is pulled with a warning.
        report(ProgressEvent.line(f"WARNING: the image's platform ({have}) does not match "
                                  f"the requested platform ({want})"))
