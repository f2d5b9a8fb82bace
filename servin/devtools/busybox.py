"""Build the small bundled busybox image from Debian's ``busybox-static``.

The rootfs holds the static busybox binary, a symlink for each of its applets, and minimal
/etc/passwd and /etc/group. The tarball is deterministic (fixed owners and mtimes) and the
image is imported with a fixed creation time, so the same busybox binary always gives the
same layer digest and the same image ID: importing it again is a no-op.

    python -m servin.devtools.busybox OUT.tar            # write the rootfs tarball
    python -m servin.devtools.busybox --import busybox   # build it and import it into the daemon
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
MTIME = 1_700_000_000  # fixed, for a reproducible layer
IMAGE_CHANGES = ('CMD ["sh"]',)

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """\
root:x:0:
daemon:x:1:
bin:x:2:
wheel:x:10:root
www-data:x:33:
users:x:100:user
user:x:1000:
nogroup:x:65534:
"""
DIRS = {
    "bin": 0o755,
    "sbin": 0o755,
    "usr": 0o755,
    "usr/bin": 0o755,
    "usr/sbin": 0o755,
    "etc": 0o755,
    "root": 0o700,
    "home": 0o755,
    "home/user": 0o755,
    "tmp": 0o1777,
    "var": 0o755,
    "var/run": 0o755,
    "var/www": 0o755,
    "dev": 0o755,
    "proc": 0o555,
    "sys": 0o555,
}


def applets(busybox: Path = BUSYBOX) -> list[str]:
    """Paths (relative to /) of every applet the binary provides."""
    out = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True)
    return sorted({line.strip() for line in out.stdout.splitlines() if line.strip()})


def _info(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.linkname = link
    info.mtime = MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if name == "home/user":
        info.uid = info.gid = 1000
    return info


def write_rootfs(out: Path, busybox: Path = BUSYBOX) -> Path:
    """Write the busybox rootfs tarball to ``out`` and return it."""
    if not busybox.exists():
        raise SystemExit(f"{busybox} not found: install Debian's busybox-static")
    data = busybox.read_bytes()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, mode in DIRS.items():
            tar.addfile(_info(name, tarfile.DIRTYPE, mode))
        tar.addfile(_info("bin/busybox", tarfile.REGTYPE, 0o755, len(data)), io.BytesIO(data))
        for name, text in (("etc/passwd", PASSWD), ("etc/group", GROUP)):
            raw = text.encode()
            tar.addfile(_info(name, tarfile.REGTYPE, 0o644, len(raw)), io.BytesIO(raw))
        for path in applets(busybox):
            rel = path.lstrip("/")
            if rel == "bin/busybox":
                continue
            tar.addfile(_info(rel, tarfile.SYMTYPE, 0o777, link="/bin/busybox"))
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI: write the tarball, or build and import it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, help="where to write the rootfs tarball")
    parser.add_argument("--import", dest="reference", help="import it into the daemon as REF")
    parser.add_argument("-H", "--host", help="daemon address (default: $SERVIN_HOST or the socket)")
    args = parser.parse_args(argv)
    if not args.out and not args.reference:
        parser.error("give OUT, --import REF, or both")
    with tempfile.TemporaryDirectory() as tmp:
        tarball = write_rootfs(args.out or Path(tmp) / "busybox.tar")
        if args.reference:
            from servin.client.sync import Client

            with Client(args.host) as client:
                reply = client.import_image(
                    tarball,
                    args.reference,
                    changes=IMAGE_CHANGES,
                    message="busybox from Debian's busybox-static",
                    created=MTIME,  # the same bytes and config: the same image ID
                )
            print(reply.image_id)
        else:
            print(tarball)
    return 0


if __name__ == "__main__":
    sys.exit(main())
