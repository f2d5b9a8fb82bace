"""One daemon with busybox and three containers for a test module (exited 0, exited 3, running)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
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


def on_a_pty(argv: list[str], env: dict[str, str], cwd: Path) -> bytes:
    """Run ``argv`` with stdout and stderr on a pseudo-terminal (exit 0 asserted); what it
    drew."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
                            env=env, cwd=cwd)
    os.close(follower)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 60)
            if not ready:
                raise AssertionError(f"{argv[1:]} drew nothing on the pty for 60 s")
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the pty
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
    drawn = b"".join(chunks)
    assert proc.wait(30) == 0, drawn
    return drawn
