"""The Containers screen: every container, live, with one-key (and bulk) actions.

The table is a ``KeyedTable`` (servin/tui/table.py): rows are computed only while on screen
and live figures repaint only the cells that changed. Which rows show, and in what order
(filter and sort), is computed by ``query.select``; with many containers that runs in a
worker thread and its result is applied as a new order, the cursor staying on its row.
``/`` filters as you type. On a big terminal the split view (``v``) shows the selected
container's log tail and graphs under the table.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.timer import Timer

from servin.errors import ServinError
from servin.tui import format as fmt
from servin.tui import kube
from servin.tui.peek import ContainerPeek
from servin.tui.query import SORT_KEYS, ContainerQuery, select, sort_column
from servin.tui.screens.base import BaseScreen
from servin.tui.screens.dialogs import ConfirmScreen, PromptScreen
from servin.tui.table import Column, KeyedTable

if TYPE_CHECKING:
    from servin.api.servin.v1.containers_pb2 import ContainerSummary
    from servin.tui.source import DaemonClient

# Widths and priorities (0 always shown; higher numbers dropped first on narrow terminals):
# at 80 columns the essentials, at 160 every column whole with room for names and ports.
COLUMNS = [
    Column("sel", " ", 1),
    Column("name", "NAME", 16, min_width=12, max_width=40, grow=3),
    Column("image", "IMAGE", 14, min_width=12, max_width=36, grow=2, priority=1),
    Column("state", "STATE", 12),
    Column("health", "HEALTH", 9, priority=3),
    Column("uptime", "UPTIME", 6, priority=2),
    Column("ports", "PORTS", 22, min_width=12, max_width=48, grow=2, priority=4),
    Column("cpu", "CPU%", 10, max_width=16, grow=1),
    Column("mem", "MEM", 12, max_width=18, grow=1),
]
# With containers the kubelet made, their namespace first (as kubectl and k9s show it) and
# their name as pod/container. It outranks UPTIME: at 80 columns it takes UPTIME's place.
NAMESPACE_COLUMN = Column("ns", "NAMESPACE", 11, min_width=11, max_width=20, grow=1, priority=1)
KUBE_COLUMNS = [COLUMNS[0], NAMESPACE_COLUMN, *COLUMNS[1:]]
# The split view needs room for both the table and the logs.
SPLIT_MIN = (120, 36)
# From this many containers on, filtering and sorting run in a worker thread.
OFFLOAD_AT = 200

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
DEFAULT_STOP_TIMEOUT = 10  # seconds, when the container sets none (docker's default)


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
        Binding("v", "toggle_split", "Split", id="containers.split"),
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
        self.offload_at = OFFLOAD_AT
        self.split_wanted = True  # the user's choice; shown when the terminal is big enough
        self.filter_generation = 0  # bumped by every filter/sort change
        self.applied_generation = 0  # the generation the table shows
        self._order_job: asyncio.Task[None] | None = None
        self._order_again = False
        self._drawn_at = 0.0
        self._live_timer: Timer | None = None
        # container ID -> when (source clock) the SIGKILL comes, while a stop is under way
        self.stopping: dict[str, float] = {}
        self._stop_timer: Timer | None = None
        # container ID -> (what its cells were made from, the cells)
        self._made: dict[str, tuple[tuple[Any, ...], dict[str, Text]]] = {}

    @property
    def selected(self) -> set[str]:
        """The multi-selection (kept by the app: the Logs screen tails it)."""
        return self.servin.selected_containers

    @selected.setter
    def selected(self, ids: set[str]) -> None:
        self.servin.selected_containers = ids

    @property
    def table(self) -> KeyedTable:
        """The container table."""
        return self.query_one("#containers", KeyedTable)

    def compose_body(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, self._cells, id="containers", header_marks=self._marks)
        yield ContainerPeek(self.source)

    def on_mount(self) -> None:
        self.table.focus()
        self._layout_split()

    def on_resize(self) -> None:
        self._layout_split()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_split":
            return self._split_fits()
        return not (self.servin.read_only and action in MUTATING)

    # ---- the split view ----------------------------------------------------------------

    def _split_fits(self) -> bool:
        width, height = self.app.size
        return width >= SPLIT_MIN[0] and height >= SPLIT_MIN[1]

    @property
    def split_shown(self) -> bool:
        """Whether the log tail and graphs are shown under the table."""
        return self.split_wanted and self._split_fits()

    def _layout_split(self) -> None:
        peek = self.query_one(ContainerPeek)
        shown = self.split_shown
        if peek.display != shown:
            peek.display = shown
        if shown:
            key = self.table.cursor_key
            c = self.state.containers.get(key) if key else None
            peek.follow(key, c.name if c is not None else "", now=peek.container_id is None)
        else:
            peek.follow(None, now=True)

    def action_toggle_split(self) -> None:
        self.split_wanted = not self.split_wanted
        self._layout_split()

    # ---- data ------------------------------------------------------------------------

    def update_data(self, kinds: set[str]) -> None:
        if kinds & {"containers", "connection"}:
            self._fit_kube_columns()
            self.reorder()
            self._redraw_live()
            if self.split_shown and "connection" in kinds:
                self.query_one(ContainerPeek).resume()
        elif "stats" in kinds or "info" in kinds:
            # Live figures alone redraw at most every stats_redraw seconds (one frame for
            # the table and the graphs); the order changes with them only when sorted by
            # them, at the same pace, so rows do not jump under the eye.
            wait = self.source.stats_redraw - (time.monotonic() - self._drawn_at)
            if wait <= 0:
                if self.sort in ("cpu", "mem"):
                    self.reorder()
                self._redraw_live()
            elif self._live_timer is None:
                self._live_timer = self.set_timer(wait, self._deferred_live, name="live")
        self._update_status()

    def _redraw_live(self) -> None:
        self._drawn_at = time.monotonic()
        if self._live_timer is not None:
            self._live_timer.stop()
            self._live_timer = None
        self.table.refresh_rows()
        if self.split_shown:
            self.query_one(ContainerPeek).update_live()

    def _deferred_live(self) -> None:
        self._live_timer = None
        if self.sort in ("cpu", "mem"):
            self.reorder()
        self._redraw_live()

    def _fit_kube_columns(self) -> None:
        """The NAMESPACE column while any container is a kubelet's; none otherwise (a
        docker-style host keeps its layout)."""
        columns = KUBE_COLUMNS if self._kube_now() else COLUMNS
        if self.table.columns != columns:
            self.table.set_columns(columns)

    def reorder(self) -> None:
        """Recompute which containers show, and in what order (filter and sort)."""
        generation = self.filter_generation
        args = (
            list(self.state.containers.values()),
            dict(self.state.stats),
            self.cfilter,
            self.sort,
            self.reverse,
            not self.show_all,
            self.source.clock(),
        )
        if len(args[0]) < self.offload_at:
            self._apply_order(select(*args), generation)
            return
        if self._order_job is not None and not self._order_job.done():
            self._order_again = True  # one more pass when this one ends, with fresh data
            return

        async def job() -> None:
            order = await asyncio.to_thread(select, *args)
            self._order_job = None
            if generation == self.filter_generation:
                self._apply_order(order, generation)
            # else: a newer filter or sort is waiting; do not flash this one's rows.
            if self._order_again:
                self._order_again = False
                self.reorder()

        self._order_job = asyncio.get_running_loop().create_task(job())

    def _apply_order(self, order: list[str], generation: int) -> None:
        if not self.is_mounted:
            return
        self.table.set_order(order)
        self.applied_generation = max(self.applied_generation, generation)
        self._update_status()

    def _marks(self) -> dict[str, str]:
        return {self.sort: " ↓" if self.reverse else " ↑"}

    def _cells(self, cid: str) -> dict[str, Text]:
        """One row's cells (the table asks only for rows on screen). The cells are kept with
        what they were made from, and made again only when that changed: most rows of an
        idle host show the same figures second after second."""
        c = self.state.containers.get(cid)
        if c is None:
            return {}
        s = self.state.stats.get(cid) if c.state == "running" else None  # live figures
        uptime = ""
        if c.state in ("running", "paused") and c.started_at.seconds:
            uptime = fmt.short_duration(self.source.clock() - fmt.ts_seconds(c.started_at))
        cpu_spark = max(2, self.table.width_of("cpu") - 6)
        mem_spark = max(2, self.table.width_of("mem") - 8)
        hist = self.state.history.get(cid) if s is not None else None
        cpu_series = hist.tail("cpu", cpu_spark) if hist is not None else []
        mem_series = hist.tail("mem", mem_spark) if hist is not None else []
        info = self.state.info
        host_total = info.mem_total if info is not None else 0
        deadline = self.stopping.get(cid)
        stopping = ""
        if deadline is not None and c.state == "running":
            stopping = fmt.stopping_text(
                deadline - self.source.clock(), self.table.width_of("state")
            )
        name_width = self.table.width_of("name")
        made_of = (
            c,
            name_width,
            cid in self.selected,
            uptime,
            stopping,
            (s.cpu_percent, s.memory_usage, s.memory_limit, host_total) if s is not None else None,
            cpu_series,
            mem_series,
        )
        kept = self._made.get(cid)
        if kept is not None and kept[0] == made_of:
            return kept[1]
        if s is not None:
            top = fmt.memory_top(s.memory_limit, host_total, mem_series)
            cpu = Text(f"{s.cpu_percent:5.1f} ")
            cpu.append(fmt.sparkline(cpu_series, cpu_spark, 100.0), "green")
            mem = Text(f"{fmt.size(s.memory_usage):>7} ")
            mem.append(fmt.sparkline(mem_series, mem_spark, top), "cyan")
        else:
            cpu, mem = Text("-"), Text("-")
        state = Text(stopping, "yellow") if stopping else fmt.state_text(c.state, c.exit_code)
        cells = {
            "sel": Text("●", style="bold yellow") if made_of[2] else Text(" "),
            "ns": Text(kube.namespace(c.labels)),
            "name": Text(kube.fit_container_name(c.labels, c.name, name_width)),
            "image": Text(c.image),
            "state": state,
            "health": fmt.health_text(c.health),
            "uptime": Text(uptime),
            "ports": Text(fmt.ports_text(c.ports)),
            "cpu": cpu,
            "mem": mem,
        }
        if len(self._made) > 4 * max(100, self.table.row_count):
            self._made.clear()  # rows long gone; cheap to make again
        self._made[cid] = (made_of, cells)
        return cells

    def _running_now(self) -> int:
        # The source replaces the dict when a container changes (and only deletes from it
        # in place): its identity and size say when to count again.
        containers = self.state.containers
        key = (id(containers), len(containers))
        if self._running_count[0] != key:
            running = sum(1 for c in containers.values() if c.state == "running")
            self._running_count = (key, running)
        return self._running_count[1]

    _running_count: tuple[Any, int] = (None, 0)

    def _kube_now(self) -> bool:
        # Counted again only when the dict changes (see _running_now).
        containers = self.state.containers
        key = (id(containers), len(containers))
        if self._kube_seen[0] != key:
            self._kube_seen = (key, any(kube.is_kube(c.labels) for c in containers.values()))
        return self._kube_seen[1]

    _kube_seen: tuple[Any, bool] = (None, False)

    def _update_status(self) -> None:
        total = len(self.state.containers)
        running = self._running_now()
        parts = [f"{self.table.row_count}/{total} shown, {running} running"]
        if self.cfilter:
            parts.append(f"filter: {self.cfilter.text}")
        if not self.show_all:
            parts.append("running only")
        parts.append(f"sort: {self.sort}{' ↓' if self.reverse else ''}")
        if self.selected:
            parts.append(f"{len(self.selected)} selected")
        for cid, deadline in list(self.stopping.items())[:2]:
            c = self.state.containers.get(cid)
            if c is not None:
                text = fmt.stopping_text(deadline - self.source.clock(), 40)
                parts.append(f"{c.name}: {text}")
        if self.servin.read_only:
            parts.append("read-only")
        if self.state.stats_note:
            parts.append(self.state.stats_note)
        self.set_status(" │ ".join(parts))

    def _cursor_id(self) -> str | None:
        return self.table.cursor_key

    def targets(self) -> list[ContainerSummary]:
        """The selected containers, or the one under the cursor."""
        ids = [i for i in self.table.order if i in self.selected]
        if not ids:
            cursor = self._cursor_id()
            ids = [cursor] if cursor else []
        return [self.state.containers[i] for i in ids if i in self.state.containers]

    def visible_names(self) -> list[str]:
        """The names shown, in order (tests)."""
        return [self.state.containers[i].name for i in self.table.order]

    # ---- filtering, sorting, selection ----------------------------------------------

    def apply_filter(self, text: str, *, quiet: bool = False) -> bool:
        """Set the filter line; False (and, unless ``quiet``, a notice) when it does not
        parse. The rows follow at once, or when the worker thread has them."""
        try:
            query = ContainerQuery.parse(text)
        except ServinError as exc:
            if not quiet:
                self.notify(str(exc), severity="error")
            return False
        if query.text != self.cfilter.text or not quiet:
            self.cfilter = query
            self.filter_generation += 1
            self.reorder()
        return True

    def filter_settled(self) -> bool:
        """Whether the table shows the latest filter and sort (benchmarks, tests)."""
        return self.applied_generation >= self.filter_generation

    def action_filter(self) -> None:
        before = self.cfilter.text

        def done(text: str | None) -> None:
            # Enter keeps what was typed (saying so when it does not parse); escape puts
            # back the filter there was before the prompt opened.
            self.apply_filter(before if text is None else text)

        self.app.push_screen(
            PromptScreen(
                "filter (as you type): text, /regex/, state=, label=k[=v], image=, name=, "
                "health=, ns=, pod=",
                self.cfilter.text,
                placeholder="e.g. web state=running",
                on_change=lambda text: self.apply_filter(text, quiet=True),
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
        self._sort_changed()

    def _sort_changed(self) -> None:
        self.filter_generation += 1
        self.table.refresh_header()
        self.reorder()

    def action_sort_next(self) -> None:
        names = [n for n in SORT_KEYS if n != "namespace" or self._kube_now()]
        if self.sort not in names:
            names.append(self.sort)
        self.set_sort(names[(names.index(self.sort) + 1) % len(names)])

    def action_sort_reverse(self) -> None:
        self.reverse = not self.reverse
        self._sort_changed()

    def on_keyed_table_header_selected(self, event: KeyedTable.HeaderSelected) -> None:
        if event.column in SORT_KEYS:
            if event.column == self.sort:
                self.action_sort_reverse()
            else:
                self.set_sort(event.column)

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all
        self.filter_generation += 1
        self.reorder()

    def _selection_changed(self, ids: set[str] | None = None) -> None:
        self.table.refresh_rows(list(ids) if ids is not None else None)
        self._update_status()

    def action_toggle_select(self) -> None:
        cid = self._cursor_id()
        if cid is None:
            return
        self.selected.symmetric_difference_update({cid})
        self._selection_changed({cid})
        self.table.action_cursor_down()

    def action_select_all(self) -> None:
        shown = set(self.table.order)
        before = set(self.selected)
        self.selected = set() if shown <= self.selected else shown
        self._selection_changed(before | self.selected)

    def action_clear(self) -> None:
        if self.selected:
            before = set(self.selected)
            self.selected.clear()
            self._selection_changed(before)
        elif self.cfilter:
            self.apply_filter("")

    # ---- actions -----------------------------------------------------------------------

    def action_copy_id(self) -> None:
        targets = self.targets()
        if targets:
            text = "\n".join(c.id for c in targets)
            self.app.copy_to_clipboard(text)
            self.notify(f"copied {len(targets)} ID(s) to the clipboard (OSC 52)", timeout=3)

    def on_keyed_table_row_highlighted(self, event: KeyedTable.RowHighlighted) -> None:
        if self.split_shown:
            c = self.state.containers.get(event.key) if event.key else None
            self.query_one(ContainerPeek).follow(event.key, c.name if c is not None else "")

    def on_keyed_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
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
        self.container_action("start")

    def action_stop(self) -> None:
        self.container_action("stop")

    def action_restart(self) -> None:
        self.container_action("restart")

    def action_kill(self) -> None:
        self.container_action("kill")

    def action_remove(self) -> None:
        self.container_action("remove")

    def action_pause_toggle(self) -> None:
        targets = self.targets()
        if targets and all(c.state == "paused" for c in targets):
            self.container_action("unpause")
        else:
            self.container_action("pause")

    def container_action(self, action: str) -> None:
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

    async def _bulk(self, method: str, verb: str, targets: list[ContainerSummary]) -> None:
        from servin.api.servin.v1 import containers_pb2 as pb

        def request(cl: DaemonClient, cid: str) -> Awaitable[object]:
            """The action's call for one container (generous timeout: stops wait)."""
            api, t = cl.containers, 600
            if method == "Start":
                return api.Start(pb.StartContainerRequest(id=cid), timeout=t)
            if method == "Stop":
                return api.Stop(pb.StopContainerRequest(id=cid, timeout=-1), timeout=t)
            if method == "Restart":
                return api.Restart(pb.RestartContainerRequest(id=cid, timeout=-1), timeout=t)
            if method == "Kill":
                return api.Kill(pb.KillContainerRequest(id=cid), timeout=t)
            if method == "Remove":
                return api.Remove(pb.RemoveContainerRequest(id=cid, force=True), timeout=t)
            if method == "Pause":
                return api.Pause(pb.PauseContainerRequest(id=cid), timeout=t)
            if method == "Unpause":
                return api.Unpause(pb.UnpauseContainerRequest(id=cid), timeout=t)
            raise ValueError(f"no container action {method!r}")

        async def one(c: ContainerSummary) -> tuple[str, ServinError | None]:
            if method in ("Stop", "Restart") and c.state == "running":
                await self._count_down(c)
            try:
                await self.source.call(lambda cl: request(cl, c.id))
            except ServinError as exc:
                return c.name, exc
            finally:
                self._stopped(c.id)
            return c.name, None

        results = await asyncio.gather(*(one(c) for c in targets))
        self.selected.difference_update(c.id for c in targets)
        self.source.request_refresh()
        self._selection_changed()
        self.report(list(results), verb)

    # ---- stop progress -----------------------------------------------------------------

    async def _count_down(self, c: ContainerSummary) -> None:
        """Show "stopping (SIGKILL in Ns)" on the row until the stop returns."""
        from servin.api.servin.v1 import containers_pb2

        timeout = DEFAULT_STOP_TIMEOUT
        try:
            detail = await self.source.call(
                lambda cl: cl.containers.Inspect(containers_pb2.InspectContainerRequest(id=c.id))
            )
            if detail.spec.stop_timeout >= 0:
                timeout = detail.spec.stop_timeout
        except ServinError:
            pass  # the stop itself will say what is wrong
        self.stopping[c.id] = self.source.clock() + timeout
        if self._stop_timer is None:
            self._stop_timer = self.set_interval(1.0, self._tick_stopping, name="stop-progress")
        self._tick_stopping()

    def _tick_stopping(self) -> None:
        self.table.refresh_rows(list(self.stopping))
        self._update_status()

    def _stopped(self, cid: str) -> None:
        if self.stopping.pop(cid, None) is not None:
            self.table.refresh_rows([cid])
        if not self.stopping and self._stop_timer is not None:
            self._stop_timer.stop()
            self._stop_timer = None
        self._update_status()
