"""The snapshotter end to end: layers unpacked once, containers mounted on top, both drivers."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import zstandard

from servin.engine.store.content import BlobCorrupted
from servin.engine.store.snapshots import Snapshotter, chain_id, chain_ids
from servin.engine.store.snapshots import snapshotter as snapshotter_module
from servin.engine.store.snapshots.mounts import is_mount_point, mount_table
from servin.errors import Conflict, InvalidArgument, NotFound
from tests.snapshots.helpers import (
    HOSTILE,
    Env,
    assert_canary_intact,
    directory,
    file,
    gzipped,
    hardlink,
    hostile_layers,
    make_tar,
    opaque,
    symlink,
    whiteout,
)

DRIVERS = ["overlay", "copy"]


def _second_layer() -> bytes:
    """On top of busybox: a whiteout, an opaque dir, new and replaced files."""
    return make_tar([
        directory("etc"),
        whiteout("etc/group"),
        file("etc/motd", "welcome\n"),
        directory("usr/sbin"),
        opaque("usr/sbin"),
        file("usr/sbin/only-this", "#!/bin/sh\necho only\n", mode=0o755),
        directory("opt/app"),
        file("opt/app/data", "v2"),
        hardlink("opt/app/data-link", "opt/app/data"),
        symlink("opt/app/latest", "data"),
    ])


def _busybox_image(env: Env, busybox_tar: Path) -> list[tuple[str, str]]:
    base = busybox_tar.read_bytes()
    top = _second_layer()
    return [env.add_layer(base), env.add_layer(top, gzipped(top))]


def _in_mountinfo(path: Path) -> bool:
    return any(e.mount_point == str(path) for e in mount_table())


@pytest.mark.parametrize("driver", DRIVERS)
def test_containers_on_shared_layers(driver: str, env: Env, tmp_path: Path,
                                     busybox_tar: Path) -> None:
    snaps = env.snapshotter(driver)
    assert snaps.driver == driver
    layers = _busybox_image(env, busybox_tar)
    top = snaps.ensure_layers(env.content, layers)
    assert top == chain_ids([d for _, d in layers])[-1]
    assert snaps.layers() == sorted(chain_ids([d for _, d in layers]))

    m1 = snaps.prepare("c1", top)
    snaps.prepare("c2", top)
    if driver == "overlay":
        assert (m1.type, m1.source) == ("overlay", "overlay")
        lower = m1.options[0].removeprefix("lowerdir=").split(":")
        assert lower == [str(snaps.layer_path(top)), str(snaps.layer_path(layers[0][1]))]
        assert m1.options[1:3] == [f"upperdir={env.root}/containers/c1/upper",
                                   f"workdir={env.root}/containers/c1/work"]
    else:
        assert m1.type == "bind" and m1.source.endswith("/containers/c1/fs")
    r1, r2 = tmp_path / "run/c1/rootfs", tmp_path / "run/c2/rootfs"
    snaps.mount("c1", r1)
    snaps.mount("c1", r1)  # already mounted: nothing stacks
    snaps.mount("c2", r2)
    assert sum(e.mount_point == str(r1) for e in mount_table()) == 1

    # The merged view: busybox from layer 1, what layer 2 hid is gone.
    assert (r1 / "bin/busybox").read_bytes() == Path("/bin/busybox").read_bytes()
    assert (r1 / "etc/passwd").read_text().startswith("root:x:0:0")
    assert not (r1 / "etc/group").exists() and not os.path.lexists(r1 / "etc/group")
    assert os.listdir(r1 / "usr/sbin") == ["only-this"]  # opaque: busybox's links are hidden
    assert (r1 / "opt/app/data-link").stat().st_ino == (r1 / "opt/app/data").stat().st_ino
    assert (r1 / "opt/app/latest").read_text() == "v2"
    out = subprocess.run(["chroot", str(r1), "/bin/sh", "-c", "cat /etc/motd; ls /usr/sbin"],
                         capture_output=True, text=True, check=True)
    assert out.stdout == "welcome\nonly-this\n"

    # Writes land in the container's own layer, never in the shared ones.
    (r1 / "root/new").write_text("hello from c1")
    (r1 / "etc/passwd").write_text("changed\n")
    (r1 / "bin/ls").unlink()
    assert (r2 / "etc/passwd").read_text().startswith("root:x:0:0")
    assert (r2 / "bin/ls").is_symlink() and not (r2 / "root/new").exists()
    base_fs = snaps.layer_path(chain_ids([layers[0][1]])[0])
    assert (base_fs / "bin/ls").is_symlink() and not (base_fs / "root/new").exists()
    assert (base_fs / "etc/passwd").read_text().startswith("root:x:0:0")
    own = env.root / "containers/c1" / ("upper" if driver == "overlay" else "fs")
    assert (own / "root/new").read_text() == "hello from c1"

    changes = set(snaps.changes("c1"))
    expected = {("A", "/root/new"), ("C", "/root"), ("C", "/etc/passwd"), ("C", "/bin"),
                ("D", "/bin/ls")}
    # Overlay copies /etc up to hold the new passwd; an in-place write leaves its mtime.
    assert changes - {("C", "/etc")} == expected
    assert snaps.changes("c2") == []
    used = snaps.usage("c1")
    assert len("hello from c1") + len("changed\n") <= used < 4096
    assert snaps.usage("c2") == 0

    # remove() unmounts wherever the snapshot is mounted, and leaves the other alone.
    snaps.remove("c1")
    assert not _in_mountinfo(r1) and not (env.root / "containers/c1").exists()
    assert (r2 / "bin/ls").is_symlink()
    snaps.unmount(r2)
    snaps.unmount(r2)  # nothing mounted: fine
    assert not _in_mountinfo(r2)
    snaps.remove("c2")
    assert env.leftovers() == {"tmp": [], "containers": []}
    with pytest.raises(NotFound):
        snaps.remove("c2")
    # The layers stay for the next container.
    assert len(env.layer_dirs()) == 2
    assert snaps.layer_size(chain_ids([layers[0][1]])[0]) == (
        Path("/bin/busybox").stat().st_size + (base_fs / "etc/passwd").stat().st_size
        + (base_fs / "etc/group").stat().st_size)


@pytest.mark.parametrize("driver", DRIVERS)
def test_changes_in_opaque_and_deleted_dirs(driver: str, env: Env, tmp_path: Path) -> None:
    snaps = env.snapshotter(driver)
    base = make_tar([directory("data"), file("data/a", "a"), file("data/b", "b"),
                     directory("keep"), file("keep/x", "x")])
    top = snaps.ensure_layers(env.content, [env.add_layer(base)])
    snaps.prepare("c", top)
    rootfs = tmp_path / "rootfs"
    snaps.mount("c", rootfs)
    try:
        for name in ("a", "b"):
            (rootfs / "data" / name).unlink()
        (rootfs / "data").rmdir()
        (rootfs / "data").mkdir()  # overlay makes it opaque
        (rootfs / "data/b").write_text("new b")
        (rootfs / "keep/x").unlink()
        (rootfs / "keep").rmdir()
        changes = snaps.changes("c")
    finally:
        snaps.unmount(rootfs)
    assert ("D", "/data/a") in changes and ("C", "/data/b") in changes
    assert ("D", "/keep") in changes
    assert not any(path.startswith("/keep/") for _, path in changes)
    snaps.remove("c")


def test_empty_image_and_key_rules(env: Env, tmp_path: Path) -> None:
    snaps = env.snapshotter()
    assert snaps.ensure_layers(env.content, []) == ""
    m = snaps.prepare("empty", "")
    assert m.options[0] == f"lowerdir={env.root / 'empty'}"
    snaps.mount("empty", tmp_path / "rootfs")
    (tmp_path / "rootfs/hello").write_text("x")
    assert snaps.changes("empty") == [("A", "/hello")]
    snaps.remove("empty")
    assert not is_mount_point(tmp_path / "rootfs")
    with pytest.raises(InvalidArgument):
        snaps.prepare("../evil", None)
    with pytest.raises(NotFound):
        snaps.prepare("x", "sha256:" + "0" * 64)
    snaps.prepare("dup", None)
    with pytest.raises(Conflict):
        snaps.prepare("dup", None)
    snaps.remove("dup")
    with pytest.raises(InvalidArgument):
        Snapshotter(env.root, driver="zfs")


def test_auto_driver_picks_overlay_here(env: Env) -> None:
    # This machine (and CI) has overlayfs: auto must find it, and its probe leaves nothing.
    assert env.snapshotter("auto").driver == "overlay"
    assert env.leftovers() == {"tmp": [], "containers": []}


def test_chain_ids_follow_the_oci_spec() -> None:
    a, b, c = ("sha256:" + ch * 64 for ch in "abc")
    ab = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    abc = "sha256:" + hashlib.sha256(f"{ab} {c}".encode()).hexdigest()
    assert chain_ids([a, b, c]) == [a, ab, abc]
    assert chain_id(None, a) == a and chain_id(ab, c) == abc


def _count_unpacks(monkeypatch: pytest.MonkeyPatch, delay: float = 0.0) -> list[str]:
    calls: list[str] = []
    real = snapshotter_module.unpack_blob

    def counting(content, blob, diff_id, dest, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(diff_id)
        time.sleep(delay)
        return real(content, blob, diff_id, dest, **kwargs)

    monkeypatch.setattr(snapshotter_module, "unpack_blob", counting)
    return calls


def test_layers_are_shared_and_unpacked_once(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_unpacks(monkeypatch)
    snaps = env.snapshotter()
    l1 = env.add_layer(make_tar([file("base", "base")]))
    l2 = env.add_layer(make_tar([file("a", "a")]))
    l3 = env.add_layer(make_tar([file("b", "b")]))
    top_a = snaps.ensure_layers(env.content, [l1, l2])
    top_b = snaps.ensure_layers(env.content, [l1, l3])
    assert snaps.ensure_layers(env.content, [l1, l2]) == top_a
    assert calls == [l1[1], l2[1], l3[1]]
    assert len(env.layer_dirs()) == 3 and len(env.chain_links()) == 3
    # A fresh snapshotter on the same root finds them too.
    assert env.snapshotter().ensure_layers(env.content, [l1, l3]) == top_b
    assert len(calls) == 3


def test_concurrent_callers_wait_for_one_unpack(env: Env,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_unpacks(monkeypatch, delay=0.3)
    snaps = env.snapshotter()
    layers = [env.add_layer(make_tar([file(f"f{i}", str(i))])) for i in range(2)]
    barrier = threading.Barrier(6)
    results: list[str] = []

    def worker() -> None:
        barrier.wait()
        results.append(snaps.ensure_layers(env.content, layers))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and len(set(results)) == 1
    assert sorted(calls) == sorted(d for _, d in layers)
    assert len(env.layer_dirs()) == 2 and env.leftovers()["tmp"] == []


def test_zstd_layer(env: Env, tmp_path: Path) -> None:
    snaps = env.snapshotter()
    tar = make_tar([file("hello", "zstd")])
    top = snaps.ensure_layers(env.content,
                              [env.add_layer(tar, zstandard.ZstdCompressor().compress(tar))])
    assert (snaps.layer_path(top) / "hello").read_text() == "zstd"


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_corrupted_blob_is_refused(compressed: bool, env: Env, busybox_tar: Path) -> None:
    snaps = env.snapshotter()
    tar = busybox_tar.read_bytes()
    blob, diff_id = env.add_layer(tar, gzipped(tar) if compressed else None)
    path = env.content.blob_path(blob)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside the busybox binary's content
    path.write_bytes(bytes(data))
    with pytest.raises(BlobCorrupted, match=f"layer blob {blob} is corrupted"):
        snaps.ensure_layers(env.content, [(blob, diff_id)])
    assert env.layer_dirs() == [] and env.chain_links() == []
    assert env.leftovers() == {"tmp": [], "containers": []}


def test_diff_id_mismatch_is_refused(env: Env) -> None:
    snaps = env.snapshotter()
    blob, _ = env.add_layer(make_tar([file("a", "a")]))
    wrong = "sha256:" + hashlib.sha256(b"another layer").hexdigest()
    with pytest.raises(InvalidArgument, match=f"lists diff ID {wrong}"):
        snaps.ensure_layers(env.content, [(blob, wrong)])
    assert env.layer_dirs() == [] and env.leftovers()["tmp"] == []


def test_missing_blob(env: Env) -> None:
    missing = "sha256:" + "1" * 64
    with pytest.raises(NotFound):
        env.snapshotter().ensure_layers(env.content, [(missing, missing)])
    assert env.leftovers()["tmp"] == []


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_layer_leaves_no_partial_layer(case: str, env: Env, canary: Path) -> None:
    snaps = env.snapshotter()
    good = env.add_layer(make_tar([file("ok", "ok")]))
    entries, culprit = hostile_layers(canary)[case]
    evil_tar = make_tar([file("fine", "x"), *entries])
    evil = env.add_layer(evil_tar, gzipped(evil_tar))
    with pytest.raises(InvalidArgument) as err:
        snaps.ensure_layers(env.content, [good, evil])
    assert repr(culprit) in str(err.value)
    assert_canary_intact(canary)
    # The good layer below is committed; of the hostile one nothing remains anywhere.
    assert len(env.layer_dirs()) == 1 and env.chain_links() == [good[1].removeprefix("sha256:")]
    assert env.leftovers() == {"tmp": [], "containers": []}
    assert not list(env.base.rglob("pwned")) and not list(env.base.rglob("escape"))
    assert not list(env.base.rglob("fine"))


def test_many_layers_fit_in_one_mount(env: Env, tmp_path: Path) -> None:
    """140 layers: more than absolute lowerdir paths fit in the kernel's one page."""
    snaps = env.snapshotter(durable=False)
    layers = [env.add_layer(make_tar([file(f"f{i:03}", str(i)), file("top", str(i))]))
              for i in range(140)]
    top = snaps.ensure_layers(env.content, layers)
    m = snaps.prepare("tall", top)
    assert len(m.data) > os.sysconf("SC_PAGE_SIZE")
    rootfs = tmp_path / "rootfs"
    snaps.mount("tall", rootfs)
    snaps.mount("tall", rootfs)  # recognised as mounted although its options were shortened
    try:
        assert sum(e.mount_point == str(rootfs) for e in mount_table()) == 1
        assert len(os.listdir(rootfs)) == 141
        assert (rootfs / "f000").read_text() == "0" and (rootfs / "top").read_text() == "139"
    finally:
        snaps.remove("tall")
    assert not is_mount_point(rootfs)


