"""The Images screen: the local store, with inspect, history and remove."""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, TabbedContent, TabPane, Tree

from servin.errors import ServinError
from servin.tui import format as fmt
from servin.tui.screens.base import BaseScreen
from servin.tui.screens.detail import fill_tree
from servin.tui.screens.dialogs import ConfirmScreen, PromptScreen


def image_name(img: Any) -> str:
    """The first tag, or ``<none>``."""
    return img.repo_tags[0] if img.repo_tags else "<none>"


class ImagesScreen(BaseScreen):
    """Every image in the store."""

    BINDINGS = [
        Binding("enter", "details", "Inspect", id="images.details"),
        Binding("slash", "filter", "Filter", id="images.filter"),
        Binding("d", "remove", "Remove", id="images.remove"),
        Binding("y", "copy_id", "Copy ID", show=False, id="images.copy"),
        Binding("escape", "clear", "Clear", show=False, id="images.clear"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self._order: list[str] = []

    def compose_body(self) -> ComposeResult:
        table: DataTable[Any] = DataTable(id="images", cursor_type="row")
        table.add_column("REPOSITORY:TAG", key="tag", width=30)
        table.add_column("ID", key="id", width=12)
        table.add_column("CREATED", key="created", width=20)
        table.add_column("SIZE", key="size", width=8)
        table.add_column("USED BY", key="containers", width=7)
        yield table

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (self.servin.read_only and action == "remove")

    def update_data(self, kinds: set[str]) -> None:
        if kinds & {"images", "connection", "containers"}:
            self.refresh_table()

    def visible(self) -> list[Any]:
        """Images passing the filter (``name=web`` or plain text match tags and ID)."""
        terms = [
            t.removeprefix("name=").removeprefix("reference=").lower()
            for t in self.filter_text.split()
        ]
        out = []
        for img in self.state.images:
            hay = " ".join([*img.repo_tags, img.id]).lower()
            if all(t in hay for t in terms):
                out.append(img)
        out.sort(key=lambda i: (image_name(i), i.id))
        return out

    def refresh_table(self) -> None:
        """Rebuild the rows when the set changed; the cursor stays on its image."""
        table: DataTable[Any] = self.query_one(DataTable)
        items = self.visible()
        order = [i.id + "|" + image_name(i) for i in items]
        used: dict[str, int] = {}
        for c in self.state.containers.values():
            used[c.image_id] = used.get(c.image_id, 0) + 1
        current = self._cursor_key()
        table.clear()
        for img, key in zip(items, order, strict=True):
            table.add_row(
                image_name(img),
                fmt.short_id(img.id),
                fmt.utc_stamp(fmt.ts_seconds(img.created)),
                fmt.size(img.size),
                str(used.get(img.id, 0)),
                key=key,
            )
        self._order = order
        if current in order:
            table.move_cursor(row=order.index(current), animate=False)
        note = f" │ {self.state.images_note}" if self.state.images_note else ""
        filt = f" │ filter: {self.filter_text}" if self.filter_text else ""
        self.set_status(f"{len(items)}/{len(self.state.images)} images{filt}{note}")

    def _cursor_key(self) -> str | None:
        table: DataTable[Any] = self.query_one(DataTable)
        if not table.row_count:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:
            return None

    def current_image(self) -> Any:
        """The image under the cursor."""
        key = self._cursor_key()
        if key is None:
            return None
        ident = key.split("|", 1)[0]
        return next((i for i in self.state.images if i.id == ident), None)

    def apply_filter(self, text: str) -> None:
        """Show images whose tags or ID contain every word of ``text``."""
        self.filter_text = text.strip()
        self.refresh_table()

    def action_filter(self) -> None:
        self.app.push_screen(
            PromptScreen("filter images: words in the tag or ID (name=web)", self.filter_text),
            lambda t: self.apply_filter(t) if t is not None else None,
        )

    def action_clear(self) -> None:
        self.apply_filter("")

    def action_copy_id(self) -> None:
        img = self.current_image()
        if img is not None:
            self.app.copy_to_clipboard(img.id)
            self.notify("copied the image ID (OSC 52)", timeout=3)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_details()

    def action_details(self) -> None:
        img = self.current_image()
        if img is not None:
            self.app.push_screen(ImageDetailScreen(img.id, image_name(img)))

    def action_remove(self) -> None:
        img = self.current_image()
        if img is None:
            return
        name = image_name(img)

        def go(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._remove(img.id if name == "<none>" else name, name))

        self.app.push_screen(ConfirmScreen(f"Remove image {name}?", img.id), go)

    async def _remove(self, reference: str, name: str) -> None:
        from servin.api.servin.v1 import images_pb2

        try:
            await self.source.call(
                "images", "Remove", images_pb2.RemoveImageRequest(reference=reference)
            )
        except ServinError as exc:
            self.notify(f"{name}: {exc}", severity="error", timeout=8)
            return
        self.notify(f"removed {name}", timeout=3)
        self.source._images_wanted = True
        self.source.request_refresh()


class ImageDetailScreen(BaseScreen):
    """One image: inspect as a tree, and its history."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="image.back")]

    def __init__(self, image_id: str, name: str) -> None:
        super().__init__()
        self.image_id = image_id
        self.name = name

    def compose_body(self) -> ComposeResult:
        with TabbedContent():
            with TabPane("Inspect", id="inspect"):
                yield Tree(self.name, id="tree")
            with TabPane("History", id="history"):
                yield DataTable(id="history-table", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#history-table", DataTable).add_columns(
            "CREATED", "CREATED BY", "SIZE", "COMMENT"
        )
        self.run_worker(self._load())

    async def _load(self) -> None:
        from servin.api.servin.v1 import images_pb2

        try:
            detail = await self.source.call(
                "images", "Inspect", images_pb2.InspectImageRequest(reference=self.image_id)
            )
            history = await self.source.call(
                "images", "History", images_pb2.ImageHistoryRequest(reference=self.image_id)
            )
        except ServinError as exc:
            self.set_status(f"{self.name}: {exc}")
            return
        tree: Tree[Any] = self.query_one("#tree", Tree)
        data = MessageToDict(detail, preserving_proto_field_name=True)
        data.pop("raw_config", None)  # the same facts as config, as base64
        fill_tree(tree.root, data)
        tree.root.expand()
        table: DataTable[Any] = self.query_one("#history-table", DataTable)
        for h in history.entries:
            table.add_row(
                fmt.utc_stamp(fmt.ts_seconds(h.created)),
                h.created_by[:60],
                fmt.size(h.size) if not h.empty_layer else "0B",
                h.comment,
            )
        self.set_status(f"image {self.name} {fmt.short_id(self.image_id)}")
