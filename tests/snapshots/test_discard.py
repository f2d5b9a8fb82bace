"""Removing snapshots off the caller's path: ``discard`` renames now and deletes in the
background; a crash before the background is done leaves only what ``repair`` sweeps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from servin.engine.linux.mount import is_mount_root, mount
from servin.engine.store import trash as trash_module
from servin.engine.store.snapshots.mounts import is_mount_point, mount_table, unmount_all
from servin.engine.store.trash import Trash
from servin.errors import NotFound
from tests.snapshots.helpers import Env, file, make_tar


class _HeldTrash(Trash):
    """A trash whose background work waits until released (or never runs: a crash)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.held: list[Callable[[], None]] = []

    def submit(self, work: Callable[[], None]) -> None:
        self.held.append(work)
        super().submit(lambda: (self.release.wait(30), work()))


def _image(env: Env) -> list[tuple[str, str]]:
    return [env.add_layer(make_tar([file("etc/passwd", "root:x:0:0::/root:/bin/sh\n")]))]


def test_discard_is_immediate_and_the_files_go_later(env: Env, tmp_path: Path) -> None:
    trash = _HeldTrash()
    snaps = env.snapshotter(trash=trash)
    top = snaps.ensure_layers(env.content, _image(env))
    snaps.prepare("c1", top)
    rootfs = tmp_path / "run/c1/rootfs"
    snaps.mount("c1", rootfs)
    (rootfs / "big").write_bytes(b"x" * 100_000)

    snaps.discard("c1")
    # Gone for every lookup at once, unmounted, its files parked in tmp/.
    assert not is_mount_point(rootfs)
    assert snaps.keys() == []
    with pytest.raises(NotFound):
        snaps.mounts("c1")
    [parked] = env.leftovers()["tmp"]
    assert (env.root / "tmp" / parked / "upper/big").stat().st_size == 100_000
    snaps.prepare("c1", top)  # the key is free again
    snaps.remove("c1")

    trash.release.set()
    assert trash.drain(timeout=30)
    assert env.leftovers() == {"tmp": [], "containers": []}


def test_background_purge_unmounts_what_still_uses_the_snapshot(env: Env,
                                                                tmp_path: Path) -> None:
    trash = _HeldTrash()
    snaps = env.snapshotter(trash=trash)
    top = snaps.ensure_layers(env.content, _image(env))
    m = snaps.prepare("c1", top)
    # A mount the snapshotter did not record: the same overlay mounted by hand elsewhere.
    other = tmp_path / "elsewhere"
    other.mkdir()
    mount("overlay", str(other), "overlay", 0, m.data)
    snaps.discard("c1")
    assert is_mount_point(other)  # not recorded: left for the background pass
    trash.release.set()
    assert trash.drain(timeout=30)
    assert not is_mount_point(other)
    assert env.leftovers() == {"tmp": [], "containers": []}


def test_a_crash_before_the_purge_is_repaired_at_start(env: Env, tmp_path: Path) -> None:
    trash = _HeldTrash()  # never released: the daemon died with the work queued
    snaps = env.snapshotter(trash=trash)
    top = snaps.ensure_layers(env.content, _image(env))
    snaps.prepare("c1", top)
    snaps.discard("c1")
    assert len(trash.held) == 1 and len(env.leftovers()["tmp"]) == 1

    restarted = env.snapshotter()
    assert restarted.repair() == 1
    assert env.leftovers() == {"tmp": [], "containers": []}
    assert len(env.layer_dirs()) == 1  # the image's layer stays
    trash.release.set()
    assert trash.drain(timeout=30)  # the late purge finds nothing left: no error


def test_move_aside_and_sweep(tmp_path: Path) -> None:
    trash = Trash()
    victim = tmp_path / "containers/abc"
    (victim / "sub").mkdir(parents=True)
    (victim / "sub/log").write_text("x" * 1000)
    moved = trash.move_aside(victim)
    assert moved is not None and moved.parent == victim.parent
    assert not victim.exists()
    assert trash.drain(timeout=30)
    assert list((tmp_path / "containers").iterdir()) == []
    assert trash.move_aside(victim) is None  # nothing there: nothing to do

    # Left by a crash: only trash names are swept, nothing else.
    (tmp_path / "containers/keep").mkdir()
    parked = trash_module.trash_name(tmp_path / "containers/old")
    (parked / "deep").mkdir(parents=True)
    (tmp_path / "containers" / (trash_module.PREFIX + "file")).write_text("x")
    assert trash_module.sweep(tmp_path / "containers") == 2
    assert [p.name for p in (tmp_path / "containers").iterdir()] == ["keep"]
    assert trash_module.sweep(tmp_path / "missing") == 0


