"""A keyed table drawn through Textual's line API, repainting only the cells that changed.

Textual's DataTable re-renders every visible cell when one changes; with hundreds of live
rows that is the console's main idle cost. ``KeyedTable`` keeps, per row key, the row's
cells and its rendered line (a ``Strip``). Rows are produced on demand by a *provider*
(``key -> {column: Text}``), so only rows on screen are ever computed:

- ``refresh_rows()`` recomputes the rows on screen, compares them cell by cell with what is
  drawn and repaints only the changed cells' regions; every other row is forgotten and
  computed again when it scrolls in;
- ``set_order(keys)`` changes which rows are shown and in what order (a filter, a sort); the
  cursor stays on its row (by key) and, when it can, on the same screen line;
- columns have priorities and widths (``Column``): ``fit_columns`` drops the least important
  ones and shrinks the shrinkable ones on narrow terminals, and gives spare width to the
  growing ones on wide terminals, so the important columns are never cut.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

GAP = 1  # blank cells before each column


@dataclass(frozen=True)
class Column:
    """One column: ``width`` is what it wants, ``min_width`` how far it may shrink (0: not at
    all), ``max_width`` how far it may grow (with ``grow`` > 0, its share of spare width).
    ``priority`` 0 is always shown; higher numbers are dropped first on narrow terminals."""

    key: str
    label: str
    width: int
    min_width: int = 0
    max_width: int = 0
    grow: int = 0
    priority: int = 0


def fit_columns(columns: Sequence[Column], width: int) -> list[tuple[Column, int]]:
    """The columns that fit in ``width`` cells, with the width each gets."""
    shown = list(columns)

    def floor(c: Column) -> int:
        return c.min_width or c.width

    # Drop the least important (the rightmost of equals) until the minimums fit.
    while sum(floor(c) + GAP for c in shown) > width:
        droppable = [c for c in shown if c.priority > 0]
        if not droppable:
            break
        worst = max(droppable, key=lambda c: (c.priority, shown.index(c)))
        shown.remove(worst)
    widths = {c.key: c.width for c in shown}
    total = sum(widths.values()) + GAP * len(shown)
    # Too wide: shrink the least important shrinkable columns first.
    for c in sorted(shown, key=lambda c: -c.priority):
        if total <= width:
            break
        give = min(total - width, widths[c.key] - floor(c))
        widths[c.key] -= give
        total -= give
    # Room to spare: the growing columns share it (up to their maximum).
    growing = [c for c in shown if c.grow]
    while total < width and growing:
        spare = width - total
        weight = sum(c.grow for c in growing)
        for c in list(growing):
            cap = c.max_width or 10_000
            add = min(max(1, spare * c.grow // weight), cap - widths[c.key], width - total)
            widths[c.key] += add
            total += add
            if widths[c.key] >= cap:
                growing.remove(c)
            if total >= width:
                break
    return [(c, widths[c.key]) for c in shown]


Cells = Mapping[str, Text]
Provider = Callable[[str], Cells]


class KeyedTable(ScrollView, can_focus=True):
    """Rows by key, a fixed header line, a row cursor; see the module docstring."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False),
        Binding("pagedown,ctrl+f", "page_down", "Page down", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "keyed-table--header",
        "keyed-table--cursor",
        "keyed-table--cursor-blurred",
    }

    DEFAULT_CSS = """
    KeyedTable {
        background: $surface;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
        overflow-y: scroll;
        & > .keyed-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        & > .keyed-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .keyed-table--cursor-blurred {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """

    class RowHighlighted(Message):
        """The cursor moved to another row (``key`` None on an empty table)."""

        def __init__(self, table: KeyedTable, key: str | None) -> None:
            super().__init__()
            self.table = table
            self.key = key

    class RowSelected(Message):
        """A row was chosen (a click on the row under the cursor)."""

        def __init__(self, table: KeyedTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

    class HeaderSelected(Message):
        """A column header was clicked."""

        def __init__(self, table: KeyedTable, column: str) -> None:
            super().__init__()
            self.table = table
            self.column = column

    def __init__(
        self,
        columns: Sequence[Column],
        provider: Provider,
        *,
        id: str | None = None,
        header_marks: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        super().__init__(id=id)
        self.columns = list(columns)
        self.provider = provider
        self.header_marks = header_marks  # e.g. a sort arrow after a column's label
        self.layout_columns: list[tuple[Column, int]] = []
        self._order: list[str] = []
        self._index: dict[str, int] = {}
        self._cells: dict[str, Mapping[str, Text]] = {}  # drawn cells of rows kept current
        self._strips: dict[str, Strip] = {}  # rendered lines (without the cursor)
        self._header: Strip | None = None
        self.cursor_row = 0
        self._highlighted: str | None = None
        self._layout_width = -1
        self.painted_cells = 0  # cells repainted by refresh_rows (tests and benchmarks)

    # ---- the model ---------------------------------------------------------------------

    @property
    def order(self) -> list[str]:
        """The keys shown, in order."""
        return self._order

    @property
    def row_count(self) -> int:
        """How many rows are shown."""
        return len(self._order)

    @property
    def cursor_key(self) -> str | None:
        """The key of the row under the cursor."""
        return self._order[self.cursor_row] if self._order else None

    def held_keys(self) -> set[str]:
        """The rows whose cells are held (on screen, or were and are still current)."""
        return set(self._cells)

    def width_of(self, column: str) -> int:
        """The width the layout gives ``column`` (0 when it is not shown)."""
        return next((w for c, w in self.layout_columns if c.key == column), 0)

    def cells_of(self, key: str) -> Mapping[str, Text]:
        """The cells drawn (or to be drawn) for a row."""
        cells = self._cells.get(key)
        if cells is None:
            cells = self._cells[key] = self.provider(key)
        return cells

    def set_columns(self, columns: Sequence[Column]) -> None:
        """Replace the column definitions (relaid out at once)."""
        self.columns = list(columns)
        self._layout_width = -1
        self._relayout()

    def set_order(self, keys: Sequence[str]) -> None:
        """Show ``keys`` in this order; the cursor follows its row."""
        keys = list(keys)
        if keys == self._order:
            return
        old_key = self.cursor_key
        old_line = self.cursor_row - int(self.scroll_y)
        old_window = self._window_keys()
        self._order = keys
        self._index = {k: i for i, k in enumerate(keys)}
        for gone in [k for k in self._cells if k not in self._index]:
            del self._cells[gone]
            self._strips.pop(gone, None)
        self._set_height(len(keys) + 1)
        if old_key in self._index:
            self.cursor_row = self._index[old_key]
            # Keep the cursor on the same screen line when rows came or went above it.
            top = max(0, min(self.cursor_row - old_line, self._max_top()))
            self.scroll_to(y=top, animate=False, immediate=True, force=True)
        else:
            self.cursor_row = max(0, min(self.cursor_row, len(keys) - 1))
        self._keep_cursor_visible()
        if self._window_keys() != old_window:
            self.refresh()
        self._announce()

    def _set_height(self, lines: int) -> None:
        """Change how many lines there are to scroll through, without a layout: the
        scrollbar is always shown (overflow-y: scroll), so only its range changes, and a
        layout would repaint the whole screen for every filter."""
        size = Size(self.virtual_size.width, lines)
        if size == self.virtual_size:
            return
        if not self.is_mounted:
            self.virtual_size = size
            return
        self.set_reactive(KeyedTable.virtual_size, size)
        self.vertical_scrollbar.window_virtual_size = lines
        if self.scroll_y > self.max_scroll_y:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)

    def refresh_rows(self, keys: Sequence[str] | None = None) -> None:
        """Bring rows up to date: those on screen now (cell by cell), the rest when they
        scroll in. ``keys`` limits the work to rows known to have changed."""
        visible = self._window_keys()
        on_screen = set(visible) if keys is None else set(visible) & set(keys)
        # Forget off-screen rows: they are computed again if they scroll in.
        stale = set(self._cells) - set(visible) if keys is None else set(keys) - on_screen
        for key in stale:
            self._cells.pop(key, None)
            self._strips.pop(key, None)
        if not self.layout_columns:
            return
        top = int(self.scroll_y)
        x_of = self._x_offsets()
        for key in on_screen:
            old = self._cells.get(key)
            new = self.provider(key)
            if old is new or old == new:
                continue
            self._cells[key] = new
            self._strips.pop(key, None)
            line = self._index[key] - top + 1
            for column, width in self.layout_columns:
                if old is None or old.get(column.key) != new.get(column.key):
                    self.painted_cells += 1
                    self.refresh(Region(x_of[column.key], line, width + GAP, 1))

    def forget(self) -> None:
        """Drop every cached row and line (a theme change, a new provider)."""
        self._cells.clear()
        self._strips.clear()
        self._header = None
        self.refresh()

    # ---- cursor ------------------------------------------------------------------------

    def move_cursor(self, row: int) -> None:
        """Put the cursor on ``row`` (clamped), scrolling it into view."""
        if not self._order:
            return
        row = max(0, min(row, len(self._order) - 1))
        if row != self.cursor_row:
            self._refresh_row(self.cursor_row)
            self.cursor_row = row
            self._refresh_row(row)
        self._keep_cursor_visible()
        self._announce()

    def move_to_key(self, key: str) -> None:
        """Put the cursor on the row of ``key`` (if shown)."""
        if key in self._index:
            self.move_cursor(self._index[key])

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor_row + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor_row - self._page())

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor_row + self._page())

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(len(self._order) - 1)

    def _max_top(self) -> int:
        return max(0, len(self._order) + 1 - self.scrollable_content_region.height)

    def _keep_cursor_visible(self) -> None:
        rows = self._page()
        top = int(self.scroll_y)
        if self.cursor_row < top:
            top = self.cursor_row
        elif self.cursor_row >= top + rows:
            top = self.cursor_row - rows + 1
        top = max(0, min(top, self._max_top()))
        if top != int(self.scroll_y):
            self.scroll_to(y=top, animate=False, immediate=True, force=True)

    def _announce(self) -> None:
        key = self.cursor_key
        if key != self._highlighted:
            self._highlighted = key
            self.post_message(self.RowHighlighted(self, key))

    def _refresh_row(self, row: int) -> None:
        line = row - int(self.scroll_y) + 1
        if 1 <= line < self.size.height:
            self.refresh(Region(0, line, self.size.width, 1))

    # ---- layout and drawing ------------------------------------------------------------

    def _window_keys(self) -> list[str]:
        top = int(self.scroll_y)
        return self._order[top : top + max(0, self.scrollable_content_region.height - 1)]

    def _x_offsets(self) -> dict[str, int]:
        x, out = 0, {}
        for column, width in self.layout_columns:
            out[column.key] = x
            x += width + GAP
        return out

    def _relayout(self) -> None:
        width = self.scrollable_content_region.width
        if width == self._layout_width:
            return
        self._layout_width = width
        self.layout_columns = fit_columns(self.columns, width)
        self._cells.clear()
        self._strips.clear()
        self._header = None
        self.virtual_size = Size(width, len(self._order) + 1)
        self.refresh()

    def on_resize(self, _: events.Resize) -> None:
        self._relayout()
        self._keep_cursor_visible()

    def on_mount(self) -> None:
        self.watch(self.app, "theme", lambda _: self.forget(), init=False)

    def on_focus(self) -> None:
        self._refresh_row(self.cursor_row)

    def on_blur(self) -> None:
        self._refresh_row(self.cursor_row)

    def refresh_header(self) -> None:
        """Redraw the header line (a sort mark changed)."""
        self._header = None
        self.refresh(Region(0, 0, self.size.width, 1))

    def render_line(self, y: int) -> Strip:
        self._relayout()
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            if self._header is None:
                self._header = self._render_header(width)
            return self._header
        row = int(self.scroll_y) + y - 1
        if row >= len(self._order):
            return Strip.blank(width, base)
        key = self._order[row]
        if row == self.cursor_row:
            name = "keyed-table--cursor" if self.has_focus else "keyed-table--cursor-blurred"
            return self._render_row(self.cells_of(key), base + self.get_component_rich_style(name))
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._render_row(self.cells_of(key), base)
        return strip

    def _render_row(self, cells: Mapping[str, Text], style: Style) -> Strip:
        # Segments made directly from each cell's text and spans: about three times
        # cheaper than assembling a rich Text and rendering it (rows render on every
        # scroll and filter).
        get_style = self.app.console.get_style
        segments: list[Segment] = []
        add = segments.append
        for column, width in self.layout_columns:
            add(Segment(" " * GAP, style))
            cell = cells.get(column.key)
            if cell is None:
                add(Segment(" " * width, style))
                continue
            plain = cell.plain
            if cell_len(plain) > width:
                cell = cell.copy()
                cell.truncate(width, overflow="ellipsis")
                plain = cell.plain
            cell_style = style + get_style(cell.style) if cell.style else style
            spans = sorted(cell.spans, key=lambda s: s.start)
            if any(a.end > b.start for a, b in pairwise(spans)):
                # Overlapping styles: let rich combine them.
                piece = cell.copy()
                piece.truncate(width, overflow="ellipsis", pad=True)
                piece.stylize_before(style)
                segments.extend(s for s in piece.render(self.app.console) if s.text != "\n")
                continue
            pos = 0
            for span in spans:
                if span.start > pos:
                    add(Segment(plain[pos : span.start], cell_style))
                add(Segment(plain[span.start : span.end], cell_style + get_style(span.style)))
                pos = span.end
            if pos < len(plain):
                add(Segment(plain[pos:], cell_style))
            pad = width - cell_len(plain)
            if pad > 0:
                add(Segment(" " * pad, style))
        width = self.scrollable_content_region.width
        return Strip(segments).adjust_cell_length(width, style).simplify()

    def _render_header(self, width: int) -> Strip:
        style = self.rich_style + self.get_component_rich_style("keyed-table--header")
        marks = self.header_marks() if self.header_marks is not None else {}
        line = Text(style=style, no_wrap=True, end="")
        for column, col_width in self.layout_columns:
            label = Text(column.label + marks.get(column.key, ""))
            label.truncate(col_width, overflow="ellipsis", pad=True)
            line.append(" " * GAP)
            line.append_text(label)
        return self._strip(line, style)

    def _strip(self, line: Text, style: Style) -> Strip:
        width = self.scrollable_content_region.width
        segments = [
            Segment(s.text, s.style) for s in line.render(self.app.console) if s.text != "\n"
        ]
        return Strip(segments).adjust_cell_length(width, style).simplify()

    # ---- mouse -------------------------------------------------------------------------

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            x = 0
            for column, width in self.layout_columns:
                if x <= event.x < x + width + GAP:
                    self.post_message(self.HeaderSelected(self, column.key))
                    return
                x += width + GAP
            return
        row = int(self.scroll_y) + event.y - 1
        if row >= len(self._order):
            return
        if row == self.cursor_row and event.chain >= 2:
            self.post_message(self.RowSelected(self, self._order[row]))
        else:
            self.move_cursor(row)
