"""The Events screen: the daemon's event stream, live (the source's one subscription)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from servin.tui import format as fmt
from servin.tui.screens.base import BaseScreen
from servin.tui.screens.dialogs import PromptScreen

if TYPE_CHECKING:
    from servin.api.servin.v1.system_pb2 import Event


class EventsScreen(BaseScreen):
    """Recent and live events, newest last; the view follows while the cursor is at the end."""

    BINDINGS = [
        Binding("slash", "filter", "Filter", id="events.filter"),
        Binding("escape", "clear", "Clear", show=False, id="events.clear"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self._shown: list[int] = []  # id() of the events in the table, in order

    def compose_body(self) -> ComposeResult:
        table: DataTable[Any] = DataTable(id="events", cursor_type="row")
        table.add_column("TIME", width=8)
        table.add_column("TYPE", width=9)
        table.add_column("ACTION", width=8)
        table.add_column("NAME", width=16)
        table.add_column("ID", width=12)
        table.add_column("ATTRIBUTES")
        yield table

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()

    def _matches(self, e: Event) -> bool:
        if not self.filter_text:
            return True
        hay = f"{e.type} {e.action} {e.id} " + " ".join(f"{k}={v}" for k, v in e.attributes.items())
        return all(t.lower() in hay.lower() for t in self.filter_text.split())

    def update_data(self, kinds: set[str]) -> None:
        if not kinds & {"events", "connection"}:
            return
        table: DataTable[Any] = self.query_one(DataTable)
        events = [e for e in self.state.events if self._matches(e)]
        at_end = not table.row_count or table.cursor_row >= table.row_count - 1
        ids = [id(e) for e in events]
        if ids[: len(self._shown)] != self._shown:
            table.clear()
            self._shown = []
        for e in events[len(self._shown) :]:
            attrs = dict(e.attributes)
            name = attrs.pop("name", "")
            table.add_row(
                fmt.event_time(e.time),
                e.type,
                e.action,
                name,
                fmt.short_id(e.id),
                " ".join(f"{k}={v}" for k, v in sorted(attrs.items())),
            )
        self._shown = ids
        if at_end and table.row_count:
            table.move_cursor(row=table.row_count - 1, animate=False)
        note = f" │ {self.state.events_note}" if self.state.events_note else ""
        filt = f" │ filter: {self.filter_text}" if self.filter_text else ""
        self.set_status(f"{len(events)} events (times in UTC){filt}{note}")

    def apply_filter(self, text: str) -> None:
        """Show events containing every word of ``text``."""
        self.filter_text = text.strip()
        self.update_data({"events"})

    def action_filter(self) -> None:
        self.app.push_screen(
            PromptScreen("filter events: words (type, action, name=, image=...)", self.filter_text),
            lambda t: self.apply_filter(t) if t is not None else None,
        )

    def action_clear(self) -> None:
        self.apply_filter("")
