"""One daemon with busybox and three containers for a test module (exited 0, exited 3, running)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.daemon import DaemonProcess, short_tmpdir


@dataclass
class Fleet:
    """The module's daemon and the containers made on it, by name -> full ID."""

    daemon: DaemonProcess
    ids: dict[str, str]


@pytest.fixture(scope="module")
def fleet(busybox_tar: Path) -> Iterator[Fleet]:
    """A daemon for the module with busybox and containers ``ok`` (exited 0), ``three``
    (exited 3) and ``runner`` (running, label tier=web), created in that order."""
    d = DaemonProcess(short_tmpdir()).start()
    try:
        d.cli("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox", check=True)
        d.cli("run", "--name", "ok", "busybox", "true", check=True)
        assert d.cli("run", "--name", "three", "busybox", "sh", "-c", "exit 3").returncode == 3
        d.cli("run", "-d", "--name", "runner", "--label", "tier=web", "busybox", "sleep", "600",
              check=True)
        ids = {
            name: d.cli("inspect", "-f", "{{.Id}}", name, check=True).stdout.strip()
            for name in ("ok", "three", "runner")
        }
        yield Fleet(d, ids)
    finally:
        d.cleanup()
