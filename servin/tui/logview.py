"""A log view that stays smooth on thousands of lines a second and on huge logs.

Lines live in a ``LogBuffer`` (plain Python objects, capped); the ``LogView`` widget renders
only the rows on screen through Textual's line API (``render_line``), so its cost does not
depend on how many lines exist. Filtering keeps a list of matching line numbers, updated as
lines arrive; search highlights matches in the rows drawn and jumps between matching lines;
wrapping keeps a prefix sum of rows per line so row -> line is a binary search.
"""

from __future__ import annotations

import re
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from servin.tui.format import ts_seconds

if TYPE_CHECKING:
    from servin.api.servin.v1.containers_pb2 import LogEntry

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|[\x00-\x08\x0b-\x1f\x7f]")
TAG_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "bright_red")


@dataclass(slots=True)
class LogLine:
    """One line of output: its time (seconds), stream (1 out, 2 err), text, and source tag."""

    t: float
    stream: int
    text: str
    tag: str = ""
    tag_index: int = 0


def clean(text: str) -> str:
    """A line made safe to draw: ANSI escapes and control characters dropped, tabs expanded."""
    return (
        ANSI.sub("", text.expandtabs(4))
        if ("\x1b" in text or "\t" in text or any(ord(ch) < 32 for ch in text))
        else text
    )


def lines_from_entries(
    entries: Iterable[LogEntry],
    tags: dict[str, tuple[str, int]] | None = None,
    partial: dict[str, str] | None = None,
) -> list[LogLine]:
    """servin.v1 LogEntry messages as LogLines (partial lines joined across entries)."""
    out: list[LogLine] = []
    partial = partial if partial is not None else {}
    for e in entries:
        data = e.data.decode("utf-8", errors="replace")
        key = f"{e.container_id}:{e.stream}"
        if key in partial:
            data = partial.pop(key) + data
        if not data.endswith("\n"):
            partial[key] = data
            continue
        tag, index = (tags or {}).get(e.container_id, ("", 0))
        t = ts_seconds(e.time)
        for piece in data[:-1].split("\n"):
            out.append(LogLine(t, e.stream, clean(piece), tag, index))
    return out


