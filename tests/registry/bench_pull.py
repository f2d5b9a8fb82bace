"""Pull throughput: Servin against ``skopeo copy`` of the same image from a local registry.

Run as root: ``python -m tests.registry.bench_pull [--runs 3] [--layer-mb 40]``. It starts a
plain registry on 127.0.0.1, pushes a generated 5-layer image (each layer half random,
half compressible text, gzip), then times, ``--runs`` times each, a pull into a fresh
Servin daemon (download, verify, unpack) and ``skopeo copy docker://... dir:`` (download and
verify only), and prints the medians and the ratio.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import shutil
import statistics
import subprocess
import tarfile
import time

from tests.daemon import DaemonProcess, short_tmpdir
from tests.registry.registryd import digest_of, put_manifest, start_registry, upload_blob

LAYERS = 5


def make_layer(index: int, megabytes: int) -> tuple[bytes, str]:
    """A gzip layer blob and its diff ID."""
    half = megabytes * 1024 * 1024 // 2
    text = b"".join(f"line {i} of layer {index}: some text that compresses\n".encode()
                    for i in range(half // 48 + 1))[:half]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in ((f"layer{index}/random.bin", os.urandom(half)),
                           (f"layer{index}/text.txt", text)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    plain = raw.getvalue()
    return gzip.compress(plain, compresslevel=6), digest_of(plain)


def push_image(registry, repo: str, megabytes: int) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    layers = []
    diff_ids = []
    for i in range(LAYERS):
        blob, diff_id = make_layer(i, megabytes)
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "digest": upload_blob(registry, repo, blob), "size": len(blob)})
        diff_ids.append(diff_id)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": upload_blob(registry, repo, config), "size": len(config)},
        "layers": layers,
    }
    put_manifest(registry, repo, "bench", manifest)
    return f"{registry.host}/{repo}:bench", sum(layer["size"] for layer in layers)


def time_servin(ref: str) -> float:
    d = DaemonProcess(short_tmpdir()).start()
    try:
        start = time.monotonic()
        d.cli("pull", "-q", ref, check=True, timeout=600)
        return time.monotonic() - start
    finally:
        d.cleanup()


def time_skopeo(ref: str) -> float:
    dest = short_tmpdir("sv-skopeo-")
    try:
        start = time.monotonic()
        subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}",
                        f"dir:{dest}/image"], check=True, timeout=600)
        return time.monotonic() - start
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--layer-mb", type=int, default=40, help="uncompressed MB per layer")
    args = parser.parse_args()
    registry = start_registry(short_tmpdir("sv-bench-"))
    try:
        ref, size = push_image(registry, "bench/five", args.layer_mb)
        servin = [time_servin(ref) for _ in range(args.runs)]
        skopeo = [time_skopeo(ref) for _ in range(args.runs)]
    finally:
        registry.stop()
    mb = size / 1e6
    s_med, k_med = statistics.median(servin), statistics.median(skopeo)
    print(f"image: {LAYERS} layers, {mb:.1f} MB compressed, "
          f"{LAYERS * args.layer_mb} MiB uncompressed")
    print(f"servin pull (download+verify+unpack): median {s_med:.2f}s = {mb / s_med:.1f} MB/s "
          f"(runs {', '.join(f'{t:.2f}' for t in servin)})")
    print(f"skopeo copy to dir: (download+verify):   median {k_med:.2f}s = {mb / k_med:.1f} MB/s "
          f"(runs {', '.join(f'{t:.2f}' for t in skopeo)})")
    print(f"ratio servin/skopeo time: {s_med / k_med:.2f}")


if __name__ == "__main__":
    main()
