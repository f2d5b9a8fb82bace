"""The docker-archive format (what ``docker save`` and ``podman save`` write).

```
manifest.json   [{"Config": "<hex>.json", "RepoTags": ["busybox:latest"],
                  "Layers": ["<hex>/layer.tar", ...]}, ...]
repositories    {"busybox": {"latest": "<top layer dir>"}}   (legacy, informative)
<hex>.json      the image config; its sha256 is the image ID
<dir>/layer.tar one layer, an uncompressed tar: its sha256 is the layer's diff ID
```

Paths in manifest.json are archive paths: podman writes ``<diff id hex>.tar`` and links
``<dir>/layer.tar`` to it, docker 25+ writes ``blobs/sha256/<hex>``; the loader follows
whatever the manifest names. Servin writes the layout above, layers decompressed.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from servin.engine.images.archive.plan import ImagePlan, LayerPlan, parse_json, read_config
from servin.engine.images.archive.staging import Staged
from servin.engine.store import compression
from servin.engine.store.content import ContentStore, HashingReader
from servin.errors import Internal, InvalidArgument
from servin.reference import Reference, familiar, parse_reference

_CHUNK = 1 << 20


_CONFIG_NAME = re.compile(r"(?:.*/)?(?:sha256[:/])?([0-9a-f]{64})(?:\.json)?")


def check_config_name(name: str, digest: str) -> None:
    """A config's file name is its digest (``<hex>.json``, ``blobs/sha256/<hex>``), as every
    ``docker save`` writes it: the name is the image ID the archive claims, so a config whose
    content hashes to something else is refused."""
    match = _CONFIG_NAME.fullmatch(name)
    if match is None:
        raise InvalidArgument(f"manifest.json: config {name!r} is not named by its digest")
    if f"sha256:{match.group(1)}" != digest:
        raise InvalidArgument(f"manifest.json: config {name!r} hashes to {digest}, "
                              "not to its name")


def plan_images(staged: Staged, content: ContentStore) -> list[ImagePlan]:
    """The images manifest.json describes, with their blobs already staged."""
    entries = parse_json(staged.index_files["manifest.json"], "manifest.json")
    if not isinstance(entries, list):
        raise InvalidArgument("manifest.json is not a list of images")
    plans: list[ImagePlan] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise InvalidArgument("manifest.json: an entry has no Config")
        layers = entry.get("Layers") or []
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise InvalidArgument("manifest.json: Layers must be a list of paths")
        config_digest = staged.digest_of(entry["Config"])
        check_config_name(entry["Config"], config_digest)
        config = read_config(content, config_digest)
        ids = config["rootfs"]["diff_ids"]
        if len(ids) != len(layers):
            raise InvalidArgument(
                f"manifest.json lists {len(layers)} layers for image {config_digest}, "
                f"its config {len(ids)}"
            )
        names: list[Reference] = []
        for tag in entry.get("RepoTags") or []:
            try:
                names.append(parse_reference(str(tag)))
            except InvalidArgument as exc:
                raise InvalidArgument(f"manifest.json: invalid tag {tag!r}: {exc}") from None
        plans.append(
            ImagePlan(
                config_digest=config_digest,
                layers=[
                    LayerPlan(staged.digest_of(path), diff_id)
                    for path, diff_id in zip(layers, ids, strict=True)
                ],
                names=names,
            )
        )
    return plans


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_stream(tar: tarfile.TarFile, name: str, size: int, source: BinaryIO) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    tar.addfile(info, source)


def write(
    out: BinaryIO,
    content: ContentStore,
    images: list[tuple[str, dict[str, Any], list[str]]],
    scratch: Path,
    progress: Callable[[str], None] = lambda line: None,
) -> None:
    """Write a docker-archive of ``images`` (config digest, manifest, familiar tags) to ``out``.

    Layers are written uncompressed (a compressed blob is decompressed into ``scratch``
    first, to learn its size, and checked against its diff ID). Blocking.
    """
    entries: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    written: set[str] = set()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for config_digest, manifest, tags in images:
            config = read_config(content, config_digest)
            ids = config["rootfs"]["diff_ids"]
            blobs = [layer["digest"] for layer in manifest.get("layers") or []]
            if len(blobs) != len(ids):
                raise Internal(f"image {config_digest}: manifest and config disagree on layers")
            paths: list[str] = []
            for blob, diff_id in zip(blobs, ids, strict=True):
                path = f"{diff_id.removeprefix('sha256:')}/layer.tar"
                paths.append(path)
                if path not in written:
                    progress(f"Saving layer {diff_id[7:19]}")
                    _write_layer(tar, path, content, blob, diff_id, scratch)
                    written.add(path)
            config_name = f"{config_digest.removeprefix('sha256:')}.json"
            if config_name not in written:
                _add_bytes(tar, config_name, content.read_verified(config_digest))
                written.add(config_name)
            entries.append({"Config": config_name, "RepoTags": tags or None, "Layers": paths})
            for tag in tags:
                repo, _, name = familiar(tag).rpartition(":")
                if paths:
                    repositories.setdefault(repo, {})[name] = paths[-1].split("/")[0]
        _add_bytes(tar, "manifest.json", json.dumps(entries, separators=(",", ":")).encode())
        _add_bytes(tar, "repositories", json.dumps(repositories, separators=(",", ":")).encode())


def _write_layer(
    tar: tarfile.TarFile, path: str, content: ContentStore, blob: str, diff_id: str, scratch: Path
) -> None:
    with content.open(blob) as raw:
        kind, reader = compression.sniff(raw)
        if kind == "none":
            size = content.size(blob)
            hashing = HashingReader(reader)
            _add_stream(tar, path, size, hashing)  # type: ignore[arg-type]  # read() suffices
            if hashing.digest != diff_id:
                raise Internal(f"layer blob {blob} does not match diff ID {diff_id}")
            return
        fd, name = tempfile.mkstemp(dir=scratch, prefix="layer-", suffix=".tar")
        try:
            with os.fdopen(fd, "w+b") as spool:
                plain = HashingReader(compression.decompressing_reader(reader, kind))
                while chunk := plain.read(_CHUNK):
                    spool.write(chunk)
                if plain.digest != diff_id:
                    raise Internal(f"layer blob {blob} does not decompress to diff ID {diff_id}")
                size = spool.tell()
                spool.seek(0)
                _add_stream(tar, path, size, spool)
        finally:
            os.unlink(name)
