"""``servin tui``: the console (imports Textual only when it runs)."""

from __future__ import annotations

import click


@click.command()
@click.option(
    "--host",
    "host",
    metavar="URL",
    default=None,
    help="Daemon to watch (as servin -H; unix://, tcp://, ssh://)",
)
@click.option("--context", metavar="NAME", default=None, help="Use a named context's host")
@click.option("--read-only", is_flag=True, help="Show everything, change nothing (no actions)")
@click.option(
    "--theme",
    type=click.Choice(["dark", "light"]),
    default=None,
    help="Colour theme (default: tui.toml's, else dark)",
)
@click.pass_context
def tui(
    ctx: click.Context,
    host: str | None,
    context: str | None,
    read_only: bool,
    theme: str | None,
) -> None:
    """Open the console: containers, images, volumes, networks, logs, metrics, events."""
    from servin.tui import run

    root = ctx.find_root()
    root_host = root.obj.get("host") if root.obj else None
    # The console's own --host, then its --context, then the global -H (or $SERVIN_HOST).
    run(host or (None if context else root_host), context=context, read_only=read_only, theme=theme)
