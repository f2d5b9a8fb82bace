"""The Containers screen: every container, live, with one-key (and bulk) actions.

The table is updated in place: cells change only where values changed, rows are added and
removed by key, and the cursor stays on the container it was on (by ID, not by position).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.timer import Timer
from textual.widgets import DataTable

from servin.errors import ServinError
from servin.tui import format as fmt
from servin.tui.query import SORT_KEYS, ContainerQuery, sort_column
from servin.tui.screens.base import BaseScreen
from servin.tui.screens.dialogs import ConfirmScreen, PromptScreen

# key, header, width, the narrowest terminal that shows it (80x24 keeps the essentials).
COLUMNS = [
    ("sel", " ", 1, 0),
    ("name", "NAME", 14, 0),
    ("image", "IMAGE", 12, 0),
    ("state", "STATE", 9, 0),
    ("health", "HEALTH", 9, 100),
    ("uptime", "UPTIME", 6, 0),
    ("ports", "PORTS", 16, 120),
    ("cpu", "CPU%", 10, 0),
    ("mem", "MEM", 12, 0),
]
WIDE_NAMES = 140  # from this width on, names and images get more room
MARGIN = 5  # rows above and below the screen kept current
SPARK_WIDTH = 4

# action -> (RPC method, past tense, needs confirmation)
ACTIONS = {
    "start": ("Start", "started", False),
    "stop": ("Stop", "stopped", True),
    "restart": ("Restart", "restarted", True),
    "kill": ("Kill", "killed", True),
    "remove": ("Remove", "removed", True),
    "pause": ("Pause", "paused", True),
    "unpause": ("Unpause", "unpaused", False),
}
MUTATING = {"start", "stop", "restart", "kill", "remove", "pause_toggle", "exec_shell"}


class ContainersScreen(BaseScreen):
    """Every container with live CPU and memory; filter, sort, select, act."""

    BINDINGS = [
        Binding("enter", "details", "Details", id="containers.details"),
        Binding("l", "logs", "Logs", id="containers.logs"),
        Binding("e", "exec_shell", "Shell", id="containers.exec"),
        Binding("slash", "filter", "Filter", id="containers.filter"),
        Binding("space", "toggle_select", "Select", id="containers.select"),
        Binding("u", "start", "Start", id="containers.start"),
        Binding("s", "stop", "Stop", id="containers.stop"),
        Binding("r", "restart", "Restart", id="containers.restart"),
        Binding("K", "kill", "Kill", id="containers.kill"),
        Binding("d", "remove", "Remove", id="containers.remove"),
        Binding("p", "pause_toggle", "Pause", id="containers.pause"),
        Binding("o", "sort_next", "Sort", id="containers.sort"),
        Binding("O", "sort_reverse", "Reverse", show=False, id="containers.sort_reverse"),
        Binding("a", "toggle_all", "All/running", show=False, id="containers.all"),
        Binding("A", "select_all", "Select all", show=False, id="containers.select_all"),
        Binding("y", "copy_id", "Copy ID", show=False, id="containers.copy"),
        Binding("escape", "clear", "Clear", show=False, id="containers.clear"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.cfilter = ContainerQuery()
        self.sort = "name"
        self.reverse = False
        self.show_all = True
        self._order: list[str] = []
        self._cells: dict[str, list[Any]] = {}
        self._columns: list[str] = []
        self._stats_drawn = 0.0
        self._stats_timer: Timer | None = None

    @property
    def selected(self) -> set[str]:
        """The multi-selection (kept by the app: the Logs screen tails it)."""
        return self.servin.selected_containers

    @selected.setter
    def selected(self, ids: set[str]) -> None:
        self.servin.selected_containers = ids

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="containers", cursor_type="row", zebra_stripes=False)

    def _layout_columns(self, width: int) -> None:
        """Show the columns the terminal has room for (rebuilding rows when that changes)."""
        wanted = [key for key, _, _, min_width in COLUMNS if width >= min_width]
        if wanted == self._columns:
            return
        table: DataTable[Any] = self.query_one(DataTable)
        table.clear(columns=True)
        wide = width >= WIDE_NAMES
        for key, label, col_width, _ in COLUMNS:
            if key in wanted:
                if wide and key in ("name", "image"):
                    col_width += 10
                table.add_column(label, key=key, width=col_width)
        self._columns = wanted
        self._order = []  # forces a full rebuild of the rows

    def on_resize(self) -> None:
        self._layout_columns(self.size.width)
        self.refresh_table()

    def on_mount(self) -> None:
        self._layout_columns(self.app.size.width)
        self.query_one(DataTable).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (self.servin.read_only and action in MUTATING)

    # ---- data ------------------------------------------------------------------------

    def update_data(self, kinds: set[str]) -> None:
        if kinds & {"containers", "connection"}:
            self.refresh_table()
        elif "stats" in kinds:
            # Live figures alone redraw at most every stats_redraw seconds: any cell change
            # makes the table re-render every visible row, the console's main idle cost.
            now = time.monotonic()
            every = self.source.stats_redraw
            if now - self._stats_drawn >= every:
                self.refresh_table()
            elif self._stats_timer is None:
                delay = every - (now - self._stats_drawn)
                self._stats_timer = self.set_timer(delay, self._deferred_stats)

    def _deferred_stats(self) -> None:
        self._stats_timer = None
        self.refresh_table()

    def visible(self) -> list[Any]:
        """The containers shown, filtered and sorted."""
        now = self.source.clock()
        items = [
            c
            for c in self.state.containers.values()
            if (self.show_all or c.state == "running") and self.cfilter.matches(c)
        ]
        key = SORT_KEYS[self.sort]
        stats = self.state.stats
        # Ties break by name so the order is stable from one refresh to the next.
        items.sort(key=lambda c: c.name)
        items.sort(key=lambda c: key(c, stats.get(c.id), now), reverse=self.reverse)
        return items

    def _row(self, c: Any, now: float) -> list[Any]:
        s = self.state.stats.get(c.id)
        hist = self.state.history.get(c.id)
        uptime = ""
        if c.state in ("running", "paused") and c.started_at.seconds:
            uptime = fmt.short_duration(now - fmt.ts_seconds(c.started_at))
        if s is not None and c.state == "running":
            cpu = Text(f"{s.cpu_percent:5.1f} ")
            cpu.append(fmt.sparkline(hist.cpu if hist else [], SPARK_WIDTH, 100.0), "green")
            mem = Text(f"{fmt.size(s.memory_usage):>6} ")
            mem.append(fmt.sparkline(hist.mem if hist else [], SPARK_WIDTH), "cyan")
        else:
            cpu, mem = Text("-"), Text("-")
        cells = {
            "sel": Text("●", style="bold yellow") if c.id in self.selected else Text(" "),
            "name": c.name,
            "image": c.image,
            "state": fmt.state_text(c.state, c.exit_code),
            "health": fmt.health_text(c.health),
            "uptime": uptime,
            "ports": fmt.ports_text(c.ports),
            "cpu": cpu,
            "mem": mem,
        }
        return [cells[k] for k in self._columns]

    def refresh_table(self) -> None:
        """Bring the table in line with the state, touching only what changed."""
        self._stats_drawn = time.monotonic()
        table: DataTable[Any] = self.query_one(DataTable)
        now = self.source.clock()
        items = self.visible()
        order = [c.id for c in items]
        current = self._cursor_id()
        if order != self._order:
            # Membership or order changed: rebuild rows, then put the cursor back on its row.
            table.clear()
            self._cells = {}
            for c in items:
                cells = self._row(c, now)
                self._cells[c.id] = cells
                table.add_row(*cells, key=c.id)
            self._order = order
            if current in order:
                table.move_cursor(row=order.index(current), animate=False)
        else:
            keys = self._columns
            # Only the rows on screen (and a margin) are brought up to date: off-screen rows
            # catch up when they scroll in (the next redraw, or at once on a cursor move).
            top = int(table.scroll_offset.y)
            window = items[max(0, top - MARGIN) : top + table.size.height + MARGIN]
            for c in window:
                cells = self._row(c, now)
                old = self._cells.get(c.id)
                for i, value in enumerate(cells):
                    if old is None or old[i] != value:
                        table.update_cell(c.id, keys[i], value)
                self._cells[c.id] = cells
        self._update_status(len(items))

    def _update_status(self, shown: int) -> None:
        total = len(self.state.containers)
        running = sum(1 for c in self.state.containers.values() if c.state == "running")
        parts = [f"{shown}/{total} shown, {running} running"]
        if self.cfilter:
            parts.append(f"filter: {self.cfilter.text}")
        if not self.show_all:
            parts.append("running only")
        parts.append(f"sort: {self.sort}{' ↓' if self.reverse else ''}")
        if self.selected:
            parts.append(f"{len(self.selected)} selected")
        if self.servin.read_only:
            parts.append("read-only")
        if self.state.stats_note:
            parts.append(self.state.stats_note)
        self.set_status(" │ ".join(parts))

    def _cursor_id(self) -> str | None:
        table: DataTable[Any] = self.query_one(DataTable)
        if not table.row_count:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:  # the cursor sits past the last row while rows are replaced
            return None

    def targets(self) -> list[Any]:
        """The selected containers, or the one under the cursor."""
        ids = [i for i in self._order if i in self.selected] or (
            [self._cursor_id()] if self._cursor_id() else []
        )
        return [self.state.containers[i] for i in ids if i in self.state.containers]

    # ---- filtering, sorting, selection ----------------------------------------------

    def apply_filter(self, text: str) -> bool:
        """Set the filter line; False (and a notice) when it does not parse."""
        try:
            self.cfilter = ContainerQuery.parse(text)
        except ServinError as exc:
            self.notify(str(exc), severity="error")
            return False
        self.refresh_table()
        return True

    def action_filter(self) -> None:
        def done(text: str | None) -> None:
            if text is not None:
                self.apply_filter(text)

        self.app.push_screen(
            PromptScreen(
                "filter: text, /regex/, state=, label=k[=v], image=, name=, health=",
                self.cfilter.text,
                placeholder="e.g. web state=running",
            ),
            done,
        )

    def set_sort(self, column: str, reverse: bool | None = None) -> None:
        """Sort by a column (``cpu``, ``mem``, ``name``...)."""
        self.sort = sort_column(column)
        if reverse is not None:
            self.reverse = reverse
        elif self.sort in ("cpu", "mem", "uptime"):
            self.reverse = True  # the busiest (oldest) first is what one wants to see
        else:
            self.reverse = False
        self.refresh_table()

    def action_sort_next(self) -> None:
        names = list(SORT_KEYS)
        self.set_sort(names[(names.index(self.sort) + 1) % len(names)])

    def action_sort_reverse(self) -> None:
        self.reverse = not self.reverse
        self.refresh_table()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key in SORT_KEYS:
            if key == self.sort:
                self.action_sort_reverse()
            else:
                self.set_sort(key)

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all
        self.refresh_table()

    def action_toggle_select(self) -> None:
        cid = self._cursor_id()
        if cid is None:
            return
        self.selected.symmetric_difference_update({cid})
        self.refresh_table()
        table: DataTable[Any] = self.query_one(DataTable)
        table.action_cursor_down()

    def action_select_all(self) -> None:
        shown = set(self._order)
        self.selected = set() if shown <= self.selected else shown
        self.refresh_table()

    def action_clear(self) -> None:
        if self.selected:
            self.selected.clear()
        elif self.cfilter:
            self.cfilter = ContainerQuery()
        self.refresh_table()

    # ---- actions -----------------------------------------------------------------------

    def action_copy_id(self) -> None:
        targets = self.targets()
        if targets:
            text = "\n".join(c.id for c in targets)
            self.app.copy_to_clipboard(text)
            self.notify(f"copied {len(targets)} ID(s) to the clipboard (OSC 52)", timeout=3)

    def on_data_table_row_highlighted(self, _: DataTable.RowHighlighted) -> None:
        # The cursor moved (maybe scrolling far): bring the rows now on screen up to date.
        if not self._refresh_pending:
            self._refresh_pending = True
            self.call_after_refresh(self._catch_up)

    def _catch_up(self) -> None:
        self._refresh_pending = False
        self.refresh_table()

    _refresh_pending = False

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_details()

    def action_details(self) -> None:
        cid = self._cursor_id()
        if cid:
            from servin.tui.screens.detail import ContainerDetailScreen

            self.app.push_screen(ContainerDetailScreen(cid))

    def action_logs(self) -> None:
        targets = self.targets()
        if targets:
            from servin.tui.screens.logs import LogsScreen

            self.app.push_screen(LogsScreen([(c.id, c.name) for c in targets]))

    def action_exec_shell(self) -> None:
        cid = self._cursor_id()
        if cid:
            self.servin.exec_shell(cid)

    def action_start(self) -> None:
        self.run_action("start")

    def action_stop(self) -> None:
        self.run_action("stop")

    def action_restart(self) -> None:
        self.run_action("restart")

    def action_kill(self) -> None:
        self.run_action("kill")

    def action_remove(self) -> None:
        self.run_action("remove")

    def action_pause_toggle(self) -> None:
        targets = self.targets()
        if targets and all(c.state == "paused" for c in targets):
            self.run_action("unpause")
        else:
            self.run_action("pause")

    def run_action(self, action: str) -> None:
        """Run an action on the targets, after confirming when it is destructive."""
        targets = self.targets()
        if not targets:
            return
        method, verb, confirm = ACTIONS[action]
        names = ", ".join(c.name for c in targets[:8]) + (" …" if len(targets) > 8 else "")

        def go(yes: bool | None = True) -> None:
            if yes:
                self.run_worker(self._bulk(method, verb, targets), group="actions")

        if confirm:
            many = f"{len(targets)} containers" if len(targets) > 1 else targets[0].name
            self.app.push_screen(ConfirmScreen(f"{method} {many}?", names), go)
        else:
            go()

    async def _bulk(self, method: str, verb: str, targets: list[Any]) -> None:
        from servin.api.servin.v1 import containers_pb2

        def request(c: Any) -> Any:
            if method == "Stop":
                return containers_pb2.StopContainerRequest(id=c.id, timeout=-1)
            if method == "Restart":
                return containers_pb2.RestartContainerRequest(id=c.id, timeout=-1)
            if method == "Remove":
                return containers_pb2.RemoveContainerRequest(id=c.id, force=True)
            cls = getattr(containers_pb2, f"{method}ContainerRequest")
            return cls(id=c.id)

        async def one(c: Any) -> tuple[str, Any]:
            try:
                await self.source.call("containers", method, request(c), timeout=60)
            except ServinError as exc:
                return c.name, exc
            return c.name, None

        results = await asyncio.gather(*(one(c) for c in targets))
        self.selected.difference_update(c.id for c in targets)
        self.source.request_refresh()
        self.report(list(results), verb)
