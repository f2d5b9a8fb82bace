"""One container in depth: live graphs, inspect as a foldable tree, env, mounts, processes,
recent events. Graphs come from the shared stats stream (no extra subscription)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.protobuf.json_format import MessageToDict
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Label, Static, TabbedContent, TabPane, Tree

from servin.errors import ServinError
from servin.tui import format as fmt
from servin.tui.graph import Graph
from servin.tui.screens.base import BaseScreen

if TYPE_CHECKING:
    from servin.api.servin.v1.containers_pb2 import ContainerDetail, ContainerSummary

GRAPHS = [
    ("cpu", "CPU %"),
    ("mem", "Memory"),
    ("net_rx", "Net in / sample"),
    ("net_tx", "Net out / sample"),
    ("blk_read", "Block read / sample"),
    ("blk_write", "Block write / sample"),
]


def fill_tree(node: Any, value: Any, expand_depth: int = 1) -> None:
    """Add ``value`` (dicts, lists, scalars) under a Tree node, folded below ``expand_depth``."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        if isinstance(child, dict | list) and child:
            size = f"{{{len(child)}}}" if isinstance(child, dict) else f"[{len(child)}]"
            branch = node.add(f"[b]{key}[/b] {size}", expand=expand_depth > 0)
            fill_tree(branch, child, expand_depth - 1)
        else:
            node.add_leaf(f"[b]{key}[/b]: {_scalar(child)}")


def _scalar(value: Any) -> str:
    from rich.markup import escape

    text = "" if value is None else str(value)
    return escape(text if len(text) <= 200 else text[:199] + "…")


