"""Fixtures for the snapshotter tests: a content store, snapshotters, a canary outside."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from servin.engine.store.content import ContentStore
from servin.engine.store.snapshots.mounts import mounts_under, unmount_all
from tests.snapshots.helpers import Env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    """A fresh store; fails the test if it left anything mounted under its temp dir."""
    e = Env(tmp_path, ContentStore(tmp_path / "content"))
    yield e
    stale = mounts_under(tmp_path)
    for mount_point in stale:
        unmount_all(Path(mount_point))
    assert not stale, f"the test left mounts behind: {stale}"


@pytest.fixture
def canary() -> Iterator[Path]:
    """A directory outside every snapshot root that hostile layers aim at; it must stay as is."""
    path = Path(tempfile.mkdtemp(prefix="sv-canary-", dir="/tmp"))
    (path / "victim").write_text("original")
    yield path
    shutil.rmtree(path)
