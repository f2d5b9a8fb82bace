"""Which daemon the console watches: --host, --context, the environment, contexts.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servin.client.addresses import DEFAULT_HOST
from servin.client.hosts import resolve_target
from servin.errors import NotFound, ServinError
from tests.tui.conftest import make_app
from tests.tui.fake import FakeDaemon
from tests.tui.helpers import async_test, screen_text, settle


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("SERVIN_HOST", raising=False)
    monkeypatch.delenv("SERVIN_CONTEXT", raising=False)
    (tmp_path / "servin").mkdir()
    (tmp_path / "servin" / "contexts.json").write_text(
        json.dumps(
            {
                "current": "prod",
                "contexts": {
                    "prod": {"host": "ssh://ops@prod-1", "description": "production"},
                    "lab": {"host": "tcp://10.0.0.7:2375"},
                },
            }
        )
    )
    return tmp_path


def test_precedence(config_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def where(host: str | None = None, context: str | None = None) -> tuple[str, str]:
        target = resolve_target(host, context)
        return target.url, target.context

    assert where() == ("ssh://ops@prod-1", "prod")  # the current context
    assert where(context="lab") == ("tcp://10.0.0.7:2375", "lab")
    assert where("unix:///tmp/x.sock") == ("unix:///tmp/x.sock", "")
    assert where(context="default")[0] == DEFAULT_HOST
    monkeypatch.setenv("SERVIN_CONTEXT", "lab")
    assert where() == ("tcp://10.0.0.7:2375", "lab")
    monkeypatch.setenv("SERVIN_HOST", "unix:///tmp/env.sock")
    assert where() == ("unix:///tmp/env.sock", "")
    assert where(context="prod") == ("ssh://ops@prod-1", "prod")


def test_unknown_context_and_broken_file(config_home: Path) -> None:
    with pytest.raises(NotFound, match="context 'nope' does not exist"):
        resolve_target(context="nope")
    (config_home / "servin" / "contexts.json").write_text("{not json")
    with pytest.raises(ServinError, match=r"contexts\.json"):
        resolve_target()


def test_no_contexts_file_means_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("SERVIN_HOST", raising=False)
    monkeypatch.delenv("SERVIN_CONTEXT", raising=False)
    assert resolve_target().url == DEFAULT_HOST


@async_test
async def test_title_names_the_context_and_host() -> None:
    fake = FakeDaemon()
    app = make_app(fake)
    app.source.state.context = "prod"
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, lambda: app.source.state.connected)
        await pilot.pause()
        assert "prod (unix:///run/servin/servin.sock) · 4/6 running" in screen_text(app)
