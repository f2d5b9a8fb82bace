"""Fixtures for the interactive tests: the monitor harness (native and runc)."""

from __future__ import annotations

from tests.monitor.conftest import harness, rootfs, runtime, session_root

__all__ = ["harness", "rootfs", "runtime", "session_root"]


