"""One daemon with busybox for a whole test module (and an image with VOLUME /app)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import DaemonProcess, short_tmpdir


def app_image_tar(busybox_tar: Path, dest: Path) -> Path:
    """busybox plus /app (owned 1000:2000, mode 0750) holding a 0640 file, a symlink and a
    hard link: the content a first mount copies into an empty volume."""
    with tarfile.open(busybox_tar) as src, tarfile.open(dest, "w") as out:
        for member in src:
            out.addfile(member, src.extractfile(member) if member.isreg() else None)
        d = tarfile.TarInfo("app")
        d.type, d.mode, d.uid, d.gid = tarfile.DIRTYPE, 0o750, 1000, 2000
        out.addfile(d)
        data = b"from the image\n"
        f = tarfile.TarInfo("app/config.txt")
        f.size, f.mode, f.uid, f.gid = len(data), 0o640, 1000, 2000
        out.addfile(f, io.BytesIO(data))
        link = tarfile.TarInfo("app/link")
        link.type, link.linkname = tarfile.SYMTYPE, "config.txt"
        out.addfile(link)
        hard = tarfile.TarInfo("app/hard")
        hard.type, hard.linkname = tarfile.LNKTYPE, "app/config.txt"
        out.addfile(hard)
    return dest


@pytest.fixture(scope="module")
def engine(busybox_tar: Path) -> Iterator[DaemonProcess]:
    """A daemon for the module with ``busybox`` and ``appimg`` (VOLUME /app) imported."""
    d = DaemonProcess(short_tmpdir()).start()
    try:
        d.cli("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox", check=True)
        tar = app_image_tar(busybox_tar, d.base / "app.tar")
        d.cli("import", "-c", 'CMD ["sh"]', "-c", "VOLUME /app", str(tar), "appimg", check=True)
        yield d
    finally:
        d.cleanup()
