"""servin.v1.Images: translates requests onto the core's image API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from servin.api.servin.v1 import common_pb2, images_pb2, images_pb2_grpc
from servin.engine.engine import CoreAPI
from servin.engine.images.archive.load import LoadEvent
from servin.engine.images.progress import ProgressEvent
from servin.engine.images.registry.auth import Credentials
from servin.engine.images.store import ImageRecord
from servin.engine.semantics.inspect import image_document, to_json
from servin.engine.server.grpc import builds, convert
from servin.engine.server.grpc.rpc import Context
from servin.engine.server.grpc.streams import split_upload
from servin.engine.server.grpc.timestamps import from_rfc3339
from servin.errors import InvalidArgument
from servin.reference import familiar, parse_reference


def image_summary(record: ImageRecord) -> images_pb2.ImageSummary:
    """The list view of an image."""
    return images_pb2.ImageSummary(
        id=record.id,
        repo_tags=record.repo_tags,
        repo_digests=record.repo_digests,
        created=from_rfc3339(record.created),
        size=record.size,
        labels=record.labels,
    )


def _image_config(config: dict[str, Any]) -> images_pb2.ImageConfig:
    c = config.get("config") or {}
    health = c.get("Healthcheck") or {}
    return images_pb2.ImageConfig(
        user=c.get("User", ""),
        env=c.get("Env") or [],
        entrypoint=c.get("Entrypoint") or [],
        cmd=c.get("Cmd") or [],
        working_dir=c.get("WorkingDir", ""),
        labels=c.get("Labels") or {},
        exposed_ports=sorted(c.get("ExposedPorts") or {}),
        volumes=sorted(c.get("Volumes") or {}),
        stop_signal=c.get("StopSignal", ""),
        healthcheck=common_pb2.HealthConfig(
            test=health.get("Test") or [],
            interval_ns=health.get("Interval", 0),
            timeout_ns=health.get("Timeout", 0),
            start_period_ns=health.get("StartPeriod", 0),
            retries=health.get("Retries", 0),
        ),
        shell=c.get("Shell") or [],
        args_escaped=bool(c.get("ArgsEscaped", False)),
    )


class ImagesServicer(images_pb2_grpc.ImagesServicer):
    """The Images service of servin.v1."""

    def __init__(self, core: CoreAPI) -> None:
        self.core = core
        self.images = core.images

    async def Import(
        self,
        request_iterator: AsyncIterator[images_pb2.ImportImageInput],
        context: Context,
    ) -> images_pb2.ImportImageResponse:
        first, chunks = await split_upload(request_iterator)
        if first is None:
            raise InvalidArgument("import: no data received")

        created = ""
        if first.HasField("created"):
            try:
                created = first.created.ToJsonString()
            except ValueError as exc:  # seconds or nanos out of Timestamp's range
                raise InvalidArgument(f"import: invalid creation time: {exc}") from None
        record = await self.images.import_rootfs(
            chunks,
            reference=first.reference,
            changes=list(first.changes),
            comment=first.message,
            platform=first.platform,
            created=created,
        )
        ref = str(parse_reference(first.reference).familiar()) if first.reference else ""
        return images_pb2.ImportImageResponse(
            image_id=record.id, reference=ref, manifest_digest=record.manifest_digest
        )

    async def Pull(
        self, request: images_pb2.PullImageRequest, context: Context
    ) -> AsyncIterator[images_pb2.ImageProgress]:
        if request.all_tags:
            raise InvalidArgument("pulling all tags of a repository is not supported")
        if not request.reference:
            raise InvalidArgument("pull: no image reference given")
        parse_reference(request.reference)  # a bad reference fails before any network work
        creds = _credentials(request.auth)
        images = self.images

        async def run(report: Callable[[ProgressEvent], None]) -> Any:
            return await images.pull(request.reference, platform=request.platform,
                                     creds=creds, report=report)

        async for item in _streamed(run):
            if isinstance(item, images_pb2.ImageProgress):
                yield item
            else:
                yield images_pb2.ImageProgress(
                    image_id=item.record.id, digest=item.digest,
                    references=[parse_reference(item.reference).familiar()])

    async def Push(
        self, request: images_pb2.PushImageRequest, context: Context
    ) -> AsyncIterator[images_pb2.ImageProgress]:
        if not request.reference:
            raise InvalidArgument("push: no image reference given")
        parse_reference(request.reference)
        creds = _credentials(request.auth)
        images = self.images

        async def run(report: Callable[[ProgressEvent], None]) -> Any:
            return await images.push(request.reference, creds=creds, report=report)

        async for item in _streamed(run):
            if isinstance(item, images_pb2.ImageProgress):
                yield item
            else:
                yield images_pb2.ImageProgress(
                    digest=item.digest, references=[parse_reference(item.reference).familiar()])

    async def Login(
        self, request: images_pb2.LoginRequest, context: Context
    ) -> images_pb2.LoginResponse:
        token = await self.images.login(request.server, _credentials(request.auth))
        return images_pb2.LoginResponse(status="Login Succeeded", identity_token=token)

    async def Search(
        self, request: images_pb2.SearchImagesRequest, context: Context
    ) -> images_pb2.SearchImagesResponse:
        found = await self.images.search(request.term, _credentials(request.auth),
                                         request.limit or 25)
        return images_pb2.SearchImagesResponse(results=[
            images_pb2.SearchResult(name=r.name, description=r.description,
                                    star_count=r.stars, is_official=r.official)
            for r in found])

    async def List(
        self, request: images_pb2.ListImagesRequest, context: Context
    ) -> images_pb2.ListImagesResponse:
        records = await self.images.list(convert.filters(list(request.filters)))
        return images_pb2.ListImagesResponse(images=[image_summary(r) for r in records])

    async def Inspect(
        self, request: images_pb2.InspectImageRequest, context: Context
    ) -> images_pb2.ImageDetail:
        details = await self.images.inspect(request.reference)
        record, config, manifest = details.record, details.config, details.manifest
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        layers = [
            images_pb2.ImageLayer(
                digest=layer["digest"],
                media_type=layer["mediaType"],
                size=layer["size"],
                diff_id=diff_ids[i] if i < len(diff_ids) else "",
            )
            for i, layer in enumerate(manifest.get("layers", []))
        ]
        return images_pb2.ImageDetail(
            id=record.id,
            repo_tags=record.repo_tags,
            repo_digests=record.repo_digests,
            created=from_rfc3339(config.get("created", record.created)),
            author=config.get("author", ""),
            comment=((config.get("history") or [{}])[-1]).get("comment", ""),
            architecture=config.get("architecture", ""),
            os=config.get("os", ""),
            variant=config.get("variant", ""),
            size=record.size,
            config=_image_config(config),
            layers=layers,
            manifest_digest=record.manifest_digest,
            manifest_media_type=record.manifest_media_type,
            raw_config=details.raw_config,
            document=to_json(image_document(details)),
        )

    async def Remove(
        self, request: images_pb2.RemoveImageRequest, context: Context
    ) -> images_pb2.RemoveImageResponse:
        untagged, deleted = await self.images.remove(request.reference, force=request.force)
        return images_pb2.RemoveImageResponse(untagged=untagged, deleted=deleted)

    async def Tag(
        self, request: images_pb2.TagImageRequest, context: Context
    ) -> images_pb2.TagImageResponse:
        await self.images.tag(request.source, request.target)
        return images_pb2.TagImageResponse()

    async def Load(
        self,
        request_iterator: AsyncIterator[images_pb2.LoadImageInput],
        context: Context,
    ) -> AsyncIterator[images_pb2.ImageProgress]:
        async def chunks() -> AsyncIterator[bytes]:
            async for msg in request_iterator:
                if msg.data:
                    yield msg.data

        async for event in self.images.load(chunks()):
            yield _load_progress(event)

    async def Save(
        self, request: images_pb2.SaveImagesRequest, context: Context
    ) -> AsyncIterator[common_pb2.DataChunk]:
        async for chunk in self.images.save(list(request.references), request.format):
            yield common_pb2.DataChunk(data=chunk)

    async def Prune(
        self, request: images_pb2.PruneImagesRequest, context: Context
    ) -> images_pb2.PruneImagesResponse:
        report = await self.images.prune(all_images=request.all,
                                         filters=convert.filters(list(request.filters)))
        return images_pb2.PruneImagesResponse(
            deleted=report.deleted, untagged=report.untagged, space_reclaimed=report.reclaimed
        )

    async def Build(
        self,
        request_iterator: AsyncIterator[images_pb2.BuildInput],
        context: Context,
    ) -> AsyncIterator[images_pb2.BuildProgress]:
        async for message in builds.build(self.core, request_iterator):
            yield message

    async def PruneBuildCache(
        self, request: images_pb2.PruneBuildCacheRequest, context: Context
    ) -> images_pb2.PruneBuildCacheResponse:
        return await builds.prune(self.core, request)

    async def History(
        self, request: images_pb2.ImageHistoryRequest, context: Context
    ) -> images_pb2.ImageHistoryResponse:
        entries = await self.images.history(request.reference)
        return images_pb2.ImageHistoryResponse(entries=[
            images_pb2.HistoryEntry(id=e.id, created=from_rfc3339(e.created),
                                    created_by=e.created_by, size=e.size, comment=e.comment,
                                    empty_layer=e.empty_layer)
            for e in entries
        ])


def _load_progress(event: LoadEvent) -> images_pb2.ImageProgress:
    if event.action == "Loaded":
        names = [familiar(n) for n in event.names]
        status = "\n".join(f"Loaded image: {n}" for n in names) or (
            f"Loaded image ID: {event.item}"
        )
        return images_pb2.ImageProgress(
            status=status, image_id=event.item, references=list(event.names)
        )
    return images_pb2.ImageProgress(
        progress=common_pb2.Progress(
            id=event.item, action=event.action, current=event.size, total=event.size, done=True
        ),
        status=f"{event.action} {event.item}",
    )


def _credentials(auth: images_pb2.RegistryAuth) -> Credentials:
    return Credentials(auth.username, auth.password, auth.identity_token, auth.registry_token)


def _progress(event: ProgressEvent) -> images_pb2.ImageProgress:
    if event.id:
        return images_pb2.ImageProgress(progress=common_pb2.Progress(
            id=event.id, action=event.action, current=event.current, total=event.total,
            done=event.done))
    return images_pb2.ImageProgress(status=event.status)


async def _streamed(
    run: Callable[[Callable[[ProgressEvent], None]], Coroutine[Any, Any, Any]],
) -> AsyncIterator[images_pb2.ImageProgress | Any]:
    """Run an operation that reports progress; yield its events, then its result.

    When the client goes away (this generator is closed), the operation is cancelled.
    """
    queue: asyncio.Queue[ProgressEvent | None] = asyncio.Queue()
    task = asyncio.create_task(run(queue.put_nowait))
    task.add_done_callback(lambda _: queue.put_nowait(None))
    try:
        while (event := await queue.get()) is not None:
            yield _progress(event)
        yield task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
