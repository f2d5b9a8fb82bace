"""Mount specs -> resolved mounts at create, and host sources for the bundle at start.

Three ways in, one result (the model's ``Mount`` entries in ``Container.mounts``):
``-v`` specs (``binds``: ``NAME:/path[:opts]``, ``/host:/path[:opts]``, ``/path`` for an
anonymous volume), structured ``--mount``/``--tmpfs`` mounts, ``--volumes-from`` and the
image's ``VOLUME`` paths (anonymous volumes). Everything is validated before anything is
created, so a bad spec gives one error and leaves no volume or directory behind.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from servin.engine.containers.model import HostConfig, Mount
from servin.engine.volumes.model import LOCAL, looks_like_volume_name, validate_name
from servin.errors import InvalidArgument, ServinError

PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
_BIND_FLAGS = ("ro", "rw", "z", "Z", "nocopy", "consistent", "cached", "delegated",
               *PROPAGATIONS)
_TMPFS_FLAGS = ("ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "atime",
                "noatime", "strictatime", "nostrictatime", "relatime", "norelatime")
_TMPFS_KEYS = ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol", "huge")
_SIZE = re.compile(r"^\d+[kKmMgG%]?$")
VOLUME_OPT = "volume-opt="
NOCOPY = "nocopy"


def parse_bind(spec: str) -> Mount:
    """A ``-v`` spec as docker reads it; a source that is not a path names a volume."""
    parts = spec.split(":")
    if len(parts) == 1:
        source, target, flags = "", parts[0], ""
    elif len(parts) == 2:
        source, target, flags = parts[0], parts[1], ""
        if not target.startswith("/") and source.startswith("/"):
            # "/path:ro" is an anonymous volume with options
            source, target, flags = "", parts[0], parts[1]
    elif len(parts) == 3:
        source, target, flags = parts
    else:
        raise InvalidArgument(f"invalid volume specification: {spec!r}")
    if not target.startswith("/"):
        raise InvalidArgument(f"invalid volume specification: {spec!r}: the container path "
                              f"{target!r} must be absolute")
    options = [o for o in flags.split(",") if o] if flags else []
    for option in options:
        if option not in _BIND_FLAGS:
            raise InvalidArgument(f"invalid volume specification: {spec!r}: "
                                  f"unknown option {option!r}")
    propagation = next((o for o in options if o in PROPAGATIONS), "")
    read_only = "ro" in options
    if source.startswith("/"):
        if NOCOPY in options:
            raise InvalidArgument(f"invalid volume specification: {spec!r}: "
                                  "nocopy is for volumes, not bind mounts")
        return Mount(type="bind", source=os.path.normpath(source), target=target,
                                read_only=read_only, propagation=propagation,
                                options=["create-host-path"])
    if source and not looks_like_volume_name(source):
        raise InvalidArgument(
            f"invalid volume specification: {spec!r}: {source!r} is neither an absolute host "
            'path nor a volume name ("[a-zA-Z0-9][a-zA-Z0-9_.-]+")'
        )
    if propagation:
        raise InvalidArgument(f"invalid volume specification: {spec!r}: "
                              "propagation applies to bind mounts only")
    return Mount(type="volume", source=source, target=target, read_only=read_only,
                 driver=LOCAL, options=[NOCOPY] if NOCOPY in options else [])


def _check_target(target: str) -> str:
    if not target.startswith("/"):
        raise InvalidArgument(f"invalid mount target {target!r}: it must be an absolute path")
    clean = os.path.normpath(target)
    if clean == "/":
        raise InvalidArgument("invalid mount target '/': cannot mount over the root")
    return clean


def copy_mount(m: Mount) -> Mount:
    """An independent copy of a mount."""
    return msgspec.structs.replace(m, options=list(m.options))


def validate_mount(m: Mount) -> Mount:
    """A copy of ``m`` checked and normalised (InvalidArgument on anything wrong)."""
    out = copy_mount(m)
    out.target = _check_target(m.target)
    create = "create-host-path" in m.options
    if m.type == "bind":
        if not m.source.startswith("/"):
            raise InvalidArgument(
                f"invalid mount config for type \"bind\": source {m.source!r} must be an "
                "absolute path")
        if not create and not os.path.exists(m.source):
            raise InvalidArgument(
                f"invalid mount config for type \"bind\": bind source path does not exist: "
                f"{m.source}")
        if m.propagation and m.propagation not in PROPAGATIONS:
            raise InvalidArgument(f"invalid mount propagation {m.propagation!r}")
        extra = [o for o in m.options if o not in ("create-host-path", "rro")]
        if extra:
            raise InvalidArgument(f"invalid option {extra[0]!r} for a bind mount")
        if "rro" in m.options and (not m.read_only
                                   or m.propagation not in ("", "private", "rprivate")):
            # Read-only all the way down needs the mount itself read-only, and no mount
            # propagated in later (it would not be read-only).
            raise InvalidArgument("a recursive read-only bind mount must be read-only and "
                                  "private")
    elif m.type == "volume":
        if m.source:
            validate_name(m.source)
        if m.propagation:
            raise InvalidArgument("invalid mount config for type \"volume\": "
                                  "bind-propagation applies to bind mounts only")
        for option in m.options:
            if option != NOCOPY and not option.startswith(VOLUME_OPT):
                raise InvalidArgument(f"invalid option {option!r} for a volume mount")
        out.driver = m.driver or LOCAL
    elif m.type == "tmpfs":
        if m.source:
            raise InvalidArgument("invalid mount config for type \"tmpfs\": "
                                  "a tmpfs takes no source")
        for option in m.options:
            key, sep, value = option.partition("=")
            if sep and key in _TMPFS_KEYS:
                if key == "size" and not _SIZE.match(value):
                    raise InvalidArgument(f"invalid tmpfs size {value!r}")
                if key == "mode" and not re.fullmatch(r"[0-7]{1,4}", value):
                    raise InvalidArgument(f"invalid tmpfs mode {value!r}: use octal, e.g. 1777")
            elif sep or key not in _TMPFS_FLAGS:
                raise InvalidArgument(f"invalid tmpfs option {option!r}")
    else:
        raise InvalidArgument(f"invalid mount type {m.type!r}: use bind, volume or tmpfs")
    return out


def volume_options(m: Mount) -> dict[str, str]:
    """The driver options a ``--mount volume-opt=`` gave (used when the volume is new)."""
    opts: dict[str, str] = {}
    for option in m.options:
        if option.startswith(VOLUME_OPT):
            key, _, value = option[len(VOLUME_OPT):].partition("=")
            opts[key] = value
    return opts


def parse_volumes_from(text: str) -> tuple[str, str]:
    """``CONTAINER[:ro|rw]`` -> (container, mode)."""
    name, _, mode = text.partition(":")
    if not name or mode not in ("", "ro", "rw"):
        raise InvalidArgument(f"invalid --volumes-from {text!r}: use CONTAINER[:ro|rw]")
    return name, mode


@dataclass
class Resolver:
    """What resolving needs from the engine: other containers' mounts, volume creation."""

    container_mounts: Callable[[str], list[Mount]]  # --volumes-from source
    create_volume: Callable[..., Any]  # VolumeService.create
    remove_volume: Callable[[str], None]
    volume_exists: Callable[[str], bool]


