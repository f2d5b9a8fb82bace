"""Fixtures shared by every test: real daemons in temp dirs and the bundled busybox image."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from servin.devtools.busybox import write_rootfs
from tests.daemon import DaemonProcess, short_tmpdir


def pytest_configure(config: pytest.Config) -> None:
    if os.geteuid() != 0:
        raise pytest.UsageError("Servin's tests run real containers: run them as root")


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled busybox rootfs tarball (built from Debian's busybox-static)."""
    return write_rootfs(tmp_path_factory.mktemp("busybox") / "busybox.tar")


@pytest.fixture(scope="module")
def engine(busybox_tar: Path) -> Iterator[DaemonProcess]:
    """One daemon for a whole test module (containers are cheap, daemons less), with busybox
    imported as ``busybox``."""
    d = DaemonProcess(short_tmpdir()).start()
    try:
        d.cli("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox", check=True)
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def daemon() -> Iterator[DaemonProcess]:
    """A fresh daemon on its own root, exec root and socket."""
    d = DaemonProcess(short_tmpdir()).start()
    try:
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A short-pathed temp dir (for sockets), removed afterwards."""
    path = short_tmpdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemon_factory() -> Iterator[type[DaemonProcess]]:
    """Make extra daemons; all are stopped and removed at the end of the test."""
    made: list[DaemonProcess] = []

    class Factory(DaemonProcess):
        def __init__(self, base: Path | None = None, extra_args: list[str] | None = None):
            super().__init__(base or short_tmpdir(), list(extra_args or []))
            made.append(self)

    try:
        yield Factory
    finally:
        for d in made:
            d.cleanup()


@pytest.fixture
def busybox_image(daemon: DaemonProcess, busybox_tar: Path) -> str:
    """The busybox image imported into ``daemon``; returns its ID."""
    out = daemon.cli("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox", check=True)
    return out.stdout.strip()
