"""Helpers for the cgroup tests: the host's driver, paused processes, control file paths."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from servin.engine.linux.cgroups import Cgroup, CgroupDriver, V1Cgroup, detect_driver
from servin.errors import ServinError

ROOT = Path("/sys/fs/cgroup")

# Deny everything, allow /dev/null and /dev/zero, then take back reading /dev/zero.
DEVICE_RULES = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "r"},
]
DEVICE_PROBE = (
    "(: </dev/null) 2>/dev/null && echo null-ok || echo null-denied; "
    "(: >/dev/zero) 2>/dev/null && echo zero-write-ok || echo zero-write-denied; "
    "(: </dev/zero) 2>/dev/null && echo zero-read-ok || echo zero-read-denied; "
    "(: </dev/full) 2>/dev/null && echo full-ok || echo full-denied"
)
DEVICE_VERDICTS = ["null-ok", "zero-write-ok", "zero-read-denied", "full-denied"]


def host_driver_or_skip() -> CgroupDriver:
    if os.geteuid() != 0:
        pytest.skip("cgroup tests need root")
    try:
        return detect_driver(ROOT)
    except ServinError as exc:
        pytest.skip(f"no usable cgroup hierarchy on this machine: {exc}")


def control_file(cgroup: Cgroup, controller: str, name: str) -> Path:
    """Where ``name`` of ``controller`` lives for this cgroup, whatever the version."""
    if isinstance(cgroup, V1Cgroup):
        directory = cgroup.dir(controller)
        assert directory is not None, f"{controller} is not mounted"
        return directory / name
    return cgroup.dir / name  # type: ignore[attr-defined]


class Gated:
    """A process started paused (blocked reading stdin) so it can join a cgroup first."""

    def __init__(self, command: str) -> None:
        self.proc = subprocess.Popen(
            ["/bin/busybox", "sh", "-c", f"read _ ; {command}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.pid = self.proc.pid

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"\n")
        self.proc.stdin.close()
        self.proc.stdin = None  # so that communicate() does not flush it

    def output(self, timeout: float = 20) -> str:
        out, _ = self.proc.communicate(timeout=timeout)
        return out.decode()

    def reap(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
