"""Pushing a local image to a registry: blobs (checked, mounted or uploaded), then the manifest.

Each blob is first checked with HEAD (a registry that has it needs nothing more); then,
when the image is known under another repository of the same registry, a cross-repository
mount is asked for (``POST .../blobs/uploads/?mount=<digest>&from=<repo>``); otherwise the
blob is uploaded, in one PUT when small and in ``CHUNK``-sized PATCH requests when large.
The manifest goes last, as stored (so its digest is the local one), and its digest becomes
one of the image's RepoDigests.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass

from servin.engine.events import EventBus
from servin.engine.images.progress import ProgressEvent, Reporter, short
from servin.engine.images.registry import httplib
from servin.engine.images.registry.auth import Credentials
from servin.engine.images.registry.client import Endpoint, Registries, RepositorySession
from servin.engine.images.registry.manifests import Descriptor
from servin.engine.images.store import ImageStore
from servin.errors import InvalidArgument, NotFound, Unavailable
from servin.reference import Reference, parse_reference

log = logging.getLogger(__name__)

CONCURRENT_UPLOADS = 3
MONOLITHIC_MAX = 8 * 1024 * 1024  # blobs up to this size go in a single PUT
CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class PushResult:
    """What a push sent."""

    digest: str
    size: int
    reference: str


class Pusher:
    """Pushes images for the engine."""

    def __init__(self, store: ImageStore, registries: Registries, events: EventBus) -> None:
        self.store = store
        self.content = store.content
        self.registries = registries
        self.events = events

    async def push(self, text: str, *, creds: Credentials | None = None,
                   report: Reporter = lambda e: None) -> PushResult:
        """Push the local image named ``text`` to the registry its name points at."""
        ref = parse_reference(text)
        if ref.digest:
            raise InvalidArgument("cannot push a digest reference: push a tag")
        record = await asyncio.to_thread(self.store.resolve, str(ref))
        manifest_bytes = await asyncio.to_thread(self.content.read_verified,
                                                 record.manifest_digest)
        manifest = await asyncio.to_thread(self.store.manifest, record)
        blobs = [Descriptor.from_json(manifest.get("config"), "manifest")]
        blobs += [Descriptor.from_json(layer, "manifest") for layer in manifest.get("layers", [])]
        sources = sorted({parse_reference(r, default_tag=False).path for r in record.refs
                          if parse_reference(r, default_tag=False).domain == ref.domain}
                         - {ref.path})
        origin = await self.registries.origin(ref.domain)
        session = self.registries.session(ref.domain, ref.path, creds or Credentials(),
                                          [origin], push=True)
        session.extra_scopes = [f"repository:{s}:pull" for s in sources]
        report(ProgressEvent.line(f"The push refers to repository [{ref.repository}]"))
        semaphore = asyncio.Semaphore(CONCURRENT_UPLOADS)

        async def one(desc: Descriptor, shown: bool) -> None:
            async with semaphore:
                # As docker, progress names the layers only; the config goes quietly.
                await self._blob(session, origin, desc, sources,
                                 report if shown else lambda e: None)

        # The config goes with the layers; every blob must be there before the manifest.
        tasks = [asyncio.create_task(one(d, i > 0)) for i, d in enumerate(blobs)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        digest = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
        resp = await session.send(
            "PUT", f"manifests/{ref.tag}", endpoint=origin, content=manifest_bytes,
            headers={"Content-Type": record.manifest_media_type}, ok=(200, 201, 202),
            what=f"pushing manifest for {ref.familiar()}")
        echoed = resp.headers.get("docker-content-digest")
        if echoed and echoed != digest:
            raise Unavailable(f"{ref.familiar()}: the registry stored the manifest as {echoed}, "
                              f"expected {digest}")
        await asyncio.to_thread(self.store.add, record,
                                [Reference(ref.domain, ref.path, None, digest)])
        report(ProgressEvent.line(f"{ref.tag}: digest: {digest} size: {len(manifest_bytes)}"))
        self.events.publish("image", "push", record.id, name=ref.familiar())
        return PushResult(digest, len(manifest_bytes), str(ref))

    async def _blob(self, session: RepositorySession, origin: Endpoint, desc: Descriptor,
                    sources: list[str], report: Reporter) -> None:
        item = short(desc.digest)
        report(ProgressEvent(item, "Preparing", 0, desc.size))
        try:
            await session.send("HEAD", f"blobs/{desc.digest}", endpoint=origin,
                               what=f"checking blob {item}")
            report(ProgressEvent(item, "Layer already exists", desc.size, desc.size, done=True))
            return
        except NotFound:
            pass
        location = ""
        for source in sources:
            resp = await session.send(
                "POST", "blobs/uploads/", endpoint=origin,
                params={"mount": desc.digest, "from": source}, ok=(201, 202),
                what=f"mounting blob {item}")
            if resp.status_code == 201:
                report(ProgressEvent(item, f"Mounted from {source}", desc.size, desc.size,
                                     done=True))
                return
            location = resp.headers.get("location", "")
            break  # the registry opened an upload instead: use it
        if not location:
            resp = await session.send("POST", "blobs/uploads/", endpoint=origin, ok=(202,),
                                      what=f"starting upload of {item}")
            location = resp.headers.get("location", "")
        if not location:
            raise Unavailable(f"the registry gave no upload location for blob {item}")
        if desc.size <= MONOLITHIC_MAX:
            data = await asyncio.to_thread(self._read, desc.digest, 0, desc.size)
            report(ProgressEvent(item, "Pushing", 0, desc.size))
            await session.send("PUT", _with_digest(origin, location, desc.digest),
                               endpoint=origin, content=data, ok=(201, 204),
                               headers={"Content-Type": "application/octet-stream"},
                               what=f"uploading blob {item}")
        else:
            await self._chunked(session, origin, desc, location, report)
        report(ProgressEvent(item, "Pushed", desc.size, desc.size, done=True))

    async def _chunked(self, session: RepositorySession, origin: Endpoint, desc: Descriptor,
                       location: str, report: Reporter) -> None:
        item = short(desc.digest)
        offset = 0
        while offset < desc.size:
            length = min(CHUNK, desc.size - offset)
            data = await asyncio.to_thread(self._read, desc.digest, offset, length)
            resp = await session.send(
                "PATCH", location, endpoint=origin, content=data, ok=(202, 204),
                headers={"Content-Type": "application/octet-stream",
                         "Content-Range": f"{offset}-{offset + length - 1}"},
                what=f"uploading blob {item}")
            location = resp.headers.get("location", location)
            offset += length
            report(ProgressEvent(item, "Pushing", offset, desc.size))
        await session.send("PUT", _with_digest(origin, location, desc.digest), endpoint=origin,
                           ok=(201, 204), what=f"finishing upload of blob {item}")

    def _read(self, digest: str, offset: int, length: int) -> bytes:
        with self.content.open(digest) as f:
            f.seek(offset)
            data = f.read(length)
        if len(data) != length:
            raise NotFound(f"blob {digest} is shorter than its manifest says")
        return data


def _with_digest(origin: Endpoint, location: str, digest: str) -> str:
    """The upload URL with ``digest=`` added (the location may be relative, with a query)."""
    url = httplib.load().URL(origin.base).join(location)
    return str(url.copy_merge_params({"digest": digest}))


