"""What ``load`` will record: one plan per image found in an archive's index files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from servin.engine.store.content import ContentStore
from servin.errors import InvalidArgument
from servin.reference import Reference


@dataclass
class LayerPlan:
    """One layer blob of an image and the diff ID its config gives it."""

    blob: str
    diff_id: str
    media_type: str = ""  # empty: decided from the blob's compression
    size: int = 0


@dataclass
class ImagePlan:
    """An image to record: its config, layers, names, and its manifest when the archive had one."""

    config_digest: str
    layers: list[LayerPlan]
    names: list[Reference] = field(default_factory=list)
    manifest_digest: str = ""
    manifest_media_type: str = ""


def parse_json(data: bytes, what: str) -> Any:
    """JSON from an archive file, or a clear InvalidArgument."""
    try:
        return json.loads(data)
    except ValueError as exc:
        raise InvalidArgument(f"{what} is not valid JSON: {exc}") from None


def read_config(content: ContentStore, digest: str) -> dict[str, Any]:
    """An image config blob (digest-verified) that lists its layers' diff IDs."""
    config = parse_json(content.read_verified(digest), f"image config {digest}")
    if not isinstance(config, dict):
        raise InvalidArgument(f"image config {digest} is not a JSON object")
    diff_ids = (config.get("rootfs") or {}).get("diff_ids")
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise InvalidArgument(f"image config {digest} has no rootfs.diff_ids list")
    return config


def diff_ids(config: dict[str, Any]) -> list[str]:
    """The config's layer diff IDs, bottom first."""
    return list(config["rootfs"]["diff_ids"])
