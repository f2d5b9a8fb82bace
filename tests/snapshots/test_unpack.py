"""unpack_layer: every entry type lands as tar describes it, and hostile entries are refused."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from servin.devtools.busybox import MTIME as BUSYBOX_MTIME
from servin.devtools.busybox import applets
from servin.engine.store.snapshots.unpack import OPAQUE_XATTR, unpack_layer
from servin.errors import InvalidArgument
from tests.snapshots.helpers import (
    HOSTILE,
    MTIME,
    Entry,
    assert_canary_intact,
    directory,
    file,
    hardlink,
    hostile_layers,
    make_tar,
    opaque,
    symlink,
    whiteout,
)


def _unpack(entries: list[Entry], dest: Path) -> int:
    dest.mkdir(exist_ok=True)
    return unpack_layer(io.BytesIO(make_tar(entries)), dest)


def test_busybox_rootfs(tmp_path: Path, busybox_tar: Path) -> None:
    dest = tmp_path / "fs"
    dest.mkdir()
    with open(busybox_tar, "rb") as f:
        written = unpack_layer(f, dest)
    busybox = Path("/bin/busybox")
    assert written == busybox.stat().st_size + (dest / "etc/passwd").stat().st_size + (
        dest / "etc/group").stat().st_size
    assert (dest / "bin/busybox").read_bytes() == busybox.read_bytes()
    assert stat.S_IMODE((dest / "bin/busybox").stat().st_mode) == 0o755
    links = [a.lstrip("/") for a in applets() if a.lstrip("/") != "bin/busybox"]
    assert len(links) > 100
    for rel in links:
        assert os.readlink(dest / rel) == "/bin/busybox", rel
    assert stat.S_IMODE((dest / "tmp").stat().st_mode) == 0o1777
    assert stat.S_IMODE((dest / "root").stat().st_mode) == 0o700
    assert (dest / "home/user").stat().st_uid == 1000
    # Directory mtimes are set after their content was written.
    assert (dest / "bin").stat().st_mtime == BUSYBOX_MTIME
    assert (dest / "usr/bin").stat().st_mtime == BUSYBOX_MTIME


def test_every_entry_type(tmp_path: Path) -> None:
    dest = tmp_path / "fs"
    written = _unpack([
        directory("sbin", mode=0o750, uid=5, gid=6, mtime=MTIME + 1),
        file("sbin/su", b"#!/bin/sh\n", mode=0o4755, uid=0, gid=0),
        file("sbin/sg", b"x", mode=0o2711, uid=7, gid=8),
        directory("scratch", mode=0o1777),
        symlink("sbin/link", "../etc/nowhere"),
        hardlink("sbin/su-again", "sbin/su"),
        Entry("dev/null", tarfile.CHRTYPE, mode=0o666, major=1, minor=3),
        Entry("dev/loop0", tarfile.BLKTYPE, mode=0o660, major=7, minor=0, gid=6),
        Entry("run/pipe", tarfile.FIFOTYPE, mode=0o620),
        file("attrs", b"a", xattrs={"user.note": "hello", "trusted.kept": "yes",
                                     "trusted.overlay.redirect": "/etc"}),
        directory("gone/dir"),
        whiteout("etc/passwd"),
        opaque("var/cache"),
    ], dest)
    assert written == len(b"#!/bin/sh\n") + 1 + 1

    sbin = (dest / "sbin").stat()
    assert (stat.S_IMODE(sbin.st_mode), sbin.st_uid, sbin.st_gid) == (0o750, 5, 6)
    assert sbin.st_mtime == MTIME + 1  # set after su, sg, link were written inside
    su = (dest / "sbin/su").stat()
    assert stat.S_IMODE(su.st_mode) == 0o4755 and su.st_mtime == MTIME
    sg = (dest / "sbin/sg").stat()
    assert (stat.S_IMODE(sg.st_mode), sg.st_uid, sg.st_gid) == (0o2711, 7, 8)
    assert stat.S_IMODE((dest / "scratch").stat().st_mode) == 0o1777
    assert os.readlink(dest / "sbin/link") == "../etc/nowhere"
    assert (dest / "sbin/link").lstat().st_mtime == MTIME
    assert (dest / "sbin/su-again").stat().st_ino == su.st_ino and su.st_nlink == 2

    null = (dest / "dev/null").lstat()
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1
    assert os.minor(null.st_rdev) == 3 and stat.S_IMODE(null.st_mode) == 0o666
    loop = (dest / "dev/loop0").lstat()
    assert stat.S_ISBLK(loop.st_mode) and loop.st_rdev == os.makedev(7, 0) and loop.st_gid == 6
    pipe = (dest / "run/pipe").lstat()
    assert stat.S_ISFIFO(pipe.st_mode) and stat.S_IMODE(pipe.st_mode) == 0o620

    assert os.getxattr(dest / "attrs", "user.note") == b"hello"
    assert os.getxattr(dest / "attrs", "trusted.kept") == b"yes"
    assert "trusted.overlay.redirect" not in os.listxattr(dest / "attrs")

    wh = (dest / "etc/passwd").lstat()
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert not (dest / "etc/.wh.passwd").exists()
    assert os.getxattr(dest / "var/cache", OPAQUE_XATTR) == b"y"
    assert os.listdir(dest / "var/cache") == []
    # Parents the archive never listed were made like tar makes them.
    assert stat.S_IMODE((dest / "gone").stat().st_mode) == 0o755


def test_names_are_normalised_into_the_root(tmp_path: Path) -> None:
    dest = tmp_path / "fs"
    _unpack([
        file("./etc/dot", "b"),
        file("etc//./double", "c"),
        file("etc/sub/../up", "d"),
        directory("./", mode=0o751),
    ], dest)
    # Names are cleaned lexically: "sub/.." never touches the disk.
    assert sorted(os.listdir(dest / "etc")) == ["dot", "double", "up"]
    assert (dest / "etc/dot").read_text() == "b"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o751


def test_later_entries_replace_earlier_ones_without_following(tmp_path: Path,
                                                              canary: Path) -> None:
    dest = tmp_path / "fs"
    _unpack([
        symlink("victim", str(canary / "victim")),
        file("victim", "layer's own"),  # replaces the link, does not write through it
        file("thing", "a file"),
        directory("thing"),  # a directory replaces a file
        file("thing/inside", "x"),
        directory("keep"),
        file("keep/a", "a"),
        directory("keep", mode=0o700),  # a directory over a directory keeps its content
        symlink("swap", "/"),
        directory("swap"),
        file("swap/x", "x"),
    ], dest)
    assert (dest / "victim").read_text() == "layer's own"
    assert not (dest / "victim").is_symlink()
    assert (dest / "thing/inside").read_text() == "x"
    assert (dest / "keep/a").read_text() == "a"
    assert stat.S_IMODE((dest / "keep").stat().st_mode) == 0o700
    assert (dest / "swap").is_dir() and not (dest / "swap").is_symlink()
    assert_canary_intact(canary)


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_entries_are_refused(case: str, tmp_path: Path, canary: Path) -> None:
    entries, culprit = hostile_layers(canary)[case]
    dest = tmp_path / "layer" / "fs"
    dest.parent.mkdir()
    with pytest.raises(InvalidArgument) as err:
        _unpack(entries, dest)
    message = str(err.value)
    assert repr(culprit) in message, message
    assert "\n" not in message
    assert_canary_intact(canary)
    # Nothing was written next to or above the layer either.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layer"]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["fs"]
    assert not list(tmp_path.rglob("pwned")) and not list(tmp_path.rglob("escape"))


def test_relative_symlinked_parent_inside_the_layer_is_refused_too(tmp_path: Path) -> None:
    """The chosen policy: a parent that is a symlink is refused even when it stays inside."""
    with pytest.raises(InvalidArgument, match="'lib' is a symbolic link"):
        _unpack([directory("usr/lib"), symlink("lib", "usr/lib"), file("lib/x", "x")],
                tmp_path / "fs")
    assert not (tmp_path / "fs/usr/lib/x").exists()


def test_hardlink_inside_the_layer_through_absolute_name(tmp_path: Path) -> None:
    dest = tmp_path / "fs"
    _unpack([file("etc/passwd", "root"), hardlink("etc/passwd-", "/etc/passwd"),
             symlink("sh", "/bin/busybox"), hardlink("sh2", "sh")], dest)
    assert (dest / "etc/passwd-").stat().st_ino == (dest / "etc/passwd").stat().st_ino
    assert Path("/etc/passwd").read_text() != "root"
    # A hard link to a symlink links the symlink itself, never what it points to.
    assert os.readlink(dest / "sh2") == "/bin/busybox"


def test_not_a_tar_archive(tmp_path: Path) -> None:
    (tmp_path / "fs").mkdir()
    with pytest.raises(InvalidArgument, match="not a valid tar archive"):
        unpack_layer(io.BytesIO(b"this is not a tarball" * 100), tmp_path / "fs")


def test_truncated_file_content(tmp_path: Path) -> None:
    data = make_tar([file("big", b"x" * 100_000)])
    (tmp_path / "fs").mkdir()
    with pytest.raises(InvalidArgument, match="not a valid tar archive"):
        unpack_layer(io.BytesIO(data[:50_000]), tmp_path / "fs")
