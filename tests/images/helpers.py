"""Archives built by hand for the save/load tests, and a look at what a daemon's store holds."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from tests.daemon import DaemonProcess


def sha256(data: bytes) -> str:
    """The digest string of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_config(layers: list[bytes], **extra: Any) -> bytes:
    """An image config whose diff IDs are the digests of the (uncompressed) ``layers``."""
    config = {
        "created": "2024-01-02T03:04:05Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"], **extra},
        "rootfs": {"type": "layers", "diff_ids": [sha256(layer) for layer in layers]},
        "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "test"} for _ in layers],
    }
    return json.dumps(config).encode()


def tar_of(files: dict[str, bytes]) -> bytes:
    """A tarball holding ``files`` (name -> content) in order."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def docker_archive(layers: list[bytes], tags: list[str], config: bytes | None = None) -> bytes:
    """A docker-archive (``docker save``'s classic layout) of one image."""
    config = config if config is not None else image_config(layers)
    files: dict[str, bytes] = {}
    paths = []
    for layer in layers:
        path = f"{sha256(layer)[7:]}/layer.tar"
        files[path] = layer
        paths.append(path)
    config_name = f"{sha256(config)[7:]}.json"
    files[config_name] = config
    files["manifest.json"] = json.dumps(
        [{"Config": config_name, "RepoTags": tags, "Layers": paths}]
    ).encode()
    return tar_of(files)


def oci_archive(layers: list[bytes], name: str) -> bytes:
    """An OCI image layout tarball of one image named ``name``."""
    config = image_config(layers)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256(layer), "size": len(layer)} for layer in layers],
    }).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha256(manifest), "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": name}}]}).encode()
    files = {f"blobs/sha256/{sha256(b)[7:]}": b for b in [*layers, config, manifest]}
    files["index.json"] = index
    files["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
    return tar_of(files)


def store_state(d: DaemonProcess) -> dict[str, list[str]]:
    """Everything the daemon's store holds: image IDs, blobs, layers, leftovers."""
    root = d.root
    return {
        "images": d.cli("images", "-aq", "--no-trunc", check=True).stdout.split(),
        "blobs": sorted(p.name for p in (root / "content/blobs/sha256").iterdir()),
        "ingest": sorted(p.name for p in (root / "content/ingest").iterdir()),
        "layers": sorted(p.name for p in (root / "snapshots/layers").iterdir()),
        "chains": sorted(p.name for p in (root / "snapshots/chains").iterdir()),
        "tmp": sorted(p.name for p in (root / "snapshots/tmp").iterdir()),
    }


EMPTY_STORE = {"images": [], "blobs": [], "ingest": [], "layers": [], "chains": [], "tmp": []}


def tree(path: Path) -> dict[str, bytes | None]:
    """A directory's files and their contents (None for directories), for before/after checks."""
    out: dict[str, bytes | None] = {}
    for p in sorted(path.rglob("*")):
        out[str(p.relative_to(path))] = None if p.is_dir() else p.read_bytes()
    return out
