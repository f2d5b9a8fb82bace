"""The Logs screen: follow one container's log (or several, merged and tagged).

Entries arrive from ``Containers.Logs`` streams into a pending list; a short timer moves them
into the LogView in batches, so a container printing thousands of lines a second costs one
refresh per tick, not one per line.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from servin.client.logs import entries as log_entries
from servin.errors import ServinError
from servin.tui.logview import LogLine, LogView, compile_pattern, lines_from_entries
from servin.tui.screens.base import BaseScreen, run_factory
from servin.tui.screens.dialogs import PromptScreen

# (label, seconds back; None = the last TAIL lines, 0 = everything)
WINDOWS: list[tuple[str, float | None]] = [
    ("tail", None),
    ("1m", 60),
    ("5m", 300),
    ("15m", 900),
    ("1h", 3600),
    ("all", 0),
]
TAIL = 2000
TICK = 0.1
MERGE_HOLD = 0.5  # seconds the first lines of a merged view wait for every stream's backlog


class LogsScreen(BaseScreen):
    """Logs of one or more containers."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="logs.back"),
        Binding("slash", "search", "Search", id="logs.search"),
        Binding("n", "next_match", "Next", id="logs.next"),
        Binding("N", "prev_match", "Prev", id="logs.prev"),
        Binding("ampersand", "filter", "Filter", id="logs.filter"),
        Binding("F", "follow", "Follow", id="logs.follow"),
        Binding("t", "toggle_timestamps", "Time", id="logs.timestamps"),
        Binding("w", "toggle_wrap", "Wrap", id="logs.wrap"),
        Binding("T", "next_window", "Window", id="logs.window"),
        Binding("S", "save", "Save", id="logs.save"),
        Binding("v", "select", "Select", id="logs.select"),
        Binding("y", "copy", "Copy", id="logs.copy"),
        Binding("c", "clear", "Clear", show=False, id="logs.clear"),
    ]

    def __init__(self, containers: list[tuple[str, str]], *, follow: bool = True) -> None:
        super().__init__()
        self.stream_follow = follow
        self.window = 0
        self._pending: list[LogLine] = []
        self._partial: dict[str, str] = {}
        self._ended = 0
        self._error = ""
        self._hold_until = 0.0
        self.set_containers(containers)

    @property
    def crumb(self) -> str:  # type: ignore[override]  # the base's attribute, computed here
        if isinstance(self, MergedLogsScreen):
            return ""
        names = ", ".join(name for _, name in self.containers[:2])
        more = f" +{len(self.containers) - 2}" if len(self.containers) > 2 else ""
        return f"logs {names}{more}"

    def set_containers(self, containers: list[tuple[str, str]]) -> None:
        """Which containers to tail: (id, name) pairs; several are merged and tagged."""
        self.containers = containers
        self._tags = (
            {cid: (name, i) for i, (cid, name) in enumerate(containers)}
            if len(containers) > 1
            else {}
        )

    def compose_body(self) -> ComposeResult:
        yield LogView(id="log")
        yield Static("", id="marker", markup=False)

    def on_mount(self) -> None:
        self.query_one(LogView).focus()
        self.set_interval(TICK, self._drain)
        self._start_streams()

    # ---- streaming ---------------------------------------------------------------------

    def _start_streams(self) -> None:
        self.workers.cancel_group(self, "logs")
        self._ended = 0
        self._error = ""
        # Several streams each send their backlog first: hold the lines a moment so the
        # merged view starts in time order rather than one container after another.
        self._hold_until = time.monotonic() + (MERGE_HOLD if len(self.containers) > 1 else 0)
        for cid, _ in self.containers:
            # A factory, not a coroutine: a worker cancelled before it runs leaves nothing behind.
            run_factory(self, partial(self._stream, cid), group="logs")
        self._update_bar()

    def _request(self, cid: str) -> Any:
        from servin.api.servin.v1 import containers_pb2

        _, back = WINDOWS[self.window]
        req = containers_pb2.ContainerLogsRequest(
            id=cid, follow=self.stream_follow, stdout=True, stderr=True, timestamps=True
        )
        if back is None:
            req.tail = TAIL
        else:
            req.tail = -1
            if back:
                req.since.FromNanoseconds(int((self.source.clock() - back) * 1e9))
        return req

    async def _stream(self, cid: str) -> None:
        try:
            # Entries go straight to the pending list; the timer batches them into the view.
            request = self._request(cid)
            async for chunk in self.source.stream(lambda cl: cl.containers.Logs(request)):
                entries = list(log_entries(chunk, cid))
                self._pending.extend(lines_from_entries(entries, self._tags, self._partial))
        except ServinError as exc:
            self._error = str(exc)
        self._ended += 1
        self._update_bar()

    def _drain(self, force: bool = False) -> None:
        if self._pending and (force or time.monotonic() >= self._hold_until):
            lines, self._pending = self._pending, []
            if self._tags:
                lines.sort(key=lambda line: line.t)  # stable: a container's order is kept
            self.query_one(LogView).append(lines)

    def flush(self) -> None:
        """Move pending lines into the view now (tests)."""
        self._drain(force=True)

    # ---- the bar -----------------------------------------------------------------------

    def on_log_view_changed(self, _: LogView.Changed) -> None:
        self._update_bar()

    def _update_bar(self) -> None:
        view = self.query_one(LogView)
        names = ", ".join(name for _, name in self.containers[:4])
        if len(self.containers) > 4:
            names += f" +{len(self.containers) - 4}"
        parts = [f"logs {names or '(no container)'}", f"window {WINDOWS[self.window][0]}"]
        parts.append(f"{view.shown_count()} lines")
        if view.filter is not None:
            parts.append(f"filter {view.filter.pattern}")
        if view.search is not None:
            parts.append(f"match {view.match_position()}/{view.match_count}")
        if view.timestamps:
            parts.append("time")
        if view.wrap:
            parts.append("wrap")
        span = view.selection_range()
        if span is not None:
            parts.append(f"{len(view.selected_text())} selected (y copies)")
        if self._error:
            parts.append(f"stream: {self._error}")
        elif self.containers and self._ended == len(self.containers) and self.stream_follow:
            parts.append("stream ended")
        self.set_status(" │ ".join(parts))
        marker = self.query_one("#marker", Static)
        if not view.follow and view.new_lines:
            marker.update(f"▼ {view.new_lines} new lines (F or End to follow)")
            marker.display = True
        elif not view.follow:
            marker.update("paused (F or End to follow)")
            marker.display = True
        else:
            marker.display = False

    # ---- actions -----------------------------------------------------------------------

    def action_select(self) -> None:
        """Start (or drop) a line selection: up/down extend it, y copies it."""
        view = self.query_one(LogView)
        if view.selecting:
            view.cancel_selection()
        else:
            view.start_selection()

    def action_copy(self) -> None:
        """Copy the selected lines (else the current match or last line) with OSC 52."""
        view = self.query_one(LogView)
        if not view.selecting and not view.start_selection():
            return
        lines = view.selected_text()
        view.cancel_selection()
        if lines:
            self.app.copy_to_clipboard("\n".join(lines) + "\n")
            self.notify(f"copied {len(lines)} line(s) to the clipboard (OSC 52)", timeout=3)

    def action_back(self) -> None:
        view = self.query_one(LogView)
        if view.selecting:
            view.cancel_selection()
            return
        if view.search is not None or view.filter is not None:
            view.set_search(None)
            view.set_filter(None)
            return
        self.app.pop_screen()

    def apply_search(self, text: str) -> None:
        """Search (and highlight) ``text``: a literal, or ``/regex/``."""
        view = self.query_one(LogView)
        try:
            view.set_search(compile_pattern(text) if text else None)
        except Exception as exc:
            self.notify(f"bad pattern: {exc}", severity="error")
            return
        if text and not view.match_count:
            self.notify(f"no match for {text}", timeout=3)

    def apply_filter(self, text: str) -> None:
        """Show only lines matching ``text``."""
        view = self.query_one(LogView)
        try:
            view.set_filter(compile_pattern(text) if text else None)
        except Exception as exc:
            self.notify(f"bad pattern: {exc}", severity="error")

    def action_search(self) -> None:
        view = self.query_one(LogView)
        current = f"/{view.search.pattern}/" if view.search is not None else ""
        self.app.push_screen(
            PromptScreen("search: text or /regex/ (n/N: next/previous)", current),
            lambda text: self.apply_search(text) if text is not None else None,
        )

    def action_filter(self) -> None:
        self.app.push_screen(
            PromptScreen("filter: show only lines matching text or /regex/ (empty: all)"),
            lambda text: self.apply_filter(text) if text is not None else None,
        )

    def action_next_match(self) -> None:
        view = self.query_one(LogView)
        if not view.next_match(True):
            self.notify("no match", timeout=2)
        elif view.wrapped:
            self.notify("search hit the bottom, continued at the top", timeout=2)

    def action_prev_match(self) -> None:
        view = self.query_one(LogView)
        if not view.next_match(False):
            self.notify("no match", timeout=2)
        elif view.wrapped:
            self.notify("search hit the top, continued at the bottom", timeout=2)

    def action_follow(self) -> None:
        view = self.query_one(LogView)
        view.follow = not view.follow if view.follow else True

    def action_toggle_timestamps(self) -> None:
        view = self.query_one(LogView)
        view.timestamps = not view.timestamps
        self._update_bar()

    def action_toggle_wrap(self) -> None:
        view = self.query_one(LogView)
        view.wrap = not view.wrap
        self._update_bar()

    def action_next_window(self) -> None:
        self.window = (self.window + 1) % len(WINDOWS)
        self._pending.clear()
        self._partial.clear()
        self.query_one(LogView).clear()
        self._start_streams()

    def action_clear(self) -> None:
        self.query_one(LogView).clear()
        self._update_bar()

    def action_save(self) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.source.clock()))
        name = "-".join(n for _, n in self.containers)[:60]
        default = str(Path.cwd() / f"{name}-{stamp}.log")
        self.app.push_screen(
            PromptScreen("save the shown lines to:", default),
            self._save_to,
        )

    def _save_to(self, path: str | None) -> None:
        if path:
            self.run_worker(self._save(path))

    async def _save(self, path: str) -> None:
        import asyncio

        lines = self.query_one(LogView).visible_text()
        target = Path(path).expanduser()
        try:
            await asyncio.to_thread(target.write_text, "\n".join(lines) + "\n")
        except OSError as exc:
            self.notify(f"cannot save: {exc}", severity="error")
            return
        self.notify(f"saved {len(lines)} lines to {target}", timeout=5)


