"""Machine architectures as Go and OCI name them (``amd64``, ``arm64``), not as uname does.

Shared by the CLI (``version``'s client side) and the engine (image platforms, the server side
of ``version``): docker prints ``linux/amd64`` for both.
"""

from __future__ import annotations

import platform

ARCH_ALIASES = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "i686": "386",
    "i386": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def oci_architecture(machine: str | None = None) -> str:
    """``x86_64`` -> ``amd64`` (this machine's when ``machine`` is None)."""
    machine = machine or platform.machine()
    return ARCH_ALIASES.get(machine, machine)
