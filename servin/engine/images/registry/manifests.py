"""Image manifests and indexes as registries serve them, and platform selection.

Understood: the OCI image manifest and index, Docker's schema 2 manifest and manifest list.
Docker's schema 1 (signed or not) is refused with a message saying so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from servin.engine.images import mediatypes
from servin.engine.images.platforms import Platform
from servin.errors import InvalidArgument, NotFound

SCHEMA1 = {
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
}
ACCEPT = ", ".join([
    mediatypes.OCI_INDEX,
    mediatypes.DOCKER_MANIFEST_LIST,
    mediatypes.OCI_MANIFEST,
    mediatypes.DOCKER_MANIFEST,
    *sorted(SCHEMA1),  # asked for too, so a schema 1 image is named as such, not "unknown"
])
MAX_MANIFEST = 4 * 1024 * 1024  # the distribution spec's limit on a manifest's size
_LAYER_TYPES = {
    mediatypes.OCI_LAYER_TAR, mediatypes.OCI_LAYER_GZIP, mediatypes.OCI_LAYER_ZSTD,
    mediatypes.DOCKER_LAYER_TAR, mediatypes.DOCKER_LAYER_GZIP,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
}


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: what a manifest says about a blob."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    urls: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, d: Any, where: str) -> Descriptor:
        """Parse one descriptor, checking its types."""
        if not isinstance(d, dict):
            raise InvalidArgument(f"{where}: a descriptor is not an object")
        digest, size = d.get("digest"), d.get("size")
        if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
            raise InvalidArgument(f"{where}: unsupported or invalid digest {digest!r}")
        if not isinstance(size, int) or size < 0:
            raise InvalidArgument(f"{where}: invalid size {size!r} for {digest}")
        plat = d.get("platform")
        platform = None
        if isinstance(plat, dict):
            platform = Platform(str(plat.get("os", "")), str(plat.get("architecture", "")),
                                str(plat.get("variant", "")))
        urls = tuple(u for u in d.get("urls") or [] if isinstance(u, str))
        return cls(str(d.get("mediaType", "")), digest, size, platform, urls)

    def to_json(self) -> dict[str, Any]:
        """The descriptor as it appears in a manifest."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class Manifest:
    """An image manifest: one config and its layers."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Index:
    """An image index or manifest list: one manifest per platform."""

    media_type: str
    manifests: tuple[Descriptor, ...]


def parse(data: bytes, content_type: str, where: str) -> Manifest | Index:
    """Parse a manifest or index served with ``content_type``; refuse schema 1 and unknowns."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"{where}: the manifest is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{where}: the manifest is not a JSON object")
    media_type = str(doc.get("mediaType") or content_type.split(";")[0].strip())
    if media_type in SCHEMA1 or doc.get("schemaVersion") == 1:
        raise InvalidArgument(
            f"{where}: the image uses Docker's image manifest schema 1, which Servin (like "
            "current Docker) does not support: push it again with a newer tool")
    if doc.get("schemaVersion") != 2:
        raise InvalidArgument(f"{where}: unsupported manifest schemaVersion "
                              f"{doc.get('schemaVersion')!r}")
    if media_type in mediatypes.INDEXES or (not media_type and "manifests" in doc):
        items = doc.get("manifests")
        if not isinstance(items, list):
            raise InvalidArgument(f"{where}: the index has no manifests list")
        return Index(media_type or mediatypes.OCI_INDEX,
                     tuple(Descriptor.from_json(m, where) for m in items))
    if media_type in mediatypes.MANIFESTS or (not media_type and "config" in doc):
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise InvalidArgument(f"{where}: the manifest has no layers list")
        config = Descriptor.from_json(doc.get("config"), where)
        parsed = tuple(Descriptor.from_json(layer, where) for layer in layers)
        for layer in parsed:
            if layer.media_type and layer.media_type not in _LAYER_TYPES:
                raise InvalidArgument(f"{where}: unsupported layer media type "
                                      f"{layer.media_type!r}")
        return Manifest(media_type or mediatypes.OCI_MANIFEST, config, parsed)
    raise InvalidArgument(f"{where}: unsupported manifest media type {media_type!r}")


def _arm_variant_matches(want: Platform, have: Platform) -> bool:
    if want.variant == have.variant:
        return True
    # arm64 images often carry no variant (v8 is implied).
    return want.architecture == "arm64" and {want.variant, have.variant} <= {"", "v8"}


def matches(want: Platform, have: Platform | None) -> bool:
    """Whether an index entry's platform serves ``want``."""
    if have is None:
        return False
    return (have.os == want.os and have.architecture == want.architecture
            and (not want.variant or _arm_variant_matches(want, have)))


def select(index: Index, want: Platform, where: str) -> Descriptor:
    """The index entry for ``want``: an exact variant first, then one without variant."""
    candidates = [m for m in index.manifests if matches(want, m.platform)]
    if not candidates and want.variant:
        # A variant was implied (the host's), not asked for: any variant of the arch will do.
        loose = Platform(want.os, want.architecture)
        candidates = [m for m in index.manifests if matches(loose, m.platform)]
    candidates.sort(key=lambda m: m.platform.variant != want.variant if m.platform else True)
    if not candidates:
        offered = ", ".join(str(m.platform) for m in index.manifests if m.platform) or "none"
        raise NotFound(f"{where}: no matching manifest for {want} in the manifest list entries "
                       f"(offered: {offered})")
    return candidates[0]
