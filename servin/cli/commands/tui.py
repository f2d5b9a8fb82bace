"""``servin tui``: the console (imports Textual only when it runs)."""

from __future__ import annotations

import click


@click.command()
@click.option("--read-only", is_flag=True, help="Show everything, change nothing (no actions)")
@click.option(
    "--theme",
    type=click.Choice(["dark", "light"]),
    default=None,
    help="Colour theme (default: tui.toml's, else dark)",
)
@click.pass_context
def tui(ctx: click.Context, read_only: bool, theme: str | None) -> None:
    """Open the console: live containers, logs, images, events and system."""
    from servin.cli.session import target
    from servin.tui import run

    run(target(ctx), read_only=read_only, theme=theme)
