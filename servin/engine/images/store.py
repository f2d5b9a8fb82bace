"""Image records in the metadata store, their names, and the blobs they own."""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass, field
from typing import Any

from servin.engine.store.content import ContentStore
from servin.engine.store.metadata import MetadataStore
from servin.errors import Conflict, InvalidArgument, NotFound
from servin.reference import Reference, looks_like_id, parse_reference


@dataclass
class ImageRecord:
    """One image: its config digest is its ID."""

    id: str
    manifest_digest: str
    manifest_media_type: str
    config_digest: str
    created: str
    size: int
    labels: dict[str, str] = field(default_factory=dict)
    refs: list[str] = field(default_factory=list)  # normalised names pointing at it

    @property
    def short_id(self) -> str:
        """The 12-hex-digit form docker prints."""
        return self.id.removeprefix("sha256:")[:12]

    @property
    def repo_tags(self) -> list[str]:
        """Names of the form repo:tag."""
        return [r for r in self.refs if "@" not in r]

    @property
    def repo_digests(self) -> list[str]:
        """Names of the form repo@digest."""
        return [r for r in self.refs if "@" in r]


class ImageStore:
    """Queries and updates of image records; blobs live in the content store."""

    def __init__(self, meta: MetadataStore, content: ContentStore) -> None:
        self.meta = meta
        self.content = content

    def _records(self, where: str = "", params: tuple[Any, ...] = ()) -> builtins.list[ImageRecord]:
        rows = self.meta.query(f"SELECT * FROM images {where} ORDER BY added_at, id", params)
        refs: dict[str, list[str]] = {}
        for ref in self.meta.query("SELECT name, image_id FROM image_refs ORDER BY name"):
            refs.setdefault(ref["image_id"], []).append(ref["name"])
        return [
            ImageRecord(
                id=r["id"],
                manifest_digest=r["manifest_digest"],
                manifest_media_type=r["manifest_media_type"],
                config_digest=r["config_digest"],
                created=r["created"],
                size=r["size"],
                labels=json.loads(r["labels"]),
                refs=refs.get(r["id"], []),
            )
            for r in rows
        ]

    def list(self) -> builtins.list[ImageRecord]:
        """Every image."""
        return self._records()

    def get(self, image_id: str) -> ImageRecord:
        """An image by its full ID."""
        found = self._records("WHERE id = ?", (image_id,))
        if not found:
            raise NotFound(f"No such image: {image_id}")
        return found[0]

    def resolve(self, text: str) -> ImageRecord:
        """Find an image by name (``busybox``, ``repo:tag``, ``repo@digest``), ID or ID prefix."""
        ref: Reference | None
        try:
            ref = parse_reference(text)
        except InvalidArgument:
            ref = None
        if ref is not None:
            row = self.meta.query_one("SELECT image_id FROM image_refs WHERE name = ?", (str(ref),))
            if row:
                return self.get(row["image_id"])
        if looks_like_id(text):
            hexpart = text.removeprefix("sha256:")
            matches = self._records("WHERE id LIKE ?", (f"sha256:{hexpart}%",))
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise Conflict(f"image ID prefix {text!r} is ambiguous ({len(matches)} images)")
        if ref is None and not looks_like_id(text):
            parse_reference(text)  # raises the reference's own message
        raise NotFound(f"No such image: {text}")

    def add(self, record: ImageRecord, names: builtins.list[Reference]) -> None:
        """Record an image (idempotent) and point ``names`` at it, moving them if needed."""
        with self.meta.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO images (id, manifest_digest, manifest_media_type,"
                " config_digest, created, size, labels) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.manifest_digest,
                    record.manifest_media_type,
                    record.config_digest,
                    record.created,
                    record.size,
                    json.dumps(record.labels),
                ),
            )
            for name in names:
                db.execute(
                    "INSERT INTO image_refs (name, image_id, kind) VALUES (?, ?, ?)"
                    " ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
                    (str(name), record.id, "digest" if name.digest else "tag"),
                )

    def tag(self, image_id: str, name: Reference) -> None:
        """Point ``name`` at the image."""
        self.add(self.get(image_id), [name])

    def untag(self, name: str) -> None:
        """Remove one name."""
        with self.meta.transaction() as db:
            db.execute("DELETE FROM image_refs WHERE name = ?", (name,))

    def delete(self, image_id: str) -> None:
        """Remove the record and its names; its blobs and layers go at the next collection
        (``servin.engine.images.gc``), which knows what other images and operations hold."""
        self.get(image_id)
        with self.meta.transaction() as db:
            db.execute("DELETE FROM images WHERE id = ?", (image_id,))

    def config(self, record: ImageRecord) -> dict[str, Any]:
        """The image's OCI config, verified against its digest."""
        config: dict[str, Any] = json.loads(self.content.read_verified(record.config_digest))
        return config

    def manifest(self, record: ImageRecord) -> dict[str, Any]:
        """The image's manifest, verified against its digest."""
        manifest: dict[str, Any] = json.loads(
            self.content.read_verified(record.manifest_digest))
        return manifest
