"""The pod's cgroup: the parent of every member's cgroup, holding the pod-level limits."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from servin.engine.linux.cgroups import CgroupDriver, detect_driver
from servin.engine.pods.model import Pod
from servin.errors import NotFound, ServinError

log = logging.getLogger(__name__)

CPU_PERIOD = 100_000  # µs, as docker's --cpus uses


def pod_limits(pod: Pod) -> dict[str, Any]:
    """The pod's limits in the OCI ``linux.resources`` form ({} for none).

    The memory limit covers swap too (memory+swap = memory): a pod over its limit meets the
    OOM killer inside the pod rather than swapping.
    """
    res = pod.config.resources
    limits: dict[str, Any] = {}
    if res.memory > 0:
        limits["memory"] = {"limit": res.memory, "swap": res.memory}
    if res.nano_cpus > 0:
        limits["cpu"] = {"period": CPU_PERIOD, "quota": res.nano_cpus * CPU_PERIOD // 10**9}
    return limits


class PodCgroups:
    """Creates and removes pods' cgroups (blocking calls)."""

    def __init__(self, driver: CgroupDriver | None = None) -> None:
        self._driver = driver

    @property
    def driver(self) -> CgroupDriver:
        """The host's cgroup driver (detected on first use)."""
        if self._driver is None:
            self._driver = detect_driver()
        return self._driver

    def ensure(self, pod: Pod) -> None:
        """Make the pod's cgroup with its limits (an existing one gets them again)."""
        self.driver.create(pod.cgroup_path, pod_limits(pod) or None)

    def remove(self, pod: Pod) -> None:
        """Remove the pod's cgroup (its members' are gone by now); nothing to do is fine."""
        if not pod.cgroup_path:
            return
        try:
            cgroup = self.driver.open(pod.cgroup_path)
        except NotFound:
            return
        with contextlib.suppress(ServinError, OSError):
            cgroup.kill_all()
        try:
            cgroup.destroy()
        except (ServinError, OSError) as exc:
            log.warning("cannot remove the pod's cgroup",
                        extra={"pod": pod.id, "error": str(exc)})
