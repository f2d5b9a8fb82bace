"""The fd-based tar writer and extractor (no daemon needed)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from servin.engine import fsarchive
from servin.errors import InvalidArgument


def _tar(*entries: tuple[str, str, str]) -> io.BytesIO:
    """(kind, name, data-or-linkname) entries as a tar stream."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for kind, name, value in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value.encode()))
            else:
                info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
                info.linkname = value
                tar.addfile(info)
    buf.seek(0)
    return buf


def _extract(dest: Path, stream: io.BytesIO) -> None:
    fd = os.open(dest, os.O_PATH | os.O_DIRECTORY)
    try:
        fsarchive.Extractor(fd).extract(stream)
    finally:
        os.close(fd)


@pytest.mark.parametrize("name", ["../up", "/abs", "a/../../up"])
def test_entries_leaving_the_destination_are_refused(tmp_path: Path, name: str) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(InvalidArgument, match="outside"):
        _extract(dest, _tar(("file", name, "x")))
    assert not (tmp_path / "up").exists()


def test_symlinks_never_lead_outside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    # Through a link whose target is missing inside the destination: refused, nothing out.
    with pytest.raises(OSError):
        _extract(dest, _tar(("sym", "dangling", str(outside)), ("file", "dangling/f", "1")))
    assert list(outside.iterdir()) == []
    (dest / outside.relative_to("/")).mkdir(parents=True)
    (dest / "outside").mkdir()
    # A link in the archive (absolute, and relative climbing out) then a file through it.
    _extract(dest, _tar(("sym", "abs", str(outside)), ("sym", "rel", "../../outside"),
                        ("file", "abs/f", "1"), ("file", "rel/g", "2")))
    assert list(outside.iterdir()) == []
    assert (dest / outside.relative_to("/") / "f").read_text() == "1"
    assert (dest / "outside" / "g").read_text() == "2"
    with pytest.raises(InvalidArgument):
        _extract(dest, _tar(("link", "hard", "../outside/x")))


def test_writer_round_trip_with_hard_links(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_text("data")
    os.link(src / "d" / "f", src / "h")
    os.symlink("d/f", src / "s")
    os.chmod(src / "d", 0o711)
    buf = io.BytesIO()
    fd = os.open(src, os.O_RDONLY | os.O_DIRECTORY)
    try:
        writer = fsarchive.TarWriter(buf)  # type: ignore[arg-type]
        writer.add_children(fd, "")
        writer.close()
    finally:
        os.close(fd)
    buf.seek(0)
    dest = tmp_path / "dest"
    dest.mkdir()
    _extract(dest, buf)
    assert (dest / "d" / "f").read_text() == "data"
    assert (dest / "h").stat().st_ino == (dest / "d" / "f").stat().st_ino
    assert os.readlink(dest / "s") == "d/f"
    assert (dest / "d").stat().st_mode & 0o777 == 0o711
