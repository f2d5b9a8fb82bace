"""runtime.v1.ImageService: ListImages, ImageStatus, PullImage, RemoveImage, ImageFsInfo.

Over the core's image service, so the kubelet's pulls go through the same mirrors, auth and
store as ``servin pull``. Names are shown normalised (``docker.io/library/busybox:latest``),
as containerd shows them.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from servin.api.cri.runtime.v1 import api_pb2, api_pb2_grpc
from servin.engine.engine import CoreAPI
from servin.engine.images.registry.auth import Credentials
from servin.engine.images.store import ImageRecord
from servin.engine.server.grpc.rpc import Context
from servin.errors import InvalidArgument, NotFound


def _user(config: dict[str, Any]) -> tuple[int | None, str]:
    """The image's user as the CRI wants it: a numeric uid, else a name."""
    user = str((config.get("config") or {}).get("User") or "")
    name = user.split(":", 1)[0]
    if name.isdigit():
        return int(name), ""
    return None, name


def _credentials(auth: api_pb2.AuthConfig) -> Credentials | None:
    username, password = auth.username, auth.password
    if auth.auth and not username:
        try:
            decoded = base64.b64decode(auth.auth, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        username, sep, password = decoded.partition(":")
        if not sep:
            raise InvalidArgument("auth: not base64 of user:password")
    creds = Credentials(username, password, auth.identity_token, auth.registry_token)
    return None if creds.empty else creds


class ImageServicer(api_pb2_grpc.ImageServiceServicer):
    """The CRI image service."""

    def __init__(self, core: CoreAPI) -> None:
        self.core = core

    async def _image(self, record: ImageRecord, verbose: bool = False
                     ) -> tuple[api_pb2.Image, dict[str, str]]:
        details = await self.core.images.inspect(record.id)
        uid, username = _user(details.config)
        image = api_pb2.Image(
            id=record.id, repo_tags=record.repo_tags, repo_digests=record.repo_digests,
            size=record.size, username=username,
            spec=api_pb2.ImageSpec(image=record.id),
            pinned=False,
        )
        if uid is not None:
            image.uid.value = uid
        info: dict[str, str] = {}
        if verbose:
            info["info"] = json.dumps({"id": record.id, "config": details.config,
                                       "manifestDigest": record.manifest_digest,
                                       "refs": record.refs})
        return image, info

    async def ListImages(self, request: api_pb2.ListImagesRequest,
                         context: Context) -> api_pb2.ListImagesResponse:
        wanted = request.filter.image.image if request.HasField("filter") else ""
        if wanted:
            try:
                records = [await self.core.images.get(wanted)]
            except NotFound:
                records = []
        else:
            records = await self.core.images.list()
        images = []
        for record in records:
            try:
                images.append((await self._image(record))[0])
            except NotFound:
                continue  # removed meanwhile
        return api_pb2.ListImagesResponse(images=images)

    async def ImageStatus(self, request: api_pb2.ImageStatusRequest,
                          context: Context) -> api_pb2.ImageStatusResponse:
        ref = request.image.image
        if not ref:
            raise InvalidArgument("ImageStatus: image is required")
        try:
            record = await self.core.images.get(ref)
            image, info = await self._image(record, request.verbose)
        except NotFound:
            return api_pb2.ImageStatusResponse()  # the CRI's "not present": no image, no error
        return api_pb2.ImageStatusResponse(image=image, info=info)

    async def PullImage(self, request: api_pb2.PullImageRequest,
                        context: Context) -> api_pb2.PullImageResponse:
        ref = request.image.image
        if not ref:
            raise InvalidArgument("PullImage: image is required")
        creds = _credentials(request.auth) if request.HasField("auth") else None
        result = await self.core.images.pull(ref, creds=creds)
        return api_pb2.PullImageResponse(image_ref=result.record.id)

    async def RemoveImage(self, request: api_pb2.RemoveImageRequest,
                          context: Context) -> api_pb2.RemoveImageResponse:
        ref = request.image.image
        if not ref:
            raise InvalidArgument("RemoveImage: image is required")
        try:
            record = await self.core.images.get(ref)
            # The CRI removes the image under every name (containerd does); containers made
            # from it keep their layers.
            await self.core.images.remove(record.id, force=True)
        except NotFound:
            pass  # idempotent, as the CRI asks
        return api_pb2.RemoveImageResponse()

    async def ImageFsInfo(self, request: api_pb2.ImageFsInfoRequest,
                          context: Context) -> api_pb2.ImageFsInfoResponse:
        fs = await self.core.system.image_fs()
        usage = api_pb2.FilesystemUsage(
            timestamp=fs.timestamp_ns,
            fs_id=api_pb2.FilesystemIdentifier(mountpoint=fs.mountpoint),
            used_bytes=api_pb2.UInt64Value(value=fs.used_bytes),
            inodes_used=api_pb2.UInt64Value(value=fs.inodes_used),
        )
        return api_pb2.ImageFsInfoResponse(image_filesystems=[usage])
