"""The Servin console (``servin tui``): a Textual app over servin.client only.

``run(host, context=..., read_only=..., theme=...)`` starts it; ``servin.tui.app.ServinApp``
is the app and ``servin.tui.source.Source`` the live data layer it reads (see their
docstrings).
"""

from __future__ import annotations


def run(
    host: str | None,
    *,
    context: str | None = None,
    read_only: bool = False,
    theme: str | None = None,
) -> None:
    """Run the console against ``host`` or ``context`` (resolved as the CLI resolves them)."""
    from servin.client.hosts import resolve_target
    from servin.tui.app import ServinApp
    from servin.tui.config import load_config
    from servin.tui.source import Source, client_factory

    config = load_config()
    url, context_name = resolve_target(host, context)
    source = Source(client_factory(url), url, context=context_name)
    app = ServinApp(source, read_only=read_only, theme=theme or config.theme, keys=config.keys)
    app.run()
