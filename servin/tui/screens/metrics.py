"""The Metrics screen: every running container's live figures side by side, busiest first.

Everything comes from the source's one stats stream and the history it keeps: no call of
its own. Rows update in place; the order is recomputed at most every ``REORDER`` seconds so
the cursor (and the eye) does not chase containers whose CPU use crosses each other's.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from servin.tui import format as fmt
from servin.tui.screens.base import BaseScreen

REORDER = 3.0
SORTS = ["cpu", "mem", "net", "block", "pids", "name"]

# key, header, width (wide terminal), width (80 columns)
COLUMNS = [
    ("name", "NAME", 22, 14),
    ("cpu", "CPU%", 24, 12),
    ("mem", "MEMORY", 26, 14),
    ("mempct", "MEM%", 6, 5),
    ("net", "NET IN/OUT /s", 20, 0),
    ("block", "BLOCK R/W /s", 20, 13),
    ("pids", "PIDS", 5, 4),
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
        self._order: list[str] = []
        self._cells: dict[str, list[Any]] = {}
        self._sorted_at = -REORDER
        self._wide = True

    def compose_body(self) -> ComposeResult:
        yield Static("", id="totals", markup=False)
        yield DataTable(id="metrics", cursor_type="row")

    def on_mount(self) -> None:
        table: DataTable[Any] = self.query_one(DataTable)
        self._wide = self.app.size.width >= 120
        for key, label, wide, narrow in COLUMNS:
            width = wide if self._wide else narrow
            if width:
                table.add_column(label, key=key, width=width)
        table.focus()

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

    def _row(self, cid: str) -> list[Any]:
        s = self.state.stats.get(cid)
        h = self.state.history.get(cid)
        c = self.state.containers.get(cid)
        spark = 10 if self._wide else 4
        name = c.name if c is not None else fmt.short_id(cid)
        cpu = Text(f"{s.cpu_percent:5.1f} " if s else "    - ")
        cpu.append(fmt.sparkline(h.tail("cpu", spark) if h else [], spark, 100.0), "green")
        mem = Text(f"{fmt.size(s.memory_usage) if s else '-':>7} ")
        series = h.tail("mem", spark) if h else []
        host_total = self.state.info.mem_total if self.state.info is not None else 0
        top = fmt.memory_top(s.memory_limit if s else 0, host_total, series)
        mem.append(fmt.sparkline(series, spark, top), "cyan")
        mempct = f"{s.memory_percent:.1f}" if s and s.memory_limit else "-"

        def last(name: str) -> float:
            return sum(h.tail(name, 1)) if h else 0.0

        net = f"{fmt.size(last('net_rx')) if h else '-'} / {fmt.size(last('net_tx')) if h else '-'}"
        blk = (
            f"{fmt.size(last('blk_read')) if h else '-'} / "
            f"{fmt.size(last('blk_write')) if h else '-'}"
        )
        cells = {
            "name": name,
            "cpu": cpu,
            "mem": mem,
            "mempct": mempct,
            "net": net,
            "block": blk,
            "pids": str(s.pids) if s else "-",
        }
        return [cells[key] for key, _, wide, narrow in COLUMNS if (wide if self._wide else narrow)]

    def refresh_table(self, force_order: bool = False) -> None:
        """Update the rows in place; re-sort at most every REORDER seconds (or when asked)."""
        table: DataTable[Any] = self.query_one(DataTable)
        running = [cid for cid in self.state.stats if cid in self.state.containers]
        now = self.source.clock()
        members_changed = set(running) != set(self._order)
        if force_order or members_changed or now - self._sorted_at >= REORDER:
            order = sorted(running, key=lambda i: self._container_name(i))
            order.sort(key=self._key, reverse=self.sort != "name")
            self._sorted_at = now
        else:
            order = self._order
        keys = [key for key, _, wide, narrow in COLUMNS if (wide if self._wide else narrow)]
        if order != self._order:
            current = self._cursor_id()
            table.clear()
            self._cells = {}
            for cid in order:
                self._cells[cid] = self._row(cid)
                table.add_row(*self._cells[cid], key=cid)
            self._order = order
            if current in order:
                table.move_cursor(row=order.index(current), animate=False)
        else:
            for cid in order:
                cells = self._row(cid)
                old = self._cells.get(cid)
                for i, value in enumerate(cells):
                    if old is None or old[i] != value:
                        table.update_cell(cid, keys[i], value)
                self._cells[cid] = cells
        self._totals(running)

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
        self.query_one("#totals", Static).update(totals)
        note = f" │ {self.state.stats_note}" if self.state.stats_note else ""
        self.set_status(f"metrics │ sort: {self.sort} │ one shared stats stream{note}")

    def _cursor_id(self) -> str | None:
        table: DataTable[Any] = self.query_one(DataTable)
        if not table.row_count:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:  # the cursor sits past the last row while rows are replaced
            return None

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

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_details()

    def action_logs(self) -> None:
        cid = self._cursor_id()
        if cid:
            from servin.tui.screens.logs import LogsScreen

            self.app.push_screen(LogsScreen([(cid, self._container_name(cid))]))