class ContainerDetailScreen(BaseScreen):
    """Details of one container."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="detail.back"),
        Binding("l", "logs", "Logs", id="detail.logs"),
        Binding("e", "exec_shell", "Shell", id="detail.exec"),
        Binding("y", "copy_id", "Copy ID", id="detail.copy"),
        Binding("R", "reload", "Reload", id="detail.reload"),
    ]

    def __init__(self, container_id: str) -> None:
        super().__init__()
        self.container_id = container_id
        self.detail: ContainerDetail | None = None
        self.pod_name = ""  # the pod the container belongs to ("" for none)

    @property
    def crumb(self) -> str:  # type: ignore[override]  # the base's attribute, computed here
        c = self.state.containers.get(self.container_id)
        if c is not None:
            return str(c.name)
        return str(self.detail.name) if self.detail is not None else fmt.short_id(self.container_id)

    def compose_body(self) -> ComposeResult:
        with TabbedContent(id="tabs"):
            with TabPane("Live", id="live"), Vertical(id="graphs"):
                yield Static("", id="summary", markup=False)
                for key, title in GRAPHS:
                    yield Label(title, id=f"label-{key}", classes="graph-label")
                    yield Graph(id=f"graph-{key}", classes="graph")
            with TabPane("Inspect", id="inspect"):
                yield Tree("container", id="tree")
            with TabPane("Env", id="env"):
                yield DataTable(id="env-table", cursor_type="row")
            with TabPane("Mounts", id="mounts"):
                yield DataTable(id="mounts-table", cursor_type="row")
            with TabPane("Processes", id="processes"):
                yield DataTable(id="top-table", cursor_type="row")
                yield Static("", id="top-note", markup=False)
            with TabPane("Events", id="events"):
                yield DataTable(id="events-table", cursor_type="row")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (self.servin.read_only and action == "exec_shell")

    def on_mount(self) -> None:
        self.query_one("#env-table", DataTable).add_columns("VARIABLE", "VALUE")
        self.query_one("#mounts-table", DataTable).add_columns("TYPE", "SOURCE", "TARGET", "MODE")
        self.query_one("#events-table", DataTable).add_columns("TIME", "ACTION", "DETAILS")
        self.action_reload()

    def action_reload(self) -> None:
        self.run_worker(self._load(), exclusive=True, group="load")

    async def _load(self) -> None:
        from servin.api.servin.v1 import containers_pb2

        try:
            detail = await self.source.call(
                lambda cl: cl.containers.Inspect(
                    containers_pb2.InspectContainerRequest(id=self.container_id)
                )
            )
        except ServinError as exc:
            self.set_status(f"inspect failed: {exc}")
            return
        self.detail = detail
        await self._load_pod(detail.pod_id)
        self._fill(detail)
        await self._load_top()

    async def _load_pod(self, pod_id: str) -> None:
        from servin.api.servin.v1 import pods_pb2

        if not pod_id:
            self.pod_name = ""
            return
        try:
            request = pods_pb2.PodRequest(id=pod_id)
            pod = await self.source.call(lambda cl: cl.pods.Inspect(request))
            self.pod_name = str(pod.name)
        except ServinError:
            self.pod_name = fmt.short_id(pod_id)  # removed meanwhile, or an older daemon

    def _fill(self, d: ContainerDetail) -> None:
        tree: Tree[Any] = self.query_one("#tree", Tree)
        tree.clear()
        tree.root.label = f"{d.name} ({fmt.short_id(d.id)})"
        fill_tree(tree.root, MessageToDict(d, preserving_proto_field_name=True))
        tree.root.expand()
        env: DataTable[Any] = self.query_one("#env-table", DataTable)
        env.clear()
        for item in d.spec.env:
            key, _, value = item.partition("=")
            env.add_row(key, value)
        mounts: DataTable[Any] = self.query_one("#mounts-table", DataTable)
        mounts.clear()
        for m in d.mounts:
            mounts.add_row(m.type, m.name or m.source, m.target, "ro" if m.read_only else "rw")
        self.update_data({"stats", "events"})

    async def _load_top(self) -> None:
        from servin.api.servin.v1 import containers_pb2

        table: DataTable[Any] = self.query_one("#top-table", DataTable)
        note = self.query_one("#top-note", Static)
        if self.detail is None or not self.detail.state.running:
            note.update("The container is not running: no processes.")
            return
        try:
            top = await self.source.call(
                lambda cl: cl.containers.Top(containers_pb2.TopRequest(id=self.container_id))
            )
        except ServinError as exc:
            note.update(f"Processes unavailable: {exc}")
            return
        table.clear(columns=True)
        table.add_columns(*top.titles)
        for row in top.processes:
            table.add_row(*row.fields)
        note.update("")

    def update_data(self, kinds: set[str]) -> None:
        c = self.state.containers.get(self.container_id)
        if c is None and self.detail is None:
            return
        if kinds & {"stats", "containers", "connection"}:
            self._update_live(c)
        if "events" in kinds:
            self._update_events()

    def _update_live(self, c: ContainerSummary | None) -> None:
        s = self.state.stats.get(self.container_id)
        hist = self.state.history.get(self.container_id)
        name = c.name if c is not None else self.detail.name if self.detail else ""
        lines = [f"{name}  {fmt.short_id(self.container_id)}  {c.state if c else 'removed'}"]
        if c is not None:
            lines.append(f"image {c.image}   command {c.command}")
            if c.started_at.seconds and c.state == "running":
                up = fmt.short_duration(self.source.clock() - fmt.ts_seconds(c.started_at))
                lines.append(f"up {up}   restarts {c.restart_count}")
        if self.detail is not None and self.detail.pod_id:
            lines.append(f"pod {self.pod_name}  {fmt.short_id(self.detail.pod_id)}")
        if s is not None:
            limit = fmt.size(s.memory_limit) if s.memory_limit else "no limit"
            lines.append(
                f"CPU {s.cpu_percent:.1f}%   memory {fmt.size(s.memory_usage)} / {limit} "
                f"({s.memory_percent:.1f}%)   pids {s.pids}   "
                f"net {fmt.size(s.net_rx)} in {fmt.size(s.net_tx)} out   "
                f"block {fmt.size(s.block_read)} read {fmt.size(s.block_write)} written"
            )
        elif self.state.stats_note:
            lines.append(self.state.stats_note)
        self.query_one("#summary", Static).update("\n".join(lines))
        host_total = self.state.info.mem_total if self.state.info is not None else 0
        for key, title in GRAPHS:
            series = list(getattr(hist, key)) if hist else []
            if key == "cpu":
                top = 100.0
            elif key == "mem":
                top = fmt.memory_top(s.memory_limit if s else 0, host_total, series)
            else:
                top = max(series) if series else 0.0
            self.query_one(f"#graph-{key}", Graph).set(series, top)
            last = series[-1] if series else 0.0
            shown = f"{last:.1f}%" if key == "cpu" else fmt.size(last)
            peak = max(series) if series else 0.0
            peak_text = f"{peak:.1f}%" if key == "cpu" else fmt.size(peak)
            self.query_one(f"#label-{key}", Label).update(f"{title}: {shown}  (peak {peak_text})")
        self.set_status(f"container {name} │ Live graphs use the shared stats stream")

    def _update_events(self) -> None:
        table: DataTable[Any] = self.query_one("#events-table", DataTable)
        mine = [e for e in self.state.events if e.id == self.container_id][-50:]
        if table.row_count == len(mine):
            return
        table.clear()
        for e in mine:
            attrs = ", ".join(f"{k}={v}" for k, v in sorted(e.attributes.items()))
            table.add_row(fmt.event_time(e.time), e.action, attrs)

    def action_logs(self) -> None:
        from servin.tui.screens.logs import LogsScreen

        c = self.state.containers.get(self.container_id)
        name = c.name if c is not None else fmt.short_id(self.container_id)
        self.app.push_screen(LogsScreen([(self.container_id, name)]))

    def action_exec_shell(self) -> None:
        self.servin.exec_shell(self.container_id)

    def action_copy_id(self) -> None:
        self.app.copy_to_clipboard(self.container_id)
        self.notify("copied the container ID (OSC 52)", timeout=3)
