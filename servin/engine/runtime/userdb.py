"""``user[:group]`` resolved against a container's own /etc/passwd and /etc/group.

The files are read through ``open_in_root`` so an image whose /etc/passwd is a symlink to a
host path still reads its own file (or none), never the host's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from servin.engine.linux.safepath import open_in_root
from servin.errors import InvalidArgument

MAX_ID = 2**32 - 2


@dataclass(frozen=True)
class ExecUser:
    """The identity a container process runs as."""

    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"


def _read_in_root(rootfs: Path, path: str) -> str:
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with open_in_root(root_fd, path) as resolved:
            if not resolved.mode & 0o100000:  # not a regular file
                return ""
            fd = os.open(resolved.proc_path, os.O_RDONLY | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                return f.read(4 * 1024 * 1024).decode(errors="replace")
    except OSError:
        return ""
    finally:
        os.close(root_fd)


def _entries(text: str, fields: int) -> list[list[str]]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) >= fields:
            out.append(parts)
    return out


def _parse_id(text: str) -> int | None:
    if text.isdigit():
        value = int(text)
        if value > MAX_ID:
            raise InvalidArgument(f"user or group id {value} out of range")
        return value
    return None


def resolve_user(rootfs: Path, spec: str, group_add: list[str] | None = None, *,
                 image_groups: bool = True) -> ExecUser:
    """Resolve ``user[:group]`` (names or ids) as docker does; empty means root.

    ``image_groups=False``: the groups the image's /etc/group gives the user are not added
    (only ``group_add``: the CRI's SupplementalGroupsPolicy Strict).

    A numeric uid missing from /etc/passwd is allowed (gid 0 unless given); a name that is not
    there is an InvalidArgument naming it.
    """
    user_part, _, group_part = (spec or "0").partition(":")
    passwd = _entries(_read_in_root(rootfs, "/etc/passwd"), 7)
    groups = _entries(_read_in_root(rootfs, "/etc/group"), 4)

    uid = _parse_id(user_part)
    entry = next(
        (p for p in passwd if (p[0] == user_part if uid is None else p[2] == str(uid))), None
    )
    if entry is None and uid is None:
        raise InvalidArgument(
            f"unable to find user {user_part}: no matching entries in passwd file"
        )
    name = entry[0] if entry else ""
    if uid is None:
        uid = int(entry[2]) if entry else 0
    gid = int(entry[3]) if entry and entry[3].isdigit() else 0
    home = entry[5] if entry else "/"

    if group_part:
        gid_value = _parse_id(group_part)
        if gid_value is None:
            match = next((g for g in groups if g[0] == group_part), None)
            if match is None:
                raise InvalidArgument(
                    f"unable to find group {group_part}: no matching entries in group file"
                )
            gid_value = int(match[2])
        gid = gid_value

    extra: list[int] = []
    if name and not group_part and image_groups:
        extra = [int(g[2]) for g in groups if name in g[3].split(",") and g[2].isdigit()]
    for item in group_add or []:
        value = _parse_id(item)
        if value is None:
            match = next((g for g in groups if g[0] == item), None)
            if match is None:
                raise InvalidArgument(
                    f"unable to find group {item}: no matching entries in group file"
                )
            value = int(match[2])
        extra.append(value)
    # As runc (and so docker): the primary group is a supplementary group too.
    additional = sorted({*extra, gid})
    return ExecUser(uid, gid, additional, home or "/")
