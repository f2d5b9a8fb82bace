"""A synthetic image: N layers of random (incompressible) data, as an OCI image layout.

Random bytes keep the registry, the network path and the decompressor honest: nothing in the
layers compresses away. Layers are gzip (level 1: the generator stays fast, the pull side still
pays for a full gzip decode as with any real image).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
CHUNK = 1 << 20


def _blob(layout: Path, data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest[7:]).write_bytes(data)
    return digest, len(data)


def _layer(layout: Path, index: int, size: int) -> tuple[dict[str, object], str]:
    """Write one layer blob (a tar holding ``data/layerN.bin``); returns descriptor, diff ID."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"data/layer{index}.bin")
        info.size = size
        info.mtime = 1_700_000_000
        payload = io.BytesIO(os.urandom(size))
        tar.addfile(info, payload)
    tar_bytes = raw.getvalue()
    diff_id = "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
    compressed = gzip.compress(tar_bytes, compresslevel=1, mtime=0)
    digest, length = _blob(layout, compressed)
    return {"mediaType": OCI_LAYER_GZIP, "digest": digest, "size": length}, diff_id


def write_random_image(layout: Path, layers: int, layer_bytes: int) -> int:
    """Write the image into the OCI layout dir ``layout`` tagged ``latest``; returns its
    total compressed size in bytes."""
    shutil.rmtree(layout, ignore_errors=True)
    (layout / "blobs" / "sha256").mkdir(parents=True)
    descriptors, diff_ids = [], []
    for i in range(layers):
        desc, diff_id = _layer(layout, i, layer_bytes)
        descriptors.append(desc)
        diff_ids.append(diff_id)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    config_digest, config_size = _blob(layout, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": descriptors,
    }
    manifest_digest, manifest_size = _blob(layout, json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": "latest"},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return sum(int(d["size"]) for d in descriptors) + config_size  # type: ignore[call-overload]
