"""Mounting snapshots: overlay options, the mount table, and unmounting for good."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from servin.engine.linux.mount import (
    MNT_DETACH,
    MS_BIND,
    UMOUNT_NOFOLLOW,
    is_mount_root,
    mount,
    umount,
)
from servin.errors import ResourceExhausted

_PAGE = os.sysconf("SC_PAGE_SIZE")
_INDEX_PARAM = Path("/sys/module/overlay/parameters/index")


@dataclass(frozen=True)
class SnapshotMounts:
    """What to mount as a container's rootfs, in OCI ``mounts[]`` terms.

    Overlay: ``type="overlay"``, ``source="overlay"``, options ``lowerdir=top:...:bottom``,
    ``upperdir=``, ``workdir=`` (and ``index=off`` when the kernel enables the index by
    default). Copy driver: ``type="bind"``, ``source`` the rootfs dir, options ``rbind, rw``.
    """

    type: str
    source: str
    options: list[str] = field(default_factory=list)

    @property
    def data(self) -> str:
        """The filesystem data string for mount(2) (overlay options joined by commas)."""
        return ",".join(o for o in self.options if o not in ("rbind", "bind", "rw"))


def overlay_mounts(lowers: list[Path], upper: Path, work: Path) -> SnapshotMounts:
    """The overlay mount of ``lowers`` (top first) under ``upper``."""
    options = [
        "lowerdir=" + ":".join(str(p) for p in lowers),
        f"upperdir={upper}",
        f"workdir={work}",
    ]
    if _index_on_by_default():
        # With the index on, overlay ties the upper dir to the lowers' file handles, which
        # breaks when layers are re-unpacked or the snapshot root moves; nothing here needs it.
        options.append("index=off")
    return SnapshotMounts("overlay", "overlay", options)


def bind_mounts(source: Path) -> SnapshotMounts:
    """A bind mount of a plain directory (the copy driver)."""
    return SnapshotMounts("bind", str(source), ["rbind", "rw"])


def _index_on_by_default() -> bool:
    try:
        return _INDEX_PARAM.read_text().strip() == "Y"
    except OSError:
        return False


def mount_snapshot(m: SnapshotMounts, target: Path, layers_dir: Path, *,
                   volatile: bool = False) -> None:
    """Mount ``m`` on ``target``.

    When the overlay data would pass the kernel's one-page limit, the layer paths are given
    as ``/proc/self/fd/N/<n>/fs`` relative to an open fd of ``layers_dir`` (shorter, and
    unlike a chdir it is safe in a threaded process). ``volatile`` (overlay, Linux 5.10+;
    ignored where unsupported): the upper dir is never synced, not even at unmount, which
    otherwise syncs the whole filesystem holding it; for snapshots nobody needs after a
    crash of the machine (a container removed when it exits).
    """
    if m.type == "bind":
        mount(m.source, str(target), None, MS_BIND, None)
        return
    if volatile:
        try:
            mount_snapshot(SnapshotMounts(m.type, m.source, [*m.options, "volatile"]), target,
                           layers_dir)
            return
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
    data = m.data
    if len(data) < _PAGE:
        mount(m.source, str(target), m.type, 0, data)
        return
    fd = os.open(layers_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        short = data.replace(f"{layers_dir}/", f"/proc/self/fd/{fd}/")
        if len(short) >= _PAGE:
            layers = data.split(",", 1)[0].count(":") + 1
            raise ResourceExhausted(
                f"cannot mount {layers} layers: the overlay options exceed {_PAGE} bytes")
        mount(m.source, str(target), m.type, 0, short, label=str(target))
    finally:
        os.close(fd)


@dataclass(frozen=True)
class MountEntry:
    """One line of /proc/self/mountinfo."""

    mount_point: str
    fstype: str
    source: str
    super_options: list[str]


_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(text: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (\040 ...).
    if "\\" not in text:
        return text
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), text)


def mount_table() -> list[MountEntry]:
    """The calling process's mounts, in mount order.

    Costly on a host with many mounts (the kernel formats every line: about 20 us each):
    hot paths ask ``is_mount_point`` or unmount directly instead.
    """
    entries: list[MountEntry] = []
    with open("/proc/self/mountinfo", "rb") as f:
        text = f.read().decode("utf-8", "surrogateescape")
    for line in text.splitlines():
        before, _, after = line.partition(" - ")
        fields = before.split(" ", 5)
        rest = after.split(" ", 3)
        if len(fields) < 5 or len(rest) < 3:
            continue
        entries.append(MountEntry(_unescape(fields[4]), rest[0], _unescape(rest[1]),
                                  rest[2].split(",")))
    return entries


def is_mount_point(path: Path) -> bool:
    """Whether something is mounted on ``path`` (statx; the mount table on old kernels)."""
    text = os.path.abspath(path)
    try:
        root = is_mount_root(text)
    except OSError:
        return False  # no such path: nothing can be mounted there
    if root is not None:
        return root
    return any(e.mount_point == text for e in mount_table())


def unmount_all(target: Path) -> None:
    """Unmount everything stacked on ``target``; nothing mounted there is fine.

    A busy mount (a process still has its cwd inside) is detached instead, so the kernel
    frees it when the last user goes. The kernel says when nothing is left (EINVAL: not a
    mount point), so the mount table is never read.
    """
    for _ in range(64):
        try:
            umount(str(target), UMOUNT_NOFOLLOW)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                umount(str(target), MNT_DETACH | UMOUNT_NOFOLLOW)
            elif exc.errno in (errno.EINVAL, errno.ENOENT):
                return
            else:
                raise


def mounts_under(root: Path) -> list[str]:
    """Mount points strictly below ``root``, deepest first (``root`` itself may be a
    filesystem the administrator mounted there: it is not ours to unmount)."""
    prefix = os.path.abspath(root)
    found = {e.mount_point for e in mount_table() if e.mount_point.startswith(prefix + "/")}
    return sorted(found, key=lambda p: p.count("/"), reverse=True)


def overlay_usable(scratch: Path) -> bool:
    """Whether an overlay mount (with trusted xattrs and whiteouts) works under ``scratch``."""
    dirs = {name: scratch / name for name in ("lower", "upper", "work", "merged")}
    try:
        for d in dirs.values():
            d.mkdir(parents=True)
        (dirs["lower"] / "probe").write_text("x")
        try:
            mount("overlay", str(dirs["merged"]), "overlay", 0,
                  f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}")
        except OSError:
            return False
        try:
            (dirs["merged"] / "probe").unlink()  # makes a whiteout in upper
            return not (dirs["merged"] / "probe").exists()
        finally:
            with contextlib.suppress(OSError):
                umount(str(dirs["merged"]), MNT_DETACH)
    except OSError:
        return False
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
