"""``image import``: a rootfs tarball becomes a one-layer image (config + layer + manifest).

The raw bytes are stored as the layer blob with their own compression (plain, gzip or zstd);
a second pass decompresses them to compute the diff ID, to prove the input is a tar archive,
and to refuse entries that would write outside the rootfs. Nothing is recorded until every
check passed, and the caller collects what a failure left, so bad input leaves no image,
no blob and no layer.
"""

from __future__ import annotations

import gzip
import json
import tarfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from servin.engine.images import mediatypes
from servin.engine.images.changes import apply_changes
from servin.engine.images.platforms import Platform
from servin.engine.images.store import ImageRecord
from servin.engine.store import compression
from servin.engine.store.content import BlobWriter, ContentStore, HashingReader
from servin.engine.store.leases import Lease
from servin.errors import InvalidArgument

_CHUNK = 1 << 20


@dataclass(frozen=True)
class LayerFacts:
    """What the second pass learnt about a layer blob."""

    diff_id: str
    compression: compression.Compression
    unpacked_size: int


def inspect_layer(content: ContentStore, blob_digest: str) -> LayerFacts:
    """Decompress a stored blob, check it is a safe tar archive, return its diff ID and size."""
    with content.open(blob_digest) as raw:
        kind, reader = compression.sniff(raw)
        hashing = HashingReader(compression.decompressing_reader(reader, kind))
        size = 0
        try:
            # A reader with read() only is all tarfile's stream mode uses.
            with tarfile.open(fileobj=hashing, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    _check_member(member)
                    size += member.size if member.isreg() else 0
            hashing.drain()
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
            raise InvalidArgument(f"input is not a valid tar archive: {exc}") from exc
        except Exception as exc:  # zstandard raises its own ZstdError
            if type(exc).__name__ == "ZstdError":
                raise InvalidArgument(f"input is not valid zstd data: {exc}") from exc
            raise
    return LayerFacts(hashing.digest, kind, size)


def _check_member(member: tarfile.TarInfo) -> None:
    name = member.name
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        raise InvalidArgument(f"tar entry {name!r} points outside the root filesystem")
    if member.islnk():
        target = [p for p in member.linkname.split("/") if p not in ("", ".")]
        if ".." in target:
            raise InvalidArgument(f"hard link {name!r} points outside the root filesystem")


def oci_manifest(config_digest: str, config_size: int, layers: list[dict[str, Any]]) -> bytes:
    """The bytes of an OCI image manifest for a config and layer descriptors."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": config_digest,
                   "size": config_size},
        "layers": layers,
    }
    return json.dumps(manifest, separators=(",", ":")).encode()


def build_image(
    content: ContentStore,
    layer_digest: str,
    layer_size: int,
    facts: LayerFacts,
    *,
    platform: Platform,
    changes: list[str],
    comment: str,
    created_by: str,
    lease: Lease | None = None,
    created: str = "",
) -> ImageRecord:
    """Write the config and manifest blobs of a one-layer image; return its record
    (``created``: RFC 3339, default now)."""
    created = created or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    image_config: dict[str, Any] = {}
    apply_changes(image_config, changes)
    config: dict[str, Any] = {
        "created": created,
        "architecture": platform.architecture,
        "os": platform.os,
        "config": image_config,
        "rootfs": {"type": "layers", "diff_ids": [facts.diff_id]},
        "history": [
            {
                "created": created,
                "created_by": created_by,
                **({"comment": comment} if comment else {}),
            }
        ],
    }
    if platform.variant:
        config["variant"] = platform.variant
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_digest = content.write_bytes(config_bytes, lease=lease)
    layer = {
        "mediaType": mediatypes.layer_media_type(facts.compression),
        "digest": layer_digest,
        "size": layer_size,
    }
    manifest_digest = content.write_bytes(
        oci_manifest(config_digest, len(config_bytes), [layer]), lease=lease
    )
    return ImageRecord(
        id=config_digest,
        manifest_digest=manifest_digest,
        manifest_media_type=mediatypes.OCI_MANIFEST,
        config_digest=config_digest,
        created=created,
        size=facts.unpacked_size,
        labels=dict(image_config.get("Labels") or {}),
    )


def finish_import(
    content: ContentStore,
    writer: BlobWriter,
    *,
    platform: Platform,
    changes: list[str],
    comment: str,
    lease: Lease,
    created: str = "",
) -> ImageRecord:
    """Commit the streamed tarball as a layer blob and build the image around it.

    Every blob written is held by ``lease``; on failure the caller's garbage collection
    removes what no image references.
    """
    if writer.size == 0:
        writer.abort()
        raise InvalidArgument("input is empty: expected a tar archive")
    layer_digest = writer.commit()
    facts = inspect_layer(content, layer_digest)
    return build_image(
        content,
        layer_digest,
        writer.size,
        facts,
        platform=platform,
        changes=changes,
        comment=comment,
        created_by="servin image import",
        lease=lease,
        created=created,
    )
