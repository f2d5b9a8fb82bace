"""The Servin console (``servin tui``): a Textual app over servin.client only.

``run(host, read_only=..., theme=...)`` starts it; ``servin.tui.app.ServinApp`` is the app and
``servin.tui.source.Source`` the live data layer it reads (see their docstrings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from servin.client.hosts import Target


def run(
    host: str | Target | None, *, read_only: bool = False, theme: str | None = None
) -> None:
    """Run the console against ``host``: a resolved Target (what ``servin tui`` passes), or a
    URL/None resolved as the CLI resolves it (-H, --context, $SERVIN_HOST, contexts)."""
    from servin.client.hosts import Target, resolve_target
    from servin.tui.app import ServinApp
    from servin.tui.config import load_config
    from servin.tui.source import Source, client_factory

    config = load_config()
    target = host if isinstance(host, Target) else resolve_target(host)
    source = Source(client_factory(target), target.url)
    app = ServinApp(source, read_only=read_only, theme=theme or config.theme, keys=config.keys)
    app.run()
