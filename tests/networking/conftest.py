"""One daemon with busybox for the networking tests of a module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import DaemonProcess, short_tmpdir


@pytest.fixture(scope="module")
def engine(busybox_tar: Path) -> Iterator[DaemonProcess]:
    """A daemon for the module, with busybox imported as ``busybox``."""
    d = DaemonProcess(short_tmpdir()).start()
    try:
        d.cli("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox", check=True)
        yield d
    finally:
        d.cleanup()
