"""Fixtures for the runtime tests: a busybox rootfs, a NativeRuntime, and cleanup.

Every test runs real containers as root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from servin.engine.runtime.native import NativeRuntime
from tests.runtime.helpers import (
    BUSYBOX,
    CGROUP_PARENT,
    GROUP,
    PASSWD,
    SESSION_TMP,
    Pipes,
)


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("the runtime tests must run as root (they create namespaces and mounts)")
    if not os.access(BUSYBOX, os.X_OK):
        pytest.fail(f"{BUSYBOX} is missing: install busybox-static")


@pytest.fixture(scope="session")
def rootfs_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox rootfs built once per session (tests copy it)."""
    _require_root()
    root = tmp_path_factory.mktemp("template") / "rootfs"
    for directory in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/user", "var",
                      "mnt"):
        (root / directory).mkdir(parents=True)
    os.chmod(root / "tmp", 0o1777)
    os.chmod(root / "root", 0o700)
    os.chown(root / "home/user", 1000, 1000)
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True,
                             text=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", root / "bin" / applet)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    (root / "etc/hostname").write_text("image\n")
    return root


@pytest.fixture
def rootfs(rootfs_template: Path, tmp_path: Path) -> Path:
    """A private copy of the busybox rootfs for one test."""
    target = tmp_path / "bundle" / "rootfs"
    # Hard links: tests never modify busybox itself, and linking is much faster than copying.
    shutil.copytree(rootfs_template, target, symlinks=True, copy_function=os.link)
    return target


@pytest.fixture(autouse=True)
def _close_pipes() -> Iterator[None]:
    yield
    for pipes in Pipes.live:
        pipes.close()
    Pipes.live.clear()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[NativeRuntime]:
    """A NativeRuntime with its state under the test's tmp dir; leftovers are force-deleted."""
    rt = NativeRuntime(tmp_path / "state")
    yield rt
    for container_id in rt.list():  # only after a failed test
        pid = rt.state(container_id).pid
        rt.delete(container_id, force=True)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)  # our child: reap it


@pytest.fixture(scope="session", autouse=True)
def _record_basetemp(tmp_path_factory: pytest.TempPathFactory) -> None:
    SESSION_TMP.append(tmp_path_factory.getbasetemp().resolve())


@pytest.fixture(scope="session", autouse=True)
def _remove_test_cgroup_parent() -> Iterator[None]:
    """Remove the tests' parent cgroup from every hierarchy at the end of the session."""
    yield
    base = Path("/sys/fs/cgroup")
    for hierarchy in base.iterdir() if base.is_dir() else []:
        parent = hierarchy / CGROUP_PARENT
        if parent.is_dir():
            for child in parent.iterdir():
                if child.is_dir():
                    child.rmdir()
            parent.rmdir()