def test_unmount_all_and_mount_roots(tmp_path: Path) -> None:
    target = tmp_path / "m"
    target.mkdir()
    assert is_mount_root(str(target)) is False and not is_mount_point(target)
    for _ in range(3):
        mount("tmpfs", str(target), "tmpfs", 0, "size=1m")  # stacked three deep
    assert is_mount_root(str(target)) is True and is_mount_point(target)
    unmount_all(target)
    assert not any(e.mount_point == str(target) for e in mount_table())
    assert not is_mount_point(target)
    unmount_all(target)  # nothing mounted: fine
    unmount_all(tmp_path / "missing")
    assert not is_mount_point(tmp_path / "missing")


def test_a_tree_with_a_mount_inside_is_unmounted_first(tmp_path: Path) -> None:
    state = tmp_path / "containers/abc"
    rootfs = state / "rootfs"
    rootfs.mkdir(parents=True)
    mount("tmpfs", str(rootfs), "tmpfs", 0, "size=1m")
    (rootfs / "inside").write_text("a file of another filesystem")
    trash = Trash()
    moved = trash.move_aside(state, trash_module.remove_unmounted)
    assert trash.drain(timeout=30)
    assert moved is not None and not moved.exists()

    # Left by a crash with the mount still there: the start-up sweep unmounts, then deletes.
    left = trash_module.trash_name(tmp_path / "containers/def")
    (left / "rootfs").mkdir(parents=True)
    mount("tmpfs", str(left / "rootfs"), "tmpfs", 0, "size=1m")
    assert trash_module.sweep(tmp_path / "containers") == 1
    assert not left.exists() and not is_mount_point(left / "rootfs")


def test_volatile_mount_for_a_snapshot_used_once(env: Env, tmp_path: Path) -> None:
    snaps = env.snapshotter()
    top = snaps.ensure_layers(env.content, _image(env))
    snaps.prepare("c1", top)
    rootfs = tmp_path / "run/c1/rootfs"
    snaps.mount("c1", rootfs, volatile=True)
    [entry] = [e for e in mount_table() if e.mount_point == str(rootfs)]
    assert {"volatile", "fsync=volatile"} & set(entry.super_options)  # as newer kernels say it
    (rootfs / "written").write_text("not synced at unmount")
    assert (rootfs / "etc/passwd").read_text().startswith("root:")
    snaps.remove("c1")
    assert not is_mount_point(rootfs)


def test_an_uncompressed_stored_blob_is_copied_by_the_kernel(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import tarfile

    from tests.snapshots.helpers import directory, hardlink

    snaps = env.snapshotter()
    payload = os.urandom(300_000)
    layer = env.add_layer(make_tar([directory("data"), file("data/big", payload),
                                    file("data/empty", b""), hardlink("data/same", "data/big"),
                                    file("data/small", "x" * 100)]))
    copies: list[int] = []
    real_copy = os.copy_file_range

    def counting(src: int, dst: int, count: int, offset_src: int | None = None,
                 offset_dst: int | None = None) -> int:
        copies.append(count)
        return real_copy(src, dst, count, offset_src, offset_dst)

    def no_reads(*args: object) -> None:
        raise AssertionError("file content read through Python")

    monkeypatch.setattr(os, "copy_file_range", counting)
    monkeypatch.setattr(tarfile.TarFile, "extractfile", no_reads)
    top = snaps.ensure_layers(env.content, [layer])
    fs = snaps.layer_path(top)
    assert (fs / "data/big").read_bytes() == payload
    assert (fs / "data/same").stat().st_ino == (fs / "data/big").stat().st_ino
    assert (fs / "data/empty").read_bytes() == b"" and (fs / "data/small").read_text() == "x" * 100
    assert sum(copies) == len(payload) + 100