class LogBuffer:
    """Lines in arrival order, capped at ``max_lines`` (the oldest are dropped first).

    Line numbers are absolute (``dropped`` + position) so indexes kept elsewhere stay valid.
    """

    def __init__(self, max_lines: int = 200_000) -> None:
        self.max_lines = max_lines
        self.lines: list[LogLine] = []
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.lines)

    @property
    def end(self) -> int:
        """The absolute number the next line will get."""
        return self.dropped + len(self.lines)

    def get(self, number: int) -> LogLine:
        """The line with absolute number ``number``."""
        return self.lines[number - self.dropped]

    def extend(self, lines: list[LogLine]) -> int:
        """Append lines; return how many old lines were dropped to stay under the cap."""
        self.lines.extend(lines)
        excess = len(self.lines) - self.max_lines
        if excess > 0:
            # Drop a little more than needed so trimming happens once per many appends.
            excess = max(excess, self.max_lines // 20)
            del self.lines[:excess]
            self.dropped += excess
            return excess
        return 0

    def clear(self) -> None:
        """Forget every line."""
        self.dropped += len(self.lines)
        self.lines.clear()


def compile_pattern(text: str) -> re.Pattern[str]:
    """``/regex/`` as a regular expression, anything else as a literal; case-insensitive."""
    if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
        return re.compile(text[1:-1], re.IGNORECASE)
    return re.compile(re.escape(text), re.IGNORECASE)


class LogView(ScrollView, can_focus=True):
    """The line-API view over a LogBuffer: follow, filter, search, wrap, timestamps."""

    BINDINGS = [
        Binding("up,k", "line_up", "Up", show=False),
        Binding("down,j", "line_down", "Down", show=False),
        Binding("pageup,b", "page_up", "Page up", show=False),
        Binding("pagedown,space", "page_down", "Page down", show=False),
        Binding("home,g", "scroll_home", "Top", show=False),
        Binding("end,G", "follow", "End/follow", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
    ]

    DEFAULT_CSS = """
    LogView { background: $surface; }
    """

    follow: reactive[bool] = reactive(True)
    timestamps: reactive[bool] = reactive(False)
    wrap: reactive[bool] = reactive(False)

    class Changed(Message):
        """Follow state, new-line count, match position or filter changed."""

    def __init__(self, *, max_lines: int = 200_000, id: str | None = None) -> None:
        super().__init__(id=id)
        self.buffer = LogBuffer(max_lines)
        self.new_lines = 0  # arrived while not following
        self.filter: re.Pattern[str] | None = None
        self.search: re.Pattern[str] | None = None
        self.match_count = 0
        self.current_match: int | None = None  # absolute line number
        self.wrapped = False  # the last jump went past an end and continued from the other
        self._view: list[int] | None = None  # absolute line numbers shown (filter mode)
        self._row_starts: list[int] = []  # wrap mode: first row of each shown line
        self._rows = 0
        self._max_width = 0
        self._wrap_width = 0
        self._cache: dict[tuple[int, int], Strip] = {}
        self._tags = False
        # Line selection (for copying): absolute numbers of the anchor and the moving end.
        self.sel_anchor: int | None = None
        self.sel_cursor: int | None = None

    # ---- the model -------------------------------------------------------------------

    def shown_count(self) -> int:
        """How many lines pass the filter (all of them without one)."""
        return len(self._view) if self._view is not None else len(self.buffer)

    def _shown(self, i: int) -> int:
        """Absolute number of the i-th shown line."""
        return self._view[i] if self._view is not None else self.buffer.dropped + i

    def _index_of(self, number: int) -> int:
        """Position among shown lines of the first shown line at or after ``number``."""
        if self._view is not None:
            return bisect_left(self._view, number)
        return max(0, number - self.buffer.dropped)

    def append(self, lines: list[LogLine]) -> None:
        """Add lines (they arrive from the logs stream, batched by the screen)."""
        if not lines:
            return
        start = self.buffer.end
        if any(line.tag for line in lines):
            self._tags = True
        dropped = self.buffer.extend(lines)
        added = 0
        if self._view is not None:
            pattern = self.filter
            assert pattern is not None
            for offset, line in enumerate(lines):
                if pattern.search(line.text):
                    self._view.append(start + offset)
                    added += 1
        else:
            added = len(lines)
        if self.search is not None:
            self.match_count += sum(1 for line in lines if self.search.search(line.text))
        if dropped:
            self._after_drop()
        else:
            self._grow(added)
        if added and not self.follow:
            self.new_lines += added
        self._sync_size()
        if self.follow:
            self._to_end()
        self.post_message(self.Changed())

    def _to_end(self) -> None:
        """Scroll to the last row now and again after the next layout (sizes may change)."""
        self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)
        self.call_after_refresh(self._to_end_if_following)

    def _to_end_if_following(self) -> None:
        if self.follow:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)

    def clear(self) -> None:
        """Forget every line (a new time window is being loaded)."""
        self.buffer.clear()
        self._view = [] if self.filter is not None else None
        self.match_count = 0
        self.current_match = None
        self.new_lines = 0
        self._relayout()

    def _after_drop(self) -> None:
        if self._view is not None:
            del self._view[: bisect_left(self._view, self.buffer.dropped)]
        if self.search is not None:
            self.match_count = sum(1 for ln in self.buffer.lines if self.search.search(ln.text))
        self._relayout()

    def _prefix_width(self) -> int:
        width = 13 if self.timestamps else 0
        if self._tags:
            width += 15
        return width

    def _line_rows(self, line: LogLine) -> int:
        if not self.wrap or self._wrap_width <= 0:
            return 1
        return max(1, -(-(len(line.text) + self._prefix_width()) // self._wrap_width))

    def _grow(self, added: int) -> None:
        count = self.shown_count()
        if self.wrap:
            for i in range(count - added, count):
                self._row_starts.append(self._rows)
                self._rows += self._line_rows(self.buffer.get(self._shown(i)))
        else:
            self._rows = count
            prefix = self._prefix_width()
            for i in range(count - added, count):
                n = len(self.buffer.get(self._shown(i)).text) + prefix
                if n > self._max_width:
                    self._max_width = n

    def _relayout(self) -> None:
        """Recompute rows (after a filter, a wrap/timestamp toggle, a resize or a drop)."""
        self._cache.clear()
        self._row_starts = []
        self._rows = 0
        self._max_width = 0
        self._wrap_width = max(1, self.scrollable_content_region.width) if self.wrap else 0
        self._grow(self.shown_count())
        self._sync_size()

    def _sync_size(self) -> None:
        width = 0 if self.wrap else self._max_width
        self.virtual_size = Size(width, self._rows)
        self.refresh()

    # ---- filter and search -----------------------------------------------------------

    def set_filter(self, pattern: re.Pattern[str] | None) -> None:
        """Show only lines matching ``pattern`` (None: every line)."""
        top_line = self._top_line()
        self.filter = pattern
        if pattern is None:
            self._view = None
        else:
            base = self.buffer.dropped
            self._view = [
                base + i for i, ln in enumerate(self.buffer.lines) if pattern.search(ln.text)
            ]
        self._relayout()
        if not self.follow and top_line is not None:
            self._scroll_to_line(top_line)
        elif self.follow:
            self._to_end()
        self.post_message(self.Changed())

    def set_search(self, pattern: re.Pattern[str] | None) -> None:
        """Highlight ``pattern`` and jump to its first match from the top of the screen."""
        self.search = pattern
        self._cache.clear()
        self.current_match = None
        self.match_count = (
            sum(1 for ln in self.buffer.lines if pattern.search(ln.text)) if pattern else 0
        )
        if pattern is not None:
            top = self._top_line()
            self._jump(
                forward=True, start=top if top is not None else self.buffer.dropped, inclusive=True
            )
        self.refresh()
        self.post_message(self.Changed())

    def next_match(self, forward: bool = True) -> bool:
        """Move to the next (or previous) matching line; False when there is none."""
        if self.search is None:
            return False
        start = self.current_match if self.current_match is not None else self._top_line()
        return self._jump(forward, start if start is not None else self.buffer.dropped, False)

    def _jump(self, forward: bool, start: int, inclusive: bool) -> bool:
        assert self.search is not None
        count = self.shown_count()
        if not count:
            return False
        pos = self._index_of(start)
        if forward:
            order = range(pos if inclusive else pos + 1, count)
        else:
            order = range(min(pos, count) - 1, -1, -1)
        # Like vim's wrapscan: past the last match, continue from the other end.
        wrapped = range(0, count) if forward else range(count - 1, -1, -1)
        for i in (*order, *wrapped):
            number = self._shown(i)
            if self.search.search(self.buffer.get(number).text):
                self.wrapped = (number < start) if forward else (number > start)
                self.current_match = number
                self._cache.clear()
                self.follow = False
                self._scroll_to_line(number, center=True)
                self.post_message(self.Changed())
                return True
        return False

    def match_position(self) -> int:
        """1-based ordinal of the current match among all matches (0 when none)."""
        if self.search is None or self.current_match is None:
            return 0
        n = 0
        for ln in self.buffer.lines[: self.current_match - self.buffer.dropped + 1]:
            if self.search.search(ln.text):
                n += 1
        return n

    # ---- selection (copy) ------------------------------------------------------------

    @property
    def selecting(self) -> bool:
        """Whether a line selection is active."""
        return self.sel_cursor is not None

    def _bottom_line(self) -> int | None:
        top = self._top_line()
        if top is None:
            return None
        index = self._index_of(top) + max(0, self.scrollable_content_region.height - 1)
        return self._shown(min(index, self.shown_count() - 1))

    def start_selection(self) -> bool:
        """Select one line: the current match, else the last line on screen."""
        start = self.current_match if self.current_match is not None else self._bottom_line()
        if start is None:
            return False
        self.follow = False
        self.sel_anchor = self.sel_cursor = start
        self._cache.clear()
        self.refresh()
        self.post_message(self.Changed())
        return True

    def cancel_selection(self) -> None:
        """Drop the selection."""
        self.sel_anchor = self.sel_cursor = None
        self._cache.clear()
        self.refresh()
        self.post_message(self.Changed())

    def selection_range(self) -> tuple[int, int] | None:
        """The selected absolute line numbers, first and last (None without a selection)."""
        if self.sel_anchor is None or self.sel_cursor is None:
            return None
        return min(self.sel_anchor, self.sel_cursor), max(self.sel_anchor, self.sel_cursor)

    def move_selection(self, delta: int) -> None:
        """Move the selection's moving end by ``delta`` shown lines (extending it)."""
        if self.sel_cursor is None or not self.shown_count():
            return
        index = self._index_of(self.sel_cursor) + delta
        index = max(0, min(index, self.shown_count() - 1))
        self.sel_cursor = self._shown(index)
        self._cache.clear()
        row = self._row_of_index(index)
        height = self.scrollable_content_region.height
        if row < self.scroll_offset.y:
            self.scroll_to(y=row, animate=False, immediate=True, force=True)
        elif row >= self.scroll_offset.y + height:
            self.scroll_to(y=row - height + 1, animate=False, immediate=True, force=True)
        self.refresh()
        self.post_message(self.Changed())

    def selected_text(self) -> list[str]:
        """The selected shown lines as text (as ``save`` writes them)."""
        span = self.selection_range()
        if span is None:
            return []
        first, last = span
        out = []
        for i in range(self._index_of(first), self.shown_count()):
            number = self._shown(i)
            if number > last:
                break
            if number >= self.buffer.dropped:
                out.append(self._as_text(self.buffer.get(number)))
        return out

    def action_line_up(self) -> None:
        """Up one line: moves the selection when there is one, else scrolls."""
        if self.selecting:
            self.move_selection(-1)
        else:
            self.scroll_up(animate=False)

    def action_line_down(self) -> None:
        """Down one line: moves the selection when there is one, else scrolls."""
        if self.selecting:
            self.move_selection(1)
        else:
            self.scroll_down(animate=False)

    # ---- scrolling -------------------------------------------------------------------

    def _row_of_index(self, index: int) -> int:
        return self._row_starts[index] if self.wrap and index < len(self._row_starts) else index

    def _top_line(self) -> int | None:
        if not self.shown_count():
            return None
        y = int(self.scroll_offset.y)
        index = bisect_right(self._row_starts, y) - 1 if self.wrap else y
        return self._shown(max(0, min(index, self.shown_count() - 1)))

    def _scroll_to_line(self, number: int, center: bool = False) -> None:
        row = self._row_of_index(self._index_of(number))
        if center:
            row = max(0, row - self.scrollable_content_region.height // 2)
        self.scroll_to(y=row, animate=False, immediate=True, force=True)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new < old and new < self.max_scroll_y and self.follow:
            self.follow = False  # the user scrolled up: stop following, count new lines
            self.post_message(self.Changed())
        elif new >= self.max_scroll_y and not self.follow and new > old:
            self.follow = True

    def watch_follow(self, following: bool) -> None:
        if following:
            self.new_lines = 0
            self._to_end()
        self.post_message(self.Changed())

    def action_follow(self) -> None:
        """Jump to the end and follow new lines."""
        self.follow = True

    def watch_timestamps(self) -> None:
        self._relayout()

    def watch_wrap(self) -> None:
        self._relayout()

    def on_resize(self) -> None:
        if self.wrap:
            self._relayout()
        self._cache.clear()
        if self.follow:
            self._to_end()

    # ---- drawing ---------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        row = scroll_y + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if row >= self._rows or not self.shown_count():
            return Strip.blank(width, base)
        if self.wrap:
            index = bisect_right(self._row_starts, row) - 1
            sub = row - self._row_starts[index]
        else:
            index, sub = row, 0
        number = self._shown(index)
        key = (number, sub)
        strip = self._cache.get(key)
        if strip is None:
            strip = self._render_row(number, sub, base)
            if len(self._cache) > 2000:
                self._cache.clear()
            self._cache[key] = strip
        if self.wrap:
            return strip.adjust_cell_length(width, base)
        return strip.crop(scroll_x, scroll_x + width).adjust_cell_length(width, base)

    def _render_row(self, number: int, sub: int, base: Style) -> Strip:
        line = self.buffer.get(number)
        segments: list[Segment] = []
        muted = base + Style(dim=True)
        if self.timestamps:
            stamp = (
                time.strftime("%H:%M:%S", time.gmtime(line.t)) + f".{int(line.t % 1 * 1000):03d} "
            )
            segments.append(Segment(stamp, muted))
        if self._tags:
            colour = TAG_COLOURS[line.tag_index % len(TAG_COLOURS)]
            segments.append(Segment(f"{line.tag[:13]:<13}│ ", base + Style(color=colour)))
        text_style = base + Style(color="red") if line.stream == 2 else base
        span = self.selection_range()
        if span is not None and span[0] <= number <= span[1]:
            text_style = text_style + Style(reverse=True)
        segments.extend(self._highlighted(line.text, text_style, number == self.current_match))
        strip = Strip(segments)
        if not self.wrap:
            return strip
        width = self._wrap_width
        return strip.crop(sub * width, (sub + 1) * width)

    def _highlighted(self, text: str, style: Style, current: bool) -> list[Segment]:
        if self.search is None:
            return [Segment(text, style)]
        hit = style + Style(reverse=True, bold=True)
        if current:
            hit = hit + Style(underline=True)
        out: list[Segment] = []
        pos = 0
        for m in self.search.finditer(text):
            if m.end() == m.start():
                continue
            out.append(Segment(text[pos : m.start()], style))
            out.append(Segment(m.group(), hit))
            pos = m.end()
        out.append(Segment(text[pos:], style))
        return out

    def visible_text(self) -> list[str]:
        """The shown lines as text (what ``save`` writes)."""
        return [self._as_text(self.buffer.get(self._shown(i))) for i in range(self.shown_count())]

    def _as_text(self, line: LogLine) -> str:
        prefix = ""
        if self.timestamps:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(line.t)) + "Z "
        if line.tag:
            prefix += f"{line.tag} | "
        return prefix + line.text
