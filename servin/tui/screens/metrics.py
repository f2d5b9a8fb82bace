"""The Metrics screen: every running container's live figures side by side, busiest first.

Everything comes from the source's one stats stream and the history it keeps: no call of
its own. The table is a ``KeyedTable`` (only rows on screen are computed, only changed cells
repainted); the order is recomputed at most every ``REORDER`` seconds so the cursor (and the
eye) does not chase containers whose CPU use crosses each other's.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from servin.tui import format as fmt
from servin.tui.screens.base import BaseScreen
from servin.tui.table import Column, KeyedTable

REORDER = 3.0
SORTS = ["cpu", "mem", "net", "block", "pids", "name"]

# At 80 columns NET is dropped; wide terminals give names and sparklines the room.
COLUMNS = [
    Column("name", "NAME", 14, max_width=40, grow=2),
    Column("cpu", "CPU%", 12, max_width=24, grow=1),
    Column("mem", "MEMORY", 14, max_width=26, grow=1),
    Column("mempct", "MEM%", 6),
    Column("net", "NET IN/OUT /s", 20, max_width=28, grow=1, priority=2),
    Column("block", "BLOCK R/W /s", 17, min_width=13, max_width=28, grow=1, priority=1),
    Column("pids", "PIDS", 5),
]


class MetricsScreen(BaseScreen):
    """Live CPU, memory, network and block I/O of all running containers."""

    BINDINGS = [
        Binding("o", "sort_next", "Sort", id="metrics.sort"),
        Binding("enter", "details", "Details", id="metrics.details"),
        Binding("l", "logs", "Logs", id="metrics.logs"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sort = "cpu"
        self._sorted_at = -REORDER
        self._totals_text = ""

    @property
    def table(self) -> KeyedTable:
        """The metrics table."""
        return self.query_one("#metrics", KeyedTable)

    def compose_body(self) -> ComposeResult:
        yield Static("", id="totals", markup=False)
        yield KeyedTable(COLUMNS, self._row, id="metrics")

    def on_mount(self) -> None:
        self.table.focus()

    def update_data(self, kinds: set[str]) -> None:
        if kinds & {"stats", "containers", "connection"}:
            self.refresh_table()

    def _key(self, cid: str) -> Any:
        s = self.state.stats.get(cid)
        h = self.state.history.get(cid)
        c = self.state.containers.get(cid)
        if self.sort == "name":
            return c.name if c is not None else cid
        if s is None:
            return 0
        if self.sort == "cpu":
            return s.cpu_percent
        if self.sort == "mem":
            return s.memory_usage
        if self.sort == "pids":
            return s.pids
        if h is None:
            return 0.0
        if self.sort == "net":
            return sum(h.tail("net_rx", 1)) + sum(h.tail("net_tx", 1))
        return sum(h.tail("blk_read", 1)) + sum(h.tail("blk_write", 1))

    def _row(self, cid: str) -> dict[str, Text]:
        s = self.state.stats.get(cid)
        h = self.state.history.get(cid)
        c = self.state.containers.get(cid)
        cpu_spark = max(2, self.table.width_of("cpu") - 6)
        mem_spark = max(2, self.table.width_of("mem") - 8)
        name = c.name if c is not None else fmt.short_id(cid)
        cpu = Text(f"{s.cpu_percent:5.1f} " if s else "    - ")
        cpu.append(fmt.sparkline(h.tail("cpu", cpu_spark) if h else [], cpu_spark, 100.0), "green")
        mem = Text(f"{fmt.size(s.memory_usage) if s else '-':>7} ")
        series = h.tail("mem", mem_spark) if h else []
        host_total = self.state.info.mem_total if self.state.info is not None else 0
        top = fmt.memory_top(s.memory_limit if s else 0, host_total, series)
        mem.append(fmt.sparkline(series, mem_spark, top), "cyan")
        mempct = f"{s.memory_percent:.1f}" if s and s.memory_limit else "-"

        def last(name: str) -> str:
            return fmt.size(sum(h.tail(name, 1))) if h else "-"

        return {
            "name": Text(name),
            "cpu": cpu,
            "mem": mem,
            "mempct": Text(mempct),
            "net": Text(f"{last('net_rx')} / {last('net_tx')}"),
            "block": Text(f"{last('blk_read')} / {last('blk_write')}"),
            "pids": Text(str(s.pids) if s else "-"),
        }

    def refresh_table(self, force_order: bool = False) -> None:
        """Update the rows on screen; re-sort at most every REORDER seconds (or when asked)."""
        table = self.table
        running = [cid for cid in self.state.stats if cid in self.state.containers]
        now = self.source.clock()
        if force_order or set(running) != set(table.order) or now - self._sorted_at >= REORDER:
            order = sorted(running, key=self._container_name)
            order.sort(key=self._key, reverse=self.sort != "name")
            self._sorted_at = now
            table.set_order(order)
        table.refresh_rows()
        self._totals(running)

    def visible_names(self) -> list[str]:
        """The names shown, in order (tests)."""
        return [self._container_name(cid) for cid in self.table.order]

    def _container_name(self, cid: str) -> str:
        c = self.state.containers.get(cid)
        return c.name if c is not None else cid

    def _totals(self, running: list[str]) -> None:
        stats = [self.state.stats[i] for i in running]
        cpu = sum(s.cpu_percent for s in stats)
        mem = sum(s.memory_usage for s in stats)
        pids = sum(s.pids for s in stats)
        totals = (
            f"{len(stats)} running │ CPU {cpu:.1f}% │ memory {fmt.size(mem) if mem else '0B'} │ "
            f"{pids} processes"
        )
        static = self.query_one("#totals", Static)
        if self._totals_text != totals:
            self._totals_text = totals
            static.update(totals, layout=False)
        note = f" │ {self.state.stats_note}" if self.state.stats_note else ""
        self.set_status(f"metrics │ sort: {self.sort} │ one shared stats stream{note}")

    def _cursor_id(self) -> str | None:
        return self.table.cursor_key

    def action_sort_next(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.refresh_table(force_order=True)

    def set_sort(self, column: str) -> None:
        """Sort by ``cpu``, ``mem``, ``net``, ``block``, ``pids`` or ``name``."""
        from servin.errors import InvalidArgument

        if column not in SORTS:
            raise InvalidArgument(f"cannot sort metrics by {column!r}: use {', '.join(SORTS)}")
        self.sort = column
        self.refresh_table(force_order=True)

    def action_details(self) -> None:
        cid = self._cursor_id()
        if cid:
            from servin.tui.screens.detail import ContainerDetailScreen

            self.app.push_screen(ContainerDetailScreen(cid))

    def on_keyed_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        event.stop()
        self.action_details()

    def action_logs(self) -> None:
        cid = self._cursor_id()
        if cid:
            from servin.tui.screens.logs import LogsScreen

            self.app.push_screen(LogsScreen([(cid, self._container_name(cid))]))
