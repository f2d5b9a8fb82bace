"""``load``: a docker-archive or OCI layout tarball streamed into images.

Three steps, all under the operation's lease:
1. stage: every file of the tar stream goes into the content store as it passes
   (``staging.py``), hashed, and checked against its name under ``blobs/sha256/``;
2. plan: the index files say which images the blobs make (``docker_archive`` /
   ``oci_layout``); configs are read digest-verified and must list one diff ID per layer;
3. unpack every layer through the snapshotter's safe extraction (each verified against its
   diff ID), and only when every image of the archive got that far, record them all.
A failure at any step records nothing; the caller then collects the blobs and layers that
no image references, so a refused archive leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from servin.engine.crashpoints import crashpoint
from servin.engine.images import mediatypes
from servin.engine.images.archive import docker_archive, oci_layout
from servin.engine.images.archive.plan import ImagePlan, read_config
from servin.engine.images.archive.staging import stage
from servin.engine.images.importer import oci_manifest
from servin.engine.images.store import ImageRecord, ImageStore
from servin.engine.store import compression
from servin.engine.store.leases import Lease
from servin.engine.store.snapshots import Snapshotter
from servin.engine.store.snapshots.layers import chain_ids
from servin.errors import InvalidArgument


@dataclass(frozen=True)
class LoadEvent:
    """One progress report: a stored file, an unpacked layer, or a loaded image."""

    action: str  # "Loading", "Extracting", "Loaded"
    item: str  # archive path, short layer digest, or image ID
    size: int = 0
    names: tuple[str, ...] = ()  # normalised names, on "Loaded"


def load_archive(
    reader: BinaryIO,
    store: ImageStore,
    snapshots: Snapshotter,
    lease: Lease,
    report: Callable[[LoadEvent], None] = lambda event: None,
) -> list[tuple[ImageRecord, list[str]]]:
    """Load every image of the archive on ``reader``; return (record, names) of each. Blocking."""
    content = store.content
    staged = stage(
        reader, content, lease, lambda name, size: report(LoadEvent("Loading", name, size))
    )
    if "index.json" in staged.index_files:
        plans = oci_layout.plan_images(staged, content, lease)
        if "manifest.json" in staged.index_files:
            _merge_tags(plans, docker_archive.plan_images(staged, content))
    elif "manifest.json" in staged.index_files:
        plans = docker_archive.plan_images(staged, content)
    else:
        raise InvalidArgument(
            "not an image archive: it has neither manifest.json (docker-archive) "
            "nor index.json (OCI layout)"
        )
    if not plans:
        raise InvalidArgument("the archive holds no image")
    crashpoint("image.load.after-blobs")
    records = [_prepare(plan, store, snapshots, lease, report) for plan in plans]
    out: list[tuple[ImageRecord, list[str]]] = []
    for plan, record in zip(plans, records, strict=True):
        crashpoint("image.load.before-record")
        store.add(record, plan.names)
        names = [str(n) for n in plan.names]
        report(LoadEvent("Loaded", record.id, record.size, tuple(names)))
        out.append((store.get(record.id), names))
    return out


def _merge_tags(plans: list[ImagePlan], docker_plans: list[ImagePlan]) -> None:
    """Names from a docker 25+ archive's manifest.json, for images index.json left unnamed."""
    by_config = {p.config_digest: p for p in plans}
    for other in docker_plans:
        plan = by_config.get(other.config_digest)
        if plan is not None:
            plan.names.extend(n for n in other.names if n not in plan.names)


def _prepare(
    plan: ImagePlan,
    store: ImageStore,
    snapshots: Snapshotter,
    lease: Lease,
    report: Callable[[LoadEvent], None],
) -> ImageRecord:
    """Write the manifest if the archive had none, unpack the layers; the record to add."""
    content = store.content
    config = read_config(content, plan.config_digest)
    if not plan.manifest_digest:
        layers = []
        for layer in plan.layers:
            with content.open(layer.blob) as raw:
                kind, _ = compression.sniff(raw)
            layers.append({"mediaType": mediatypes.layer_media_type(kind),
                           "digest": layer.blob, "size": content.size(layer.blob)})
        plan.manifest_digest = content.write_bytes(
            oci_manifest(plan.config_digest, content.size(plan.config_digest), layers), lease=lease
        )
        plan.manifest_media_type = mediatypes.OCI_MANIFEST
    chains = chain_ids([layer.diff_id for layer in plan.layers])
    for chain in chains:
        lease.add_chain(chain)  # before unpacking: a collection must not take it meanwhile
    size = 0
    for i, layer in enumerate(plan.layers):
        report(LoadEvent("Extracting", layer.diff_id[7:19], content.size(layer.blob)))
        snapshots.ensure_layers(content, [(x.blob, x.diff_id) for x in plan.layers[: i + 1]])
        size += snapshots.layer_size(chains[i])
    return ImageRecord(
        id=plan.config_digest,
        manifest_digest=plan.manifest_digest,
        manifest_media_type=plan.manifest_media_type,
        config_digest=plan.config_digest,
        created=str(config.get("created") or ""),
        size=size,
        labels=dict((config.get("config") or {}).get("Labels") or {}),
    )
