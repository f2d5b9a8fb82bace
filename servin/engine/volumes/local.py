"""The ``local`` volume driver: a directory under <root>/volumes/<name>/_data, or a mount.

Like docker's local driver, ``--opt type=… --opt device=… --opt o=…`` makes the volume a
filesystem mounted on its ``_data`` directory when the first container using it starts and
unmounted when the last one stops (``type=tmpfs`` gives an empty volume for every run;
``type=none,o=bind,device=/path`` binds a host directory; ``type=nfs,o=addr=…`` mounts NFS).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from servin.engine.linux.mount import MS_BIND, mount, parse_options
from servin.engine.store.snapshots.mounts import is_mount_point, mounts_under, unmount_all
from servin.engine.volumes.model import Volume
from servin.errors import InvalidArgument, Unavailable

OPTION_KEYS = ("type", "device", "o")


def validate_options(options: dict[str, str]) -> dict[str, str]:
    """The driver options, checked: only type, device and o; a mount needs type and device."""
    for key in options:
        if key not in OPTION_KEYS:
            raise InvalidArgument(
                f"invalid option key: {key!r} (the local driver takes type, device and o)"
            )
    out = {k: v for k, v in options.items() if v != ""}
    if out:
        kind = out.get("type", "")
        if not kind:
            raise InvalidArgument("missing required option: \"type\"")
        if kind == "tmpfs":
            out.setdefault("device", "tmpfs")
        if not out.get("device"):
            raise InvalidArgument("missing required option: \"device\"")
        opts = parse_options(out.get("o", "").split(",") if out.get("o") else [])
        if kind == "none" and not opts.is_bind:
            raise InvalidArgument('type "none" needs o=bind (or o=rbind) and a device path')
        if opts.is_bind and not out["device"].startswith("/"):
            raise InvalidArgument(f"bind device {out['device']!r} must be an absolute path")
    return out


def is_mounted_kind(v: Volume) -> bool:
    """Whether the volume's data is a filesystem mounted at first use (not a plain dir)."""
    return bool(v.options.get("type"))


def is_mounted(v: Volume) -> bool:
    """Whether the volume's filesystem is mounted now."""
    return is_mount_point(Path(v.mountpoint))


def create_dirs(v: Volume) -> None:
    """Make ``<root>/volumes/<name>/_data`` (the volume dir is private to root; ``_data`` is
    the volume's root inside containers and keeps docker's 0755)."""
    data = Path(v.mountpoint)
    data.parent.mkdir(mode=0o700, exist_ok=True)
    data.mkdir(mode=0o755, exist_ok=True)


def unmount_for_removal(v: Volume) -> None:
    """Make sure nothing is mounted on the volume's data dir (so deleting it can never reach
    through a mount into other data); Unavailable if something stays mounted."""
    data = Path(v.mountpoint)
    unmount_all(data)
    if is_mount_point(data):
        raise Unavailable(f"volume {v.name} is still mounted at {data}")


def remove_dirs(v: Volume) -> None:
    """Unmount (if mounted) and delete the volume's directory."""
    unmount_for_removal(v)
    remove_tree(Path(v.mountpoint).parent)


def remove_tree(path: Path) -> None:
    """Delete a volume's (or a trash) directory; whatever is mounted inside it is unmounted
    first, so the deletion never reaches through a mount."""
    if not os.path.lexists(path):
        return
    for mount_point in [*mounts_under(path), str(path)]:
        with contextlib.suppress(OSError):
            unmount_all(Path(mount_point))
    if mounts_under(path) or is_mount_point(path):
        raise Unavailable(f"{path} still has a filesystem mounted: not deleting it")
    shutil.rmtree(path, ignore_errors=True)


def mount_volume(v: Volume) -> bool:
    """Mount a ``type=`` volume on its ``_data`` if it is not yet; True when this mounted it."""
    if not is_mounted_kind(v):
        return False
    data = Path(v.mountpoint)
    create_dirs(v)
    if is_mount_point(data):
        return False
    opts = parse_options(v.options.get("o", "").split(",") if v.options.get("o") else [])
    kind = v.options["type"]
    device = v.options["device"]
    try:
        if opts.is_bind:
            mount(device, str(data), None, opts.flags)
        else:
            mount(device, str(data), kind, opts.flags & ~MS_BIND, opts.data or None)
    except OSError as exc:
        raise InvalidArgument(
            f"error while mounting volume {v.name!r} ({kind} {device}): {exc.strerror or exc}"
        ) from exc
    return True


def unmount_volume(v: Volume) -> None:
    """Unmount a ``type=`` volume's filesystem (its last user stopped)."""
    if is_mounted_kind(v):
        with contextlib.suppress(OSError):
            unmount_all(Path(v.mountpoint))


def data_size(v: Volume) -> int:
    """Bytes held in the volume (hard links counted once)."""
    from servin.engine.store.snapshots.diff import tree_bytes

    try:
        return tree_bytes(Path(v.mountpoint))
    except OSError:
        return -1


def is_empty(path: Path) -> bool:
    """Whether a directory has no entries."""
    try:
        with os.scandir(path) as it:
            return next(it, None) is None
    except FileNotFoundError:
        return True
