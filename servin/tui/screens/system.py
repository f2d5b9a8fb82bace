"""The System screen: the daemon and its host (Info, Version) and disk usage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Static

from servin.errors import ServinError
from servin.tui import format as fmt
from servin.tui.screens.base import BaseScreen

if TYPE_CHECKING:
    from servin.api.servin.v1.system_pb2 import InfoResponse, VersionResponse


class SystemScreen(BaseScreen):
    """Info, version and disk usage, loaded when shown (``r`` reloads)."""

    BINDINGS = [Binding("r", "reload", "Reload", id="system.reload")]

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="system"):
            with Horizontal(id="system-top"):
                yield Static("", id="daemon-info", markup=False)
                yield Static("", id="host-info", markup=False)
            yield DataTable(id="disk", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#disk", DataTable).add_columns(
            "TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"
        )

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.action_reload()

    def action_reload(self) -> None:
        if not any(w.group == "load" and not w.is_finished for w in self.workers):
            self.run_worker(self._load(), group="load")

    def on_resize(self) -> None:
        # Side by side when there is room, stacked at 80 columns.
        self.query_one("#system-top").set_class(self.size.width < 120, "stacked")

    async def _load(self) -> None:
        from servin.api.servin.v1 import system_pb2

        try:
            info = await self.source.call(lambda cl: cl.system.Info(system_pb2.InfoRequest()))
            version = await self.source.call(
                lambda cl: cl.system.Version(system_pb2.VersionRequest())
            )
        except ServinError as exc:
            self.set_status(f"system info unavailable: {exc}")
            return
        self.query_one("#daemon-info", Static).update(_daemon_text(info, version))
        self.query_one("#host-info", Static).update(_host_text(info))
        table: DataTable[Any] = self.query_one("#disk", DataTable)
        try:
            du = await self.source.call(
                lambda cl: cl.system.DiskUsage(system_pb2.DiskUsageRequest())
            )
        except ServinError as exc:
            self.set_status(f"disk usage unavailable: {exc}")
            return
        table.clear()
        for item in du.items:
            pct = f" ({item.reclaimable * 100 // item.size}%)" if item.size else ""
            table.add_row(
                item.type,
                str(item.total),
                str(item.active),
                fmt.size(item.size),
                fmt.size(item.reclaimable) + pct,
            )
        self.set_status(f"daemon {info.server_version} on {info.name}")


def _daemon_text(info: InfoResponse, version: VersionResponse) -> str:
    started = fmt.utc_stamp(fmt.ts_seconds(info.started_at))
    return "\n".join(
        [
            "DAEMON",
            f"version     {version.version} (API {version.api_version})",
            f"python      {version.python_version}",
            f"pid         {info.daemon_pid or '-'}   started {started}",
            f"socket      {info.socket or '-'}",
            f"root        {info.root_dir}",
            f"exec root   {info.exec_root}",
            f"storage     {info.storage_driver}   logging {info.logging_driver or '-'}",
            f"runtime     {info.default_runtime} ({', '.join(info.runtimes)})",
            f"containers  {info.containers} ({info.containers_running} running, "
            f"{info.containers_paused} paused, {info.containers_stopped} stopped)",
            f"images      {info.images}   volumes {info.volumes}   networks {info.networks}",
        ]
    )


def _host_text(info: InfoResponse) -> str:
    lines = [
        "HOST",
        f"name        {info.name}",
        f"os          {info.operating_system} ({info.os_type}/{info.architecture})",
        f"kernel      {info.kernel_version}",
        f"cpus        {info.ncpu}   memory {fmt.size(info.mem_total)}"
        + (f" ({fmt.size(info.mem_available)} available)" if info.mem_available else ""),
        f"cgroups     v{info.cgroup_version} ({info.cgroup_driver})",
    ]
    if info.load_average:
        lines.append("load        " + " ".join(f"{v:.2f}" for v in info.load_average))
    lines += [f"warning     {w}" for w in info.warnings]
    return "\n".join(lines)
