"""Crash safety: an unpack that dies midway never looks complete, and repair() sweeps up."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import BinaryIO

import pytest

from servin.engine.linux.mount import mount
from servin.engine.store.content import ContentStore
from servin.engine.store.snapshots.mounts import is_mount_point
from tests.daemon import REPO
from tests.snapshots.helpers import Env, file, make_tar

# A child that unpacks a layer and SIGKILLs itself once 1 MiB of the blob has been read.
_DIE_MIDWAY = """
import os, signal, sys
from pathlib import Path
from servin.engine.store.content import ContentStore
from servin.engine.store.snapshots import Snapshotter

content = ContentStore(Path(sys.argv[1]))
real_open = content.open

class Dying:
    def __init__(self, f):
        self.f, self.seen = f, 0
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self.f.close()
    def seekable(self):
        return True
    def seek(self, *a):
        return self.f.seek(*a)
    def read(self, n=-1):
        data = self.f.read(n if 0 < n < 65536 else 65536)
        self.seen += len(data)
        if self.seen > 1 << 20:
            os.kill(os.getpid(), signal.SIGKILL)
        return data

content.open = lambda digest: Dying(real_open(digest))
Snapshotter(Path(sys.argv[2])).ensure_layers(content, [(sys.argv[3], sys.argv[4])])
"""


def _big_layer(env: Env) -> tuple[str, str]:
    return env.add_layer(make_tar([file(f"data/f{i:02}", os.urandom(256 << 10))
                                   for i in range(16)]))


class _Exploding:
    """A blob reader that fails after ``limit`` bytes, as a broken disk or a bug would."""

    def __init__(self, inner: BinaryIO, limit: int) -> None:
        self.inner, self.limit, self.seen = inner, limit, 0

    def __enter__(self) -> _Exploding:
        return self

    def __exit__(self, *exc: object) -> None:
        self.inner.close()

    def seekable(self) -> bool:
        return True

    def seek(self, *args: int) -> int:
        return self.inner.seek(*args)

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n if 0 < n < 65536 else 65536)
        self.seen += len(data)
        if self.seen > self.limit:
            raise RuntimeError("disk on fire")
        return data


def test_failure_inside_the_reader_leaves_nothing(env: Env,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    snaps = env.snapshotter()
    layer = _big_layer(env)
    real_open = env.content.open
    monkeypatch.setattr(env.content, "open", lambda d: _Exploding(real_open(d), 1 << 20))
    errors: list[BaseException] = []

    def worker() -> None:  # the engine calls ensure_layers from a worker thread
        try:
            snaps.ensure_layers(env.content, [layer])
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert len(errors) == 1 and str(errors[0]) == "disk on fire"
    assert env.layer_dirs() == [] and env.chain_links() == []
    assert env.leftovers()["tmp"] == []

    monkeypatch.setattr(env.content, "open", real_open)
    top = snaps.ensure_layers(env.content, [layer])
    assert len(os.listdir(snaps.layer_path(top) / "data")) == 16


def test_killed_unpack_is_redone_and_repaired(env: Env, tmp_path: Path) -> None:
    layer = _big_layer(env)
    child = subprocess.run(
        [sys.executable, "-c", _DIE_MIDWAY, str(env.content.root), str(env.root), *layer],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert child.returncode == -9, child.stderr
    # The dead unpack left a partial tree in tmp/, and nothing that looks complete.
    [leftover] = list((env.root / "tmp").iterdir())
    partial = list((leftover / "fs/data").iterdir())
    assert 0 < len(partial) < 16
    assert env.chain_links() == []

    snaps = env.snapshotter()
    top = snaps.ensure_layers(env.content, [layer])  # redone cleanly despite the leftover
    assert len(os.listdir(snaps.layer_path(top) / "data")) == 16

    # Other crash points: a layer renamed in but never indexed, an index entry whose
    # layer is gone, half-made and half-deleted snapshots, a mount left under the root.
    (env.root / "layers/77/fs").mkdir(parents=True)
    os.symlink("999", env.root / "chains" / ("ab" * 32))
    (env.root / "containers/.new-x-1234/upper").mkdir(parents=True)
    (env.root / "containers/no-info/upper").mkdir(parents=True)
    stale = env.root / "containers/.new-y-5678/merged"
    stale.mkdir(parents=True)
    mount("tmpfs", str(stale), "tmpfs", 0, "size=1m")

    assert snaps.repair() == 7  # the mount, the tmp leftover, and the five above
    assert not is_mount_point(stale)
    assert env.leftovers() == {"tmp": [], "containers": []}
    assert env.layer_dirs() == [os.path.basename(os.path.dirname(snaps.layer_path(top)))]
    assert env.chain_links() == [layer[1].removeprefix("sha256:")]
    assert snaps.repair() == 0

    # Still usable after repair: a fresh process state finds the layer and mounts it.
    fresh = env.snapshotter()
    assert fresh.ensure_layers(ContentStore(env.content.root), [layer]) == top
    fresh.prepare("after", top)
    fresh.mount("after", tmp_path / "rootfs")
    assert len(os.listdir(tmp_path / "rootfs/data")) == 16
    fresh.remove("after")