def resolve(host: HostConfig, image: dict[str, Any],
            r: Resolver) -> tuple[list[Mount], list[str]]:
    """The container's mounts, every volume named, and the volumes this call created
    (blocking).

    Precedence for one target: the user's mounts, then --volumes-from, then the image's
    VOLUME (docker's order). On failure, volumes this call created are removed again.
    """
    user = [validate_mount(parse_bind(b)) for b in host.binds]
    user += [validate_mount(m) for m in host.mounts]
    seen: set[str] = set()
    for m in user:
        if m.target in seen:
            raise InvalidArgument(f"duplicate mount point: {m.target}")
        seen.add(m.target)
    inherited: list[Mount] = []
    for text in host.volumes_from:
        name, mode = parse_volumes_from(text)
        for m in r.container_mounts(name):
            if m.type == "tmpfs" or m.target in seen:
                continue
            copy = copy_mount(m)
            if mode:
                copy.read_only = mode == "ro"
            inherited.append(copy)
            seen.add(m.target)
    anonymous = []
    for path in sorted((image.get("Volumes") or {}).keys()):
        target = _check_target(path)
        if target not in seen:
            anonymous.append(Mount(type="volume", target=target, driver=LOCAL))
            seen.add(target)
    resolved = user + inherited + anonymous
    created: list[str] = []
    try:
        for m in resolved:
            if m.type == "bind" and "create-host-path" in m.options:
                if not os.path.exists(m.source):
                    os.makedirs(m.source, 0o755, exist_ok=True)
                m.options = [o for o in m.options if o != "create-host-path"]
            elif m.type == "volume" and not m.name:
                existed = bool(m.source) and r.volume_exists(m.source)
                v = r.create_volume(m.source, m.driver or LOCAL, volume_options(m),
                                    anonymous=not m.source)
                if not existed:
                    created.append(v.name)
                m.name = v.name
                m.source = v.name
                m.options[:] = [o for o in m.options if not o.startswith(VOLUME_OPT)]
    except BaseException:
        for name in created:
            with contextlib.suppress(ServinError, OSError):
                r.remove_volume(name)
        raise
    return resolved, created


def volume_names(mounts: list[Mount]) -> list[str]:
    """The volume names among resolved mounts."""
    return [m.name for m in mounts if m.type == "volume" and m.name]
