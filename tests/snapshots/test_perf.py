"""How long ensure_layers takes for the busybox layer and for a 100 MB layer of random files.

The timings are printed (``pytest -s``) and held to loose bounds, so a gross regression (an
accidental quadratic walk, per-file fsync) fails while a slow CI machine does not.
"""

from __future__ import annotations

import os
import tarfile
import time
from pathlib import Path

import pytest

from tests.snapshots.helpers import Env, file, gzipped, make_tar


def _timed(env: Env, layer: tuple[str, str]) -> tuple[float, str]:
    snaps = env.snapshotter()
    start = time.perf_counter()
    top = snaps.ensure_layers(env.content, [layer])
    return time.perf_counter() - start, top


def test_busybox_layer_speed(env: Env, busybox_tar: Path) -> None:
    tar = busybox_tar.read_bytes()
    seconds, _ = _timed(env, env.add_layer(tar, gzipped(tar)))
    with tarfile.open(busybox_tar) as archive:
        entries = len(archive.getmembers())
    unpacked = sum(len(dirs) + len(names) for _, dirs, names in os.walk(env.root / "layers"))
    print(f"\nbusybox layer ({len(tar) / 1e6:.1f} MB, {entries} entries, gzip): "
          f"ensure_layers {seconds * 1000:.0f} ms")
    assert entries > 200 and unpacked >= entries
    assert seconds < 10


@pytest.mark.slow
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_100mb_layer_speed(compressed: bool, env: Env) -> None:
    entries = [file(f"data/{i // 100}/f{i:04}", os.urandom(100_000)) for i in range(1000)]
    tar = make_tar(entries)
    layer = env.add_layer(tar, gzipped(tar) if compressed else None)
    seconds, top = _timed(env, layer)
    snaps = env.snapshotter()
    assert snaps.layer_size(top) == 100_000_000
    kind = "gzip" if compressed else "plain"
    print(f"\n100 MB layer (1000 random files, {kind}): ensure_layers {seconds:.2f} s "
          f"({len(tar) / 1e6 / seconds:.0f} MB/s)")
    assert seconds < 60
