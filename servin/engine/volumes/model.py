"""The engine's one Volume model; servin.v1 and the Docker API translate onto it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from servin.engine.limits import check_name_length
from servin.errors import InvalidArgument

LOCAL = "local"
# Docker's rule for volume names: two or more characters, starting alphanumeric.
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


@dataclass
class Volume:
    """One volume and where its data lives on the host."""

    name: str
    driver: str
    created_ns: int
    mountpoint: str
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False


@dataclass(frozen=True)
class VolumeView:
    """A volume with how many containers use it (and its size when asked)."""

    volume: Volume
    ref_count: int
    size: int = -1  # bytes; -1 = not measured


def validate_name(name: str) -> str:
    """The name, or InvalidArgument naming docker's rule."""
    check_name_length("volume", name)
    if not _NAME.match(name):
        raise InvalidArgument(
            f'invalid volume name "{name}": only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed, '
            "and it must be at least two characters long"
        )
    return name


def looks_like_volume_name(text: str) -> bool:
    """Whether ``text`` (the source of a ``-v`` spec) names a volume rather than a host path."""
    return bool(_NAME.match(text))
