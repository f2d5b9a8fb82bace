"""A live figure as a small filled area chart (rows of block characters), scaled to a top
the caller chooses: CPU to 100%, memory to its limit or a sensible range (see
``format.memory_top``), so a flat line reads flat instead of full."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widget import Widget

from servin.tui import format as fmt


class Graph(Widget):
    """``set(values, top)`` and it draws the latest values at the right."""

    DEFAULT_CSS = """
    Graph {
        height: 3;
        color: $success;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.values: list[float] = []
        self.top = 0.0

    def set(self, values: Sequence[float], top: float) -> None:
        """Show ``values`` (oldest first) scaled to ``top``; repaints only on a change."""
        values = list(values)
        if values != self.values or top != self.top:
            self.values, self.top = values, top
            self.refresh()

    def render(self) -> Text:
        rows = fmt.graph_rows(self.values, self.size.width, self.size.height, self.top)
        return Text("\n".join(rows), no_wrap=True, end="")
