"""Showing a streamed image operation (pull, push): bars on a terminal, lines in a pipe.

``auto`` draws one rich progress bar per layer when the output is a terminal and prints
plain lines otherwise (one per layer state change, no byte counts repeated); ``plain``
forces lines; ``quiet`` prints nothing here (the caller prints the result).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TextIO

from servin.cli.terminal import is_terminal

MODES = ("auto", "plain", "tty", "quiet")


def show(stream: Iterable[Any], mode: str = "auto", out: TextIO | None = None) -> Any:
    """Consume ``stream`` (ImageProgress messages) and return the last (the result)."""
    out = out or sys.stdout
    if mode == "auto":
        mode = "tty" if is_terminal(out.fileno()) else "plain"
    if mode == "tty":
        return _bars(stream, out)
    last = None
    actions: dict[str, str] = {}
    for message in stream:
        last = message
        if mode == "quiet":
            continue
        if message.status:
            print(message.status, file=out, flush=True)
        elif message.HasField("progress"):
            p = message.progress
            if actions.get(p.id) != p.action:  # lines for state changes only
                actions[p.id] = p.action
                print(f"{p.id}: {p.action}", file=out, flush=True)
    return last


def _bars(stream: Iterable[Any], out: TextIO) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    console = Console(file=out)
    tasks: dict[str, Any] = {}
    last = None
    with Progress(
        TextColumn("{task.fields[item]}:"),
        TextColumn("{task.description:<20}"),
        BarColumn(bar_width=40),
        DownloadColumn(),
        console=console,
        transient=False,
    ) as bars:
        for message in stream:
            last = message
            if message.status:
                bars.console.print(message.status, highlight=False)
                continue
            if not message.HasField("progress"):
                continue
            p = message.progress
            total = p.total or None
            task = tasks.get(p.id)
            if task is None:
                task = tasks[p.id] = bars.add_task(p.action, total=total, item=p.id)
            bars.update(task, description=p.action, completed=p.current, total=total)
            if p.done:
                bars.update(task, completed=p.total or p.current)
    return last
