"""``commit``: a container's changes become one new layer on top of its image.

The layer is an uncompressed tar of what the container added or changed (read from the
snapshot's upper dir through fds), with each deleted path as an OCI whiteout
(``dir/.wh.name``); its digest is also its diff ID. The new config is the container's
configuration (command, env, workdir, user, labels) over the image's, then the ``-c``
instructions; config and manifest go through the content store like any other image.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from servin.engine import fsarchive
from servin.engine.images import mediatypes
from servin.engine.images.changes import apply_changes
from servin.engine.images.store import ImageRecord
from servin.engine.linux.safepath import openat2
from servin.engine.store.content import BlobWriter, ContentStore
from servin.engine.store.leases import Lease

_OCI_LAYER_TYPES = {
    mediatypes.DOCKER_LAYER_GZIP: mediatypes.OCI_LAYER_GZIP,
    mediatypes.DOCKER_LAYER_TAR: mediatypes.OCI_LAYER_TAR,
}


@dataclass(frozen=True)
class CommitInputs:
    """What the new image is made of besides the layer."""

    base_config: dict[str, Any]  # the image config (with "config", "rootfs", "history")
    base_manifest: dict[str, Any]
    base_size: int
    container_config: dict[str, Any]  # Cmd, Entrypoint, Env, ... as the container ran
    changes: list[str]
    comment: str
    author: str
    created_by: str


class _BlobOut:
    """A write-only file over a content-store blob writer."""

    def __init__(self, writer: BlobWriter) -> None:
        self.writer = writer

    def write(self, data: bytes) -> int:
        self.writer.write(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


def write_layer(content: ContentStore, source: Path, changes: list[tuple[str, str]],
                lease: Lease | None = None) -> tuple[str, int]:
    """The changes as a layer blob: (digest, size). ``source`` holds the added/changed
    files (relative paths as in ``changes``); with ``lease``, the blob is held by it. Kinds:
    ``A``/``C`` an entry, ``D`` a whiteout, ``O`` a directory's opaque marker."""
    writer = content.writer(lease)
    try:
        tar = fsarchive.TarWriter(_BlobOut(writer))  # type: ignore[arg-type]  # write() is enough
        root = os.open(source, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for kind, path in changes:
                arcname = path.lstrip("/")
                if kind == "D":
                    tar.add_whiteout(arcname)
                    continue
                if kind == "O":
                    tar.add_opaque(arcname, os.stat(path.lstrip("/"), dir_fd=root,
                                                    follow_symlinks=False))
                    continue
                head, _, name = path.rpartition("/")
                try:
                    parent = openat2(root, head or "/", os.O_PATH | os.O_DIRECTORY)
                except FileNotFoundError:
                    continue  # gone since the listing (a running container)
                try:
                    tar.add_entry(parent, name, arcname, recursive=False)
                except FileNotFoundError:
                    continue
                finally:
                    os.close(parent)
        finally:
            os.close(root)
        tar.close()
        size = writer.size
        digest = writer.commit()
    except BaseException:
        writer.abort()
        raise
    return digest, size


def build_committed_image(content: ContentStore, layer_digest: str, layer_size: int,
                          inputs: CommitInputs) -> ImageRecord:
    """Write the config and manifest of the committed image; return its record."""
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    config = copy.deepcopy(inputs.base_config)
    image = dict(config.get("config") or {})
    image.update({k: v for k, v in inputs.container_config.items() if v not in (None, "")})
    apply_changes(image, inputs.changes)
    config["config"] = image
    config["created"] = created
    if inputs.author:
        config["author"] = inputs.author
    rootfs = dict(config.get("rootfs") or {"type": "layers"})
    rootfs["diff_ids"] = [*(rootfs.get("diff_ids") or []), layer_digest]
    config["rootfs"] = rootfs
    config["history"] = [*(config.get("history") or []), {
        "created": created,
        "created_by": inputs.created_by,
        **({"comment": inputs.comment} if inputs.comment else {}),
        **({"author": inputs.author} if inputs.author else {}),
    }]
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_digest = content.write_bytes(config_bytes)
    layers = [
        {**layer, "mediaType": _OCI_LAYER_TYPES.get(layer.get("mediaType", ""),
                                                    layer.get("mediaType"))}
        for layer in inputs.base_manifest.get("layers") or []
    ]
    layers.append({"mediaType": mediatypes.OCI_LAYER_TAR, "digest": layer_digest,
                   "size": layer_size})
    manifest = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": config_digest,
                   "size": len(config_bytes)},
        "layers": layers,
    }
    manifest_digest = content.write_bytes(json.dumps(manifest, separators=(",", ":")).encode())
    return ImageRecord(
        id=config_digest,
        manifest_digest=manifest_digest,
        manifest_media_type=mediatypes.OCI_MANIFEST,
        config_digest=config_digest,
        created=created,
        size=inputs.base_size + layer_size,
        labels=dict(image.get("Labels") or {}),
    )
