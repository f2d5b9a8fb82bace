"""``RUN --mount=...``: BuildKit's mount options, parsed and checked.

- ``type=bind`` (the default): ``target``, ``source`` (default the root), ``from`` (a stage
  or an image; default the build context), ``rw`` (writes are allowed and thrown away;
  read-only otherwise).
- ``type=cache``: ``target``, ``id`` (default the target), ``sharing=shared|private|locked``,
  ``mode`` (0755), ``uid``/``gid`` (0); the directory persists between builds.
- ``type=tmpfs``: ``target``, ``size``.
- ``type=secret``: ``id`` (default the target's base name), ``target`` (default
  ``/run/secrets/<id>``), ``required``, ``mode`` (0400), ``uid``/``gid``.
- ``type=ssh`` is refused (no SSH agent forwarding).
"""

from __future__ import annotations

import csv
import posixpath
import re
from dataclasses import dataclass

from servin.errors import InvalidArgument

TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING = ("shared", "private", "locked")
_SIZE = re.compile(r"^(\d+)([kmgKMG]?)[bB]?$")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


@dataclass(frozen=True)
class RunMount:
    """One parsed ``--mount``."""

    type: str
    target: str
    source: str = ""
    from_: str = ""
    readonly: bool = True
    id: str = ""
    sharing: str = "shared"
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    size: int = 0  # tmpfs bytes (0: the kernel's default)
    required: bool = False

    def key(self) -> dict[str, object]:
        """What of the mount goes into the step's cache key (never a secret's data)."""
        return {"type": self.type, "target": self.target, "source": self.source,
                "from": self.from_, "readonly": self.readonly, "id": self.id,
                "sharing": self.sharing, "mode": self.mode, "uid": self.uid, "gid": self.gid,
                "size": self.size, "required": self.required}


def _fields(text: str) -> list[str]:
    try:
        rows = list(csv.reader([text]))
    except csv.Error as exc:
        raise InvalidArgument(f"invalid --mount {text!r}: {exc}") from None
    return [f.strip() for f in (rows[0] if rows else []) if f.strip()]


def _bool(key: str, value: str | None, text: str) -> bool:
    if value is None:
        return True
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise InvalidArgument(f"invalid --mount {text!r}: {key} takes true or false, not {value!r}")


def _int(key: str, value: str, text: str, base: int = 10) -> int:
    try:
        number = int(value, base)
    except ValueError:
        raise InvalidArgument(f"invalid --mount {text!r}: bad {key} {value!r}") from None
    if number < 0:
        raise InvalidArgument(f"invalid --mount {text!r}: {key} cannot be negative")
    return number


def _size(value: str, text: str) -> int:
    match = _SIZE.match(value)
    if not match:
        raise InvalidArgument(f"invalid --mount {text!r}: bad size {value!r}")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def _target(value: str, text: str) -> str:
    if not value:
        raise InvalidArgument(f"invalid --mount {text!r}: a target is required")
    clean = posixpath.normpath(posixpath.join("/", value))
    if clean == "/":
        raise InvalidArgument(f"invalid --mount {text!r}: cannot mount over the root")
    return clean


def parse_mount(text: str, workdir: str = "/") -> RunMount:
    """One ``--mount`` value (after substitution); a relative target is below ``workdir``."""
    values: dict[str, str | None] = {}
    for field in _fields(text):
        key, sep, value = field.partition("=")
        key = key.strip().lower()
        if key in values:
            raise InvalidArgument(f"invalid --mount {text!r}: {key} given twice")
        values[key] = value.strip() if sep else None
    kind = values.pop("type", None) or "bind"
    if kind not in TYPES:
        raise InvalidArgument(f"invalid --mount {text!r}: unknown type {kind!r} "
                              f"(use {', '.join(TYPES[:-1])})")
    if kind == "ssh":
        raise InvalidArgument("RUN --mount=type=ssh is not supported (no SSH agent "
                              "forwarding): use a secret")
    target_raw = ""
    for alias in ("target", "dst", "destination"):
        if alias in values:
            target_raw = values.pop(alias) or ""
    source = ""
    for alias in ("source", "src"):
        if alias in values:
            source = values.pop(alias) or ""
    fields: dict[str, object] = {"type": kind}
    readonly = kind == "bind"
    for key in ("readonly", "ro"):
        if key in values:
            readonly = _bool(key, values.pop(key), text)
    for key in ("readwrite", "rw"):
        if key in values:
            readonly = not _bool(key, values.pop(key), text)
    fields["readonly"] = readonly
    if "from" in values:
        if kind not in ("bind", "cache"):
            raise InvalidArgument(f"invalid --mount {text!r}: from applies to bind and cache")
        fields["from_"] = values.pop("from") or ""
    if kind == "secret":
        secret_id = values.pop("id", None) or (posixpath.basename(target_raw)
                                               if target_raw else "")
        if not secret_id:
            raise InvalidArgument(f"invalid --mount {text!r}: a secret needs an id")
        fields["id"] = secret_id
        fields["mode"] = 0o400
        target_raw = target_raw or f"/run/secrets/{secret_id}"
        if "required" in values:
            fields["required"] = _bool("required", values.pop("required"), text)
    elif kind == "cache":
        fields["id"] = values.pop("id", None) or ""
        sharing = values.pop("sharing", None) or "shared"
        if sharing not in SHARING:
            raise InvalidArgument(f"invalid --mount {text!r}: sharing is shared, private or "
                                  "locked")
        fields["sharing"] = sharing
    elif kind == "tmpfs" and "size" in values:
        fields["size"] = _size(values.pop("size") or "", text)
    if kind in ("cache", "secret"):
        if "mode" in values:
            fields["mode"] = _int("mode", values.pop("mode") or "", text, 8) & 0o7777
        for key in ("uid", "gid"):
            if key in values:
                fields[key] = _int(key, values.pop(key) or "", text)
    if values:
        raise InvalidArgument(f"invalid --mount {text!r}: unknown option "
                              f"{next(iter(values))!r} for type {kind}")
    target = _target(posixpath.join(workdir or "/", target_raw) if target_raw else "", text)
    if kind == "cache" and not fields["id"]:
        fields["id"] = target
    if kind in ("tmpfs", "secret") and source:
        raise InvalidArgument(f"invalid --mount {text!r}: {kind} takes no source")
    return RunMount(target=target, source=source, **fields)  # type: ignore[arg-type]  # checked above


def check_unique(mounts: list[RunMount]) -> None:
    """Refuse two mounts on one target."""
    seen: set[str] = set()
    for m in mounts:
        if m.target in seen:
            raise InvalidArgument(f"duplicate mount target {m.target}")
        seen.add(m.target)
