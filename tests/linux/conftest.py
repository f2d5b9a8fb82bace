"""Fixtures for the tests of servin.engine.linux: unique test cgroups that are always removed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from servin.engine.linux.cgroups import CgroupDriver
from tests.linux.cgroup_helpers import host_driver_or_skip


@pytest.fixture
def host_driver() -> CgroupDriver:
    """The cgroup driver of this machine (skips, saying why, when there is none)."""
    return host_driver_or_skip()


@pytest.fixture
def parent(host_driver: CgroupDriver) -> Iterator[str]:
    """A unique parent cgroup path for one test, removed with everything below it after."""
    path = f"/servin-test-{uuid.uuid4().hex[:12]}"
    yield path
    if host_driver.exists(path):
        host_driver.open(path).destroy()
    assert not host_driver.exists(path)
