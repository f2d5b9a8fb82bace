"""The Servin console (``servin tui``): a Textual app over servin.client only.

``run(host, read_only=..., theme=...)`` starts it; ``servin.tui.app.ServinApp`` is the app and
``servin.tui.source.Source`` the live data layer it reads (see their docstrings).
"""

from __future__ import annotations


def run(host: str | None, *, read_only: bool = False, theme: str | None = None) -> None:
    """Run the console against ``host`` (-H / SERVIN_HOST / the default socket)."""
    from servin.client.hosts import resolve_host
    from servin.tui.app import ServinApp
    from servin.tui.config import load_config
    from servin.tui.source import Source, client_factory

    config = load_config()
    url = resolve_host(host)
    source = Source(client_factory(url), url)
    app = ServinApp(source, read_only=read_only, theme=theme or config.theme, keys=config.keys)
    app.run()
