"""Volumes, Networks and Pods: lists loaded when shown (and with ``r``).

These change rarely and have no stream of their own: they load on entering the screen. A
daemon that does not implement the call yet gets a calm sentence, not a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from servin.errors import ServinError
from servin.tui import format as fmt
from servin.tui.screens.base import BaseScreen

Row = Callable[[Any], list[str]]


class ResourceScreen(BaseScreen):
    """A list of one kind of object, fetched with ``service.List``."""

    SERVICE: ClassVar[str] = ""
    TITLE_TEXT: ClassVar[str] = ""
    COLUMNS: ClassVar[list[str]] = []
    FIELD: ClassVar[str] = ""

    BINDINGS = [Binding("r", "reload", "Reload", id="resources.reload")]

    def compose_body(self) -> ComposeResult:
        table: DataTable[Any] = DataTable(id="resources", cursor_type="row")
        table.add_columns(*self.COLUMNS)
        yield table
        yield Static("", id="note", markup=False)

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.action_reload()

    def action_reload(self) -> None:
        # One load at a time: a resume while loading does not start a second one.
        if not any(w.group == "load" and not w.is_finished for w in self.workers):
            self.run_worker(self._load(), group="load")

    def request(self) -> Any:
        raise NotImplementedError

    def row(self, item: Any) -> list[str]:
        raise NotImplementedError

    async def _load(self) -> None:
        note = self.query_one("#note", Static)
        table: DataTable[Any] = self.query_one(DataTable)
        method = f"{self.SERVICE.capitalize()}.List"
        try:
            reply = await self.source.call(self.SERVICE, "List", self.request())
        except ServinError as exc:
            note.update(f"{self.TITLE_TEXT} are not available from this daemon: {exc} ({method}).")
            note.display = True
            self.set_status(f"{self.TITLE_TEXT.lower()}: {exc}")
            return
        items = list(getattr(reply, self.FIELD))
        table.clear()
        for item in items:
            table.add_row(*self.row(item))
        note.display = not items
        note.update(f"No {self.TITLE_TEXT.lower()}.")
        self.set_status(f"{len(items)} {self.TITLE_TEXT.lower()}")


class VolumesScreen(ResourceScreen):
    """Named volumes."""

    SERVICE = "volumes"
    TITLE_TEXT = "Volumes"
    FIELD = "volumes"
    COLUMNS = ["NAME", "DRIVER", "SIZE", "USED BY", "CREATED", "MOUNTPOINT"]

    def request(self) -> Any:
        from servin.api.servin.v1 import volumes_pb2

        return volumes_pb2.ListVolumesRequest()

    def row(self, v: Any) -> list[str]:
        size = fmt.size(v.size) if v.size >= 0 else "?"
        return [
            v.name,
            v.driver,
            size,
            str(v.ref_count),
            fmt.utc_stamp(fmt.ts_seconds(v.created)),
            v.mountpoint,
        ]


class NetworksScreen(ResourceScreen):
    """Networks."""

    SERVICE = "networks"
    TITLE_TEXT = "Networks"
    FIELD = "networks"
    COLUMNS = ["NAME", "ID", "DRIVER", "SUBNET", "BRIDGE", "ENDPOINTS"]

    def request(self) -> Any:
        from servin.api.servin.v1 import networks_pb2

        return networks_pb2.ListNetworksRequest()

    def row(self, n: Any) -> list[str]:
        subnet = ",".join(i.subnet for i in n.ipam)
        return [n.name, fmt.short_id(n.id), n.driver, subnet, n.bridge, str(len(n.endpoints))]


class PodsScreen(ResourceScreen):
    """Pods (groups of containers sharing namespaces)."""

    SERVICE = "pods"
    TITLE_TEXT = "Pods"
    FIELD = "pods"
    COLUMNS = ["NAME", "ID", "STATE", "CONTAINERS", "IP", "CREATED"]

    def request(self) -> Any:
        from servin.api.servin.v1 import pods_pb2

        return pods_pb2.ListPodsRequest()

    def row(self, p: Any) -> list[str]:
        return [
            p.name,
            fmt.short_id(p.id),
            p.state,
            str(len(p.container_ids)),
            p.ip_address,
            fmt.utc_stamp(fmt.ts_seconds(p.created)),
        ]