MERGED_MAX = 8  # streams the Logs screen opens at most when it picks running containers


class MergedLogsScreen(LogsScreen):
    """The Logs screen (key 6): a merged, tagged tail of the containers selected on the
    Containers screen, else of the running ones (the first MERGED_MAX by name)."""

    def __init__(self) -> None:
        super().__init__([])

    def pick(self) -> list[tuple[str, str]]:
        """The containers to tail now."""
        containers = self.state.containers
        chosen = [containers[i] for i in self.servin.selected_containers if i in containers]
        if not chosen:
            chosen = [c for c in containers.values() if c.state == "running"]
        chosen.sort(key=lambda c: c.name)
        return [(c.id, c.name) for c in chosen[:MERGED_MAX]]

    def on_mount(self) -> None:
        self.set_containers(self.pick())
        super().on_mount()

    def update_data(self, kinds: set[str]) -> None:
        if not self.containers and kinds & {"containers", "connection"}:
            self._repick()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self._repick()

    def _repick(self) -> None:
        picked = self.pick()
        if picked != self.containers and self.state.connected:
            self.set_containers(picked)
            self._pending.clear()
            self._partial.clear()
            self.query_one(LogView).clear()
            self._start_streams()

    def action_back(self) -> None:
        # A top-level screen: escape clears the selection, search and filter, never leaves.
        view = self.query_one(LogView)
        if view.selecting:
            view.cancel_selection()
        else:
            view.set_search(None)
            view.set_filter(None)
