"""Helpers of the snapshotter tests: layer tarballs built entry by entry, a store, checks."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from servin.engine.store.content import ContentStore
from servin.engine.store.snapshots import Snapshotter

MTIME = 1_600_000_000


@dataclass
class Entry:
    """One tar member to write."""

    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    mode: int = 0o644
    link: str = ""
    uid: int = 0
    gid: int = 0
    mtime: float = MTIME
    major: int = 0
    minor: int = 0
    xattrs: dict[str, str] = field(default_factory=dict)


def file(name: str, data: bytes | str = b"", mode: int = 0o644, **kw: object) -> Entry:
    """A regular file."""
    raw = data.encode() if isinstance(data, str) else data
    return Entry(name, tarfile.REGTYPE, raw, mode, **kw)  # type: ignore[arg-type]


def directory(name: str, mode: int = 0o755, **kw: object) -> Entry:
    """A directory."""
    return Entry(name, tarfile.DIRTYPE, mode=mode, **kw)  # type: ignore[arg-type]


def symlink(name: str, target: str) -> Entry:
    """A symbolic link."""
    return Entry(name, tarfile.SYMTYPE, mode=0o777, link=target)


def hardlink(name: str, target: str) -> Entry:
    """A hard link to an earlier entry."""
    return Entry(name, tarfile.LNKTYPE, link=target)


def whiteout(path: str) -> Entry:
    """``.wh.NAME``: hide ``path`` of the layers below."""
    parent, _, base = path.rpartition("/")
    return file(f"{parent}/.wh.{base}" if parent else f".wh.{base}")


def opaque(directory_path: str) -> Entry:
    """Mark a directory opaque: nothing of the layers below shows through."""
    return file(f"{directory_path}/.wh..wh..opq")


def make_tar(entries: list[Entry]) -> bytes:
    """The tarball (PAX format) of ``entries`` in order."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = e.type
            info.mode = e.mode
            info.uid, info.gid = e.uid, e.gid
            info.mtime = e.mtime
            info.linkname = e.link
            info.devmajor, info.devminor = e.major, e.minor
            info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in e.xattrs.items()}
            info.size = len(e.data) if e.type == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(e.data) if info.size else None)
    return out.getvalue()


def gzipped(data: bytes) -> bytes:
    """``data`` gzip-compressed (fast level: tests only need the format)."""
    return gzip.compress(data, compresslevel=1, mtime=0)


def sha256(data: bytes) -> str:
    """The digest string of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Env:
    """A content store and a snapshot root in one test's temp dir."""

    base: Path
    content: ContentStore

    @property
    def root(self) -> Path:
        return self.base / "snapshots"

    def snapshotter(self, driver: str = "overlay", **kw: object) -> Snapshotter:
        return Snapshotter(self.root, driver=driver, **kw)  # type: ignore[arg-type]

    def add_layer(self, tar: bytes, compressed: bytes | None = None) -> tuple[str, str]:
        """Store a layer blob; return (blob digest, diff ID)."""
        blob = compressed if compressed is not None else tar
        return self.content.write_bytes(blob), sha256(tar)

    def leftovers(self) -> dict[str, list[str]]:
        """What the snapshot root holds besides committed things (should be nothing)."""
        return {
            "tmp": sorted(p.name for p in (self.root / "tmp").iterdir()),
            "containers": sorted(p.name for p in (self.root / "containers").iterdir()),
        }

    def layer_dirs(self) -> list[str]:
        return sorted(p.name for p in (self.root / "layers").iterdir())

    def chain_links(self) -> list[str]:
        return sorted(p.name for p in (self.root / "chains").iterdir())


def assert_canary_intact(canary: Path) -> None:
    """Only ``victim`` is there, unchanged, with no xattr, and the dir itself unmarked."""
    assert sorted(p.name for p in canary.iterdir()) == ["victim"]
    assert (canary / "victim").read_text() == "original"
    assert os.listxattr(canary) == []
    assert os.listxattr(canary / "victim") == []


def hostile_layers(canary: Path) -> dict[str, tuple[list[Entry], str]]:
    """name -> (entries, the entry the refusal must name)."""
    return {
        "dotdot": ([file("../escape", "x")], "../escape"),
        "dotdot-deep": ([directory("a"), file("a/../../escape", "x")], "a/../../escape"),
        "abs-dotdot": ([file("/../../escape", "x")], "/../../escape"),
        "absolute-name": ([file(f"{canary}/victim", "pwned")], f"{canary}/victim"),
        "symlink-parent-outside": (
            [symlink("evil", str(canary)), file("evil/pwned", "x")], "evil/pwned"),
        "symlink-parent-root": (
            [symlink("evil", "/"), file(f"evil{canary}/pwned", "x")], f"evil{canary}/pwned"),
        "symlink-parent-dotdot": (
            [symlink("evil", "../../../../../../.."), file(f"evil{canary}/pwned", "x")],
            f"evil{canary}/pwned"),
        "symlink-nested": (
            [directory("a"), symlink("a/b", str(canary)), file("a/b/pwned", "x")], "a/b/pwned"),
        "abs-symlink-then-file": (
            [symlink("abs", str(canary)), file("abs/victim", "pwned")], "abs/victim"),
        "symlink-then-dir": ([symlink("d", str(canary)), directory("d/sub")], "d/sub"),
        "symlink-then-device": (
            [symlink("d", str(canary)), Entry("d/null", tarfile.CHRTYPE, major=1, minor=3)],
            "d/null"),
        "symlink-then-hardlink": (
            [file("f", "x"), symlink("d", str(canary)), hardlink("d/pwned", "f")], "d/pwned"),
        "hardlink-etc-passwd": ([hardlink("passwd", "/etc/passwd")], "passwd"),
        "hardlink-dotdot": ([hardlink("x", "../x")], "x"),
        "hardlink-through-symlink": (
            [symlink("evil", str(canary)), hardlink("stolen", "evil/victim")], "stolen"),
        "whiteout-through-symlink": (
            [symlink("evil", str(canary)), whiteout("evil/victim")], "evil/.wh.victim"),
        "opaque-through-symlink": (
            [symlink("evil", str(canary)), opaque("evil")], "evil/.wh..wh..opq"),
        "file-as-parent": ([file("f", "x"), file("f/g", "y")], "f/g"),
        "bad-whiteout": ([file(".wh...")], ".wh..."),
    }


HOSTILE = list(hostile_layers(Path("/x")))
