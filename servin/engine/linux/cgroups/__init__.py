"""Linux control groups, v1 and v2 behind one interface.

``detect_driver()`` looks at the cgroup mount once and returns the driver for the host;
everything else goes through ``CgroupDriver`` and ``Cgroup``. Standard library only, as the
per-container monitor imports this.
"""

from __future__ import annotations

from pathlib import Path

from .base import Cgroup, CgroupDriver, CgroupStats
from .v1 import V1Cgroup, V1Driver
from .v2 import V2Cgroup, V2Driver

__all__ = [
    "Cgroup",
    "CgroupDriver",
    "CgroupStats",
    "V1Cgroup",
    "V1Driver",
    "V2Cgroup",
    "V2Driver",
    "detect_driver",
]


def detect_driver(root: Path = Path("/sys/fs/cgroup")) -> CgroupDriver:
    """The cgroup driver for the hierarchy mounted at ``root``.

    v2 when ``root`` is itself a cgroup2 mount offering controllers (its cgroup.controllers
    is not empty); otherwise v1, with controllers mounted as ``root/<controller>`` (a hybrid
    host's ``root/unified`` is ignored). Raises ``Unavailable`` when neither is usable.
    """
    root = Path(root)
    try:
        controllers = (root / "cgroup.controllers").read_text().split()
    except OSError:
        controllers = []
    if controllers:
        return V2Driver(root)
    return V1Driver(root)
