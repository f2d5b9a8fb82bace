"""``servin stats`` (live resource usage) and ``servin top`` (a container's processes)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

import click

from servin.cli.options import format_option
from servin.cli.session import get_client
from servin.cli.statsview import as_given, render, stats_row

if TYPE_CHECKING:
    from servin.api.servin.v1.containers_pb2 import StatsBatch

# Terminal control: home, clear to end of line, clear to end of screen, hide/show cursor.
_HOME, _CLEAR_LINE, _CLEAR_BELOW = "\x1b[H", "\x1b[K", "\x1b[J"
_CLEAR_SCREEN = "\x1b[2J"
_HIDE_CURSOR, _SHOW_CURSOR = "\x1b[?25l", "\x1b[?25h"


class LiveScreen:
    """Redraws frames in place on a terminal (no scrolling), keeping within its height."""

    def __init__(self) -> None:
        self.first = True

    def draw(self, lines: list[str]) -> None:
        """Replace the previous frame with ``lines``."""
        size = shutil.get_terminal_size()
        if len(lines) > size.lines - 1:
            hidden = len(lines) - (size.lines - 2)
            lines = [*lines[: size.lines - 2], f"... {hidden} more"]
        out = [_HIDE_CURSOR + _CLEAR_SCREEN + _HOME if self.first else _HOME]
        out.extend(line[: size.columns] + _CLEAR_LINE + "\n" for line in lines)
        out.append(_CLEAR_BELOW)
        sys.stdout.write("".join(out))
        sys.stdout.flush()
        self.first = False

    def close(self) -> None:
        """Give the cursor back."""
        sys.stdout.write(_SHOW_CURSOR)
        sys.stdout.flush()


def _container_ids(all_: bool, containers: tuple[str, ...]) -> list[str]:
    if containers or not all_:
        return list(containers)
    from servin.api.servin.v1 import containers_pb2

    reply = get_client().containers.List(containers_pb2.ListContainersRequest(all=True))
    return [c.id for c in reply.containers]


def frames(ids: Iterable[str], stream: bool) -> Iterable[StatsBatch]:
    """StatsBatch messages from the daemon."""
    from servin.api.servin.v1 import containers_pb2

    request = containers_pb2.StatsRequest(ids=list(ids), stream=stream, interval_ms=1000)
    return get_client().containers.Stats(request)


@click.command()
@click.option(
    "-a", "--all", "all_", is_flag=True, help="Show all containers (default shows just running)"
)
@click.option(
    "--no-stream", is_flag=True, help="Disable streaming stats and only pull the first result"
)
@click.option("--no-trunc", is_flag=True, help="Do not truncate output")
@format_option
@click.argument("containers", nargs=-1)
def stats(
    all_: bool, no_stream: bool, no_trunc: bool, fmt: str | None, containers: tuple[str, ...]
) -> None:
    """Display a live stream of container(s) resource usage statistics."""
    from servin.cli.output import is_terminal

    ids = _container_ids(all_, containers)
    live = LiveScreen() if is_terminal() and not no_stream else None
    try:
        for batch in frames(ids, stream=not no_stream):
            rows = [stats_row(s, as_given(s, containers, no_trunc), no_trunc) for s in batch.stats]
            lines = render(rows, fmt)
            if live is not None:
                live.draw(lines)
            else:
                # In a pipe: one plain frame after another, nothing to redraw.
                for line in lines:
                    click.echo(line)
                sys.stdout.flush()
    finally:
        if live is not None:
            live.close()


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("container")
@click.argument("ps_args", nargs=-1, type=click.UNPROCESSED)
def top(container: str, ps_args: tuple[str, ...]) -> None:
    """Display the running processes of a container (ps options default to -ef)."""
    from servin.api.servin.v1 import containers_pb2
    from servin.cli.output import print_rows

    reply = get_client().containers.Top(
        containers_pb2.TopRequest(id=container, ps_args=list(ps_args))
    )
    columns = [(title, str(i)) for i, title in enumerate(reply.titles)]
    rows = [{str(i): v for i, v in enumerate(row.fields)} for row in reply.processes]
    print_rows(columns, rows, None)
