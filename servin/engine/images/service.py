"""The image side of the engine core: what every front door calls for images."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from servin.engine.events import EventBus
from servin.engine.images.importer import finish_import
from servin.engine.images.platforms import parse_platform
from servin.engine.images.store import ImageRecord, ImageStore
from servin.errors import Conflict, InvalidArgument
from servin.reference import parse_reference


@dataclass(frozen=True)
class ImageDetails:
    """An image with its config and manifest read from the content store."""

    record: ImageRecord
    config: dict[str, Any]
    manifest: dict[str, Any]


class ImageService:
    """Import, list, inspect, tag and remove images."""

    def __init__(
        self,
        store: ImageStore,
        events: EventBus,
        in_use: Callable[[str], Sequence[Any]] = lambda image_id: (),
    ) -> None:
        self.store = store
        self.events = events
        # Containers created from an image (the image must outlive them).
        self.in_use = in_use

    async def import_rootfs(
        self,
        chunks: AsyncIterator[bytes],
        *,
        reference: str,
        changes: list[str],
        comment: str = "",
        platform: str = "",
    ) -> ImageRecord:
        """Stream a rootfs tarball into a new image; tag it when ``reference`` is given.

        Every argument is checked before the first byte is stored, and a failure at any point
        leaves no image and no blob behind.
        """
        name = parse_reference(reference) if reference else None
        if name is not None and name.digest:
            raise InvalidArgument("cannot import with a digest reference: give a tag")
        plat = parse_platform(platform)
        content = self.store.content
        writer = await asyncio.to_thread(content.writer)
        try:
            async for chunk in chunks:
                await asyncio.to_thread(writer.write, chunk)
        except BaseException:
            await asyncio.to_thread(writer.abort)
            raise
        record = await asyncio.to_thread(
            finish_import, content, writer, platform=plat, changes=changes, comment=comment
        )
        await asyncio.to_thread(self.store.add, record, [name] if name else [])
        record = await asyncio.to_thread(self.store.get, record.id)
        self.events.publish("image", "import", record.id, name=str(name.familiar()) if name else "")
        return record

    def list(self) -> list[ImageRecord]:
        """Every image."""
        return self.store.list()

    def inspect(self, text: str) -> ImageDetails:
        """An image with its config and manifest (digest-verified)."""
        record = self.store.resolve(text)
        return ImageDetails(record, self.store.config(record), self.store.manifest(record))

    def tag(self, source: str, target: str) -> None:
        """Give an image another name."""
        record = self.store.resolve(source)
        name = parse_reference(target)
        if name.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        self.store.tag(record.id, name)
        self.events.publish("image", "tag", record.id, name=name.familiar())

    def remove(self, text: str, *, force: bool = False) -> tuple[list[str], list[str]]:
        """Untag or delete an image as ``docker rmi`` does; return (untagged, deleted).

        By name: the name goes; the image goes too when it was its last name. By ID: an image
        known under several repositories needs ``force``.
        """
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
        untagged: list[str] = []
        if name is not None:
            self.store.untag(name)
            untagged.append(name)
            self.events.publish("image", "untag", record.id, name=name)
            if not last_name:
                return untagged, []
            for other in record.repo_digests:
                if other != name:
                    self.store.untag(other)
                    untagged.append(other)
                    self.events.publish("image", "untag", record.id, name=other)
        else:
            repos = {parse_reference(r, default_tag=False).repository for r in record.refs}
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
        return untagged, [record.id]


def _name_in(text: str, record: ImageRecord) -> str | None:
    """The normalised name ``text`` is, when it is one of the image's names."""
    try:
        name = str(parse_reference(text))
    except InvalidArgument:
        return None
    return name if name in record.refs else None
