"""OCI platform names (os/architecture/variant) and the host's own."""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass

from servin.arch import ARCH_ALIASES
from servin.errors import InvalidArgument

_ARCH_ALIASES = ARCH_ALIASES


@dataclass(frozen=True)
class Platform:
    """An image platform: ``linux/arm64/v8``."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        out = f"{self.os}/{self.architecture}"
        return f"{out}/{self.variant}" if self.variant else out


def host_platform() -> Platform:
    """The platform of this machine."""
    machine = _platform.machine()
    arch = _ARCH_ALIASES.get(machine, machine)
    return Platform("linux", arch, "v8" if arch == "arm64" else "")


def parse_platform(text: str) -> Platform:
    """Parse ``os/arch[/variant]`` (``arch`` alone means linux); empty means the host's."""
    if not text:
        return host_platform()
    parts = text.lower().split("/")
    if len(parts) == 1:
        parts = ["linux", *parts]
    if len(parts) > 3 or not all(parts):
        raise InvalidArgument(f"invalid platform {text!r}: expected os/arch[/variant]")
    arch = _ARCH_ALIASES.get(parts[1], parts[1])
    variant = parts[2] if len(parts) == 3 else ("v8" if arch == "arm64" else "")
    return Platform(parts[0], arch, variant)
