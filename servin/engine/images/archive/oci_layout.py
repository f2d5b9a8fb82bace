"""The OCI image layout in a tarball (``--format oci-archive``; podman's oci-archive too).

```
oci-layout          {"imageLayoutVersion": "1.0.0"}
index.json          an OCI index: one descriptor per image name (or one, unnamed)
blobs/sha256/<hex>  manifests, configs and layers, exactly as stored (so digests survive)
```

A name is read from the descriptor's ``io.containerd.image.name`` annotation, else from
``org.opencontainers.image.ref.name`` when that holds a full reference (``localhost/bb:1``;
a bare tag names no repository and is ignored). An index inside the index is resolved to
the manifest for this host's platform.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from typing import Any, BinaryIO

from servin.engine.images import mediatypes
from servin.engine.images.archive.plan import ImagePlan, LayerPlan, parse_json, read_config
from servin.engine.images.archive.staging import Staged
from servin.engine.images.platforms import host_platform
from servin.engine.store.content import ContentStore, check_digest
from servin.engine.store.leases import Lease
from servin.errors import InvalidArgument, NotFound
from servin.reference import Reference, parse_reference

REF_NAME = "org.opencontainers.image.ref.name"
IMAGE_NAME = "io.containerd.image.name"
LAYOUT_VERSION = "1.0.0"


def _blob(content: ContentStore, lease: Lease, digest: str, what: str) -> bytes:
    check_digest(digest)
    lease.add_blob(digest)  # before looking: a collection must not take it meanwhile
    try:
        return content.read_verified(digest)
    except NotFound:
        raise InvalidArgument(f"{what} {digest} is missing from the archive") from None


def _name(annotations: dict[str, Any]) -> Reference | None:
    for key in (IMAGE_NAME, REF_NAME):
        value = str(annotations.get(key) or "")
        if not value or (key == REF_NAME and not any(c in value for c in ":/@")):
            continue
        try:
            return parse_reference(value)
        except InvalidArgument as exc:
            raise InvalidArgument(f"index.json: invalid image name {value!r}: {exc}") from None
    return None


def _pick_platform(index: dict[str, Any], digest: str) -> dict[str, Any]:
    host = host_platform()
    candidates = [m for m in index.get("manifests") or [] if isinstance(m, dict)]
    for m in candidates:
        p = m.get("platform") or {}
        if p.get("os") == host.os and p.get("architecture") == host.architecture:
            return m
    raise InvalidArgument(f"image index {digest} has no manifest for {host}")


def plan_images(staged: Staged, content: ContentStore, lease: Lease) -> list[ImagePlan]:
    """The images index.json describes (manifest digests kept as they are)."""
    layout = parse_json(staged.index_files.get("oci-layout", b"{}"), "oci-layout")
    version = layout.get("imageLayoutVersion") if isinstance(layout, dict) else None
    if version is not None and version != LAYOUT_VERSION:
        raise InvalidArgument(f"unsupported OCI layout version {version!r}")
    index = parse_json(staged.index_files["index.json"], "index.json")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise InvalidArgument("index.json has no manifests list")
    by_manifest: dict[str, ImagePlan] = {}
    for desc in index["manifests"]:
        if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
            raise InvalidArgument("index.json: a descriptor has no digest")
        name = _name(desc.get("annotations") or {})
        digest, media_type = desc["digest"], str(desc.get("mediaType") or "")
        data = _blob(content, lease, digest, "manifest")
        doc = parse_json(data, f"manifest {digest}")
        media_type = media_type or str(doc.get("mediaType") or mediatypes.OCI_MANIFEST)
        if media_type in mediatypes.INDEXES or "manifests" in doc:
            chosen = _pick_platform(doc, digest)
            digest = str(chosen.get("digest"))
            media_type = str(chosen.get("mediaType") or mediatypes.OCI_MANIFEST)
            doc = parse_json(_blob(content, lease, digest, "manifest"), f"manifest {digest}")
        if media_type not in mediatypes.MANIFESTS:
            raise InvalidArgument(f"manifest {digest} has unsupported media type {media_type!r}")
        plan = by_manifest.get(digest)
        if plan is None:
            plan = by_manifest[digest] = _plan_manifest(content, lease, digest, media_type, doc)
        if name is not None and name not in plan.names:
            plan.names.append(name)
    return list(by_manifest.values())


def _plan_manifest(
    content: ContentStore, lease: Lease, digest: str, media_type: str, doc: dict[str, Any]
) -> ImagePlan:
    config_desc = doc.get("config") or {}
    config_digest = str(config_desc.get("digest") or "")
    _blob(content, lease, config_digest, "image config")
    ids = read_config(content, config_digest)["rootfs"]["diff_ids"]
    layers = doc.get("layers") or []
    if len(layers) != len(ids):
        raise InvalidArgument(
            f"manifest {digest} lists {len(layers)} layers, its config {len(ids)}"
        )
    plans = []
    for layer, diff_id in zip(layers, ids, strict=True):
        blob = str(layer.get("digest") or "")
        check_digest(blob)
        lease.add_blob(blob)
        if not content.exists(blob):
            raise InvalidArgument(f"layer {blob} is missing from the archive")
        plans.append(LayerPlan(blob, diff_id, str(layer.get("mediaType") or ""),
                               int(layer.get("size") or 0)))
    return ImagePlan(config_digest, plans, [], digest, media_type)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write(
    out: BinaryIO,
    content: ContentStore,
    images: list[tuple[str, str, list[str]]],
    progress: Callable[[str], None] = lambda line: None,
) -> None:
    """Write an OCI layout tarball of ``images`` (manifest digest, media type, full names).

    Every blob is copied as stored, so manifest digests and image IDs survive. Blocking.
    """
    descriptors: list[dict[str, Any]] = []
    written: set[str] = set()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_dir("blobs/"))
        tar.addfile(_dir("blobs/sha256/"))
        for manifest_digest, media_type, names in images:
            manifest_bytes = content.read_verified(manifest_digest)
            manifest = json.loads(manifest_bytes)
            blobs = [manifest["config"]["digest"]]
            blobs += [layer["digest"] for layer in manifest.get("layers") or []]
            for digest in blobs:
                if digest in written:
                    continue
                progress(f"Saving blob {digest[7:19]}")
                info = tarfile.TarInfo(f"blobs/sha256/{digest.removeprefix('sha256:')}")
                info.size = content.size(digest)
                info.mode = 0o644
                with content.open(digest) as f:
                    tar.addfile(info, f)
                written.add(digest)
            if manifest_digest not in written:
                _add_bytes(tar, f"blobs/sha256/{manifest_digest[7:]}", manifest_bytes)
                written.add(manifest_digest)
            base = {"mediaType": media_type, "digest": manifest_digest,
                    "size": len(manifest_bytes)}
            for name in names or [""]:
                desc = dict(base)
                if name:
                    ref = parse_reference(name)
                    desc["annotations"] = {IMAGE_NAME: str(ref), REF_NAME: ref.tag or str(ref)}
                descriptors.append(desc)
        index = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": descriptors}
        _add_bytes(tar, "index.json", json.dumps(index, separators=(",", ":")).encode())
        _add_bytes(tar, "oci-layout", json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode())


def _dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info
