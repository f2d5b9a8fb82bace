"""Garbage collection: blobs and unpacked layers that nothing references any more.

Roots (what is kept):
- every image record: its manifest (and, for an index, the child manifests), its config,
  its layer blobs, and the chain ID of every layer its config lists;
- every container snapshot: the layer chains it stands on;
- every open lease (``servin.engine.store.leases``): what an import, load, pull or container
  create is writing or about to use;
- whatever the extra root providers name (the build cache's layers).
A kept layer keeps the layers below it. Everything else in ``content/blobs`` and the
snapshotter's layer index goes.

The collector decides and unpublishes while holding the lease lock (see ``leases.py`` for
why that makes it safe against concurrent operations); deleting the unpublished layer
directories happens afterwards, outside the lock. Blocking: call it from a worker thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servin.engine.images.store import ImageRecord, ImageStore
from servin.engine.store.snapshots import Snapshotter
from servin.engine.store.snapshots.layers import chain_ids
from servin.errors import NotFound

log = logging.getLogger(__name__)


@dataclass
class Collected:
    """What one collection removed."""

    blobs: list[str] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)
    reclaimed: int = 0  # bytes: blob sizes plus the file content of unpacked layers


def image_chains(store: ImageStore, record: ImageRecord) -> list[str]:
    """The chain ID of every layer of an image, bottom first ([] when its config is unreadable)."""
    try:
        config = store.config(record)
    except (NotFound, ValueError, OSError):
        return []
    except Exception as exc:  # BlobCorrupted: the image is broken, its layers are not roots
        log.warning("image config unreadable", extra={"image": record.id, "error": str(exc)})
        return []
    return chain_ids(list((config.get("rootfs") or {}).get("diff_ids") or []))


def referenced_blobs(store: ImageStore, record: ImageRecord) -> set[str]:
    """Every blob an image needs: manifest (or index and its children), config, layers."""
    keep = {record.manifest_digest, record.config_digest}
    pending = [record.manifest_digest]
    while pending:
        digest = pending.pop()
        manifest = _read_json(store, digest)
        if manifest is None:
            continue
        for child in manifest.get("manifests") or []:
            if child.get("digest") and child["digest"] not in keep:
                keep.add(child["digest"])
                pending.append(child["digest"])
        if (manifest.get("config") or {}).get("digest"):
            keep.add(manifest["config"]["digest"])
        keep.update(layer["digest"] for layer in manifest.get("layers") or [] if "digest" in layer)
    return keep


def _read_json(store: ImageStore, digest: str) -> dict[str, Any] | None:
    try:
        with store.content.open(digest) as f:
            value = json.loads(f.read())
    except (NotFound, ValueError, OSError):
        return None
    return value if isinstance(value, dict) else None


RootProvider = Callable[[], tuple[set[str], set[str]]]  # -> (blob digests, chain IDs)


def collect(store: ImageStore, snapshots: Snapshotter,
            extra_roots: Iterable[RootProvider] = ()) -> Collected:
    """Remove every blob and unpacked layer that no image, container snapshot, lease or extra
    root provider holds."""
    content = store.content
    done = Collected()
    trash: list[Path] = []
    with content.leases.lock:
        keep_blobs = content.leases.held_blobs()
        keep_chains = content.leases.held_chains()
        for provider in extra_roots:
            blobs, chains = provider()
            keep_blobs |= blobs
            keep_chains |= chains
        for record in store.list():
            keep_blobs |= referenced_blobs(store, record)
            keep_chains.update(image_chains(store, record))
        for digest in list(content.digests()):
            if digest in keep_blobs:
                continue
            with contextlib.suppress(NotFound):
                done.reclaimed += content.size(digest)
            content.delete(digest)
            done.blobs.append(digest)
        for chain, size, moved in snapshots.unpublish_unused(keep_chains):
            done.layers.append(chain)
            done.reclaimed += size
            trash.append(moved)
    for path in trash:
        snapshots.purge(path)
    if done.blobs or done.layers:
        log.info(
            "garbage collected",
            extra={"blobs": len(done.blobs), "layers": len(done.layers), "bytes": done.reclaimed},
        )
    return done