def test_gc_and_remove_layer(env: Env, tmp_path: Path) -> None:
    snaps = env.snapshotter()
    base = env.add_layer(make_tar([file("base", "b")]))
    a = env.add_layer(make_tar([file("a", "a")]))
    b = env.add_layer(make_tar([file("b", "b")]))
    c = env.add_layer(make_tar([file("c", "c")]))
    top_a = snaps.ensure_layers(env.content, [base, a])
    top_b = snaps.ensure_layers(env.content, [base, b])
    top_c = snaps.ensure_layers(env.content, [c])
    snaps.prepare("uses-b", top_b)
    snaps.mount("uses-b", tmp_path / "rootfs")
    snaps.prepare("doomed", top_c)

    with pytest.raises(Conflict, match="in use by layer"):
        snaps.remove_layer(base[1])
    with pytest.raises(Conflict, match="container snapshot uses-b"):
        snaps.remove_layer(top_b)
    with pytest.raises(NotFound):
        snaps.remove_layer("sha256:" + "2" * 64)

    # Keep image A and container uses-b: image B's top layer stays for the container,
    # image C's layer goes with the container that is not kept.
    removed = snaps.gc({top_a}, {"uses-b"})
    assert removed == 2  # the "doomed" snapshot and layer c
    assert set(snaps.layers()) == {base[1], top_a, top_b}
    assert snaps.keys() == ["uses-b"]
    assert (tmp_path / "rootfs/b").read_text() == "b"

    snaps.remove("uses-b")
    assert not is_mount_point(tmp_path / "rootfs")
    snaps.remove_layer(top_b)
    snaps.remove_layer(top_a)
    snaps.remove_layer(base[1])
    assert snaps.layers() == [] and env.layer_dirs() == [] and env.chain_links() == []
    assert snaps.gc(set(), set()) == 0
    assert env.leftovers() == {"tmp": [], "containers": []}
    # Removed layers come back on demand.
    assert snaps.ensure_layers(env.content, [base, a]) == top_a
