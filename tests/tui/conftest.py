"""Fixtures for the console's tests: the fake daemon, a ready app, and snapshot placement.

Snapshots (SVG) live in the repository's top-level ``snapshots/tui/<test module>/``, not in
syrupy's default ``__snapshots__`` next to the tests: the project keeps all reviewed screen
images in one place. pytest-textual-snapshot picks its syrupy extension by the module global
``SVGImageExtension`` at call time; the fixture below swaps in a subclass that only changes
the directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_textual_snapshot

from servin.tui.app import ServinApp
from servin.tui.source import Source
from tests.tui.fake import HOST, FakeDaemon

REPO = Path(__file__).resolve().parents[2]
SNAPSHOTS = REPO / "snapshots" / "tui"


class RepoSnapshotExtension(pytest_textual_snapshot.SVGImageExtension):
    """SVG snapshots under <repo>/snapshots/tui/<test module>/<test name>.svg."""

    @classmethod
    def dirname(cls, *, test_location) -> str:  # type: ignore[no-untyped-def, override]
        return str(SNAPSHOTS / Path(test_location.filepath).stem)


@pytest.fixture(autouse=True)
def _snapshots_in_repo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(pytest_textual_snapshot, "SVGImageExtension", RepoSnapshotExtension)
    yield


@pytest.fixture
def fake() -> FakeDaemon:
    """The recorded daemon (tests/tui/data/daemon.json)."""
    return FakeDaemon()


def make_app(
    fake: FakeDaemon,
    *,
    theme: str = "dark",
    read_only: bool = False,
    keys: dict[str, str] | None = None,
) -> ServinApp:
    """The console over the fake daemon, with the recording's clock (no wall-clock time)."""
    source = Source(
        fake.client,
        HOST,
        clock=lambda: fake.now,
        coalesce=0.01,
        backoff=(0.05, 0.2),
        list_interval=3600,
        info_interval=3600,
        unsupported_retry=3600,
        stats_redraw=0.0,
    )
    return ServinApp(source, theme=theme, read_only=read_only, keys=keys)
