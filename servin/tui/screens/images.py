"""The Images screen: the local store, with inspect, history, pull (live per-layer progress),
remove and prune."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.protobuf.json_format import MessageToDict
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static, TabbedContent, TabPane, Tree

from servin.errors import ServinError
from servin.tui import format as fmt
from servin.tui.screens.base import BaseScreen
from servin.tui.screens.detail import fill_tree
from servin.tui.screens.dialogs import ConfirmScreen, PromptScreen

if TYPE_CHECKING:
    from servin.api.servin.v1.common_pb2 import Progress
    from servin.api.servin.v1.images_pb2 import ImageProgress, ImageSummary


def image_name(img: ImageSummary) -> str:
    """The first tag in its familiar form (``busybox:1.36``), or ``<none>``."""
    return image_tags(img)[0]


def image_tags(img: ImageSummary) -> list[str]:
    """Every tag in its familiar form, as ``images`` lists them; ``["<none>"]`` untagged."""
    from servin.reference import familiar

    return [familiar(t) for t in img.repo_tags] or ["<none>"]


class ImagesScreen(BaseScreen):
    """Every image in the store."""

    BINDINGS = [
        Binding("enter", "details", "Inspect", id="images.details"),
        Binding("slash", "filter", "Filter", id="images.filter"),
        Binding("p", "pull", "Pull", id="images.pull"),
        Binding("d", "remove", "Remove", id="images.remove"),
        Binding("P", "prune", "Prune", id="images.prune"),
        Binding("y", "copy_id", "Copy ID", show=False, id="images.copy"),
        Binding("escape", "clear", "Clear", show=False, id="images.clear"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self._order: list[str] = []
        self.tag_width = 28

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="images", cursor_type="row")

    def on_mount(self) -> None:
        table: DataTable[Any] = self.query_one(DataTable)
        # The other columns are narrow and fixed: the tags get the rest (registry paths are
        # long: 127.0.0.1:5000/team/busybox:latest), at most 70 cells.
        self.tag_width = max(20, min(70, self.app.size.width - 51))
        table.add_column("REPOSITORY:TAG", key="tag", width=self.tag_width)
        table.add_column("ID", key="id", width=12)
        table.add_column("CREATED", key="created", width=10)
        table.add_column("SIZE", key="size", width=8)
        table.add_column("USED BY", key="containers", width=7)
        table.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (self.servin.read_only and action in ("remove", "pull", "prune"))

    def update_data(self, kinds: set[str]) -> None:
        if kinds & {"images", "connection", "containers"}:
            self.refresh_table()

    def visible_items(self) -> list[tuple[str, ImageSummary]]:
        """(tag, image) rows passing the filter: one per tag, as ``servin images`` lists
        them (``name=web`` or plain words match the tag and the ID)."""
        terms = [
            t.removeprefix("name=").removeprefix("reference=").lower()
            for t in self.filter_text.split()
        ]
        out = []
        for img in self.state.images:
            for tag in image_tags(img):
                hay = f"{tag} {img.id}".lower()
                if all(t in hay for t in terms):
                    out.append((tag, img))
        out.sort(key=lambda row: (row[0], row[1].id))
        return out

    def refresh_table(self) -> None:
        """Rebuild the rows; the cursor stays on its row (image and tag)."""
        table: DataTable[Any] = self.query_one(DataTable)
        rows = self.visible_items()
        order = [f"{img.id}|{tag}" for tag, img in rows]
        used: dict[str, int] = {}
        for c in self.state.containers.values():
            used[c.image_id] = used.get(c.image_id, 0) + 1
        current = self._cursor_key()
        table.clear()
        for (tag, img), key in zip(rows, order, strict=True):
            table.add_row(
                fmt.fit_middle(tag, self.tag_width),
                fmt.short_id(img.id),
                _ago(self.source.clock(), fmt.ts_seconds(img.created)),
                fmt.size(img.size),
                str(used.get(img.id, 0)),
                key=key,
            )
        self._order = order
        if current in order:
            table.move_cursor(row=order.index(current), animate=False)
        note = f" │ {self.state.images_note}" if self.state.images_note else ""
        filt = f" │ filter: {self.filter_text}" if self.filter_text else ""
        total = sum(len(image_tags(i)) for i in self.state.images)
        images = len(self.state.images)
        builds = "".join(f" │ building {b}" for b in self.state.builds.values())
        self.set_status(f"{len(rows)}/{total} shown ({images} images){filt}{note}{builds}")

    def _cursor_key(self) -> str | None:
        table: DataTable[Any] = self.query_one(DataTable)
        if not table.row_count:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:
            return None

    def current_row(self) -> tuple[str, ImageSummary] | None:
        """The (tag, image) under the cursor."""
        key = self._cursor_key()
        if key is None:
            return None
        ident, _, tag = key.partition("|")
        img = next((i for i in self.state.images if i.id == ident), None)
        return (tag, img) if img is not None else None

    def current_image(self) -> ImageSummary | None:
        """The image under the cursor."""
        row = self.current_row()
        return row[1] if row is not None else None

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
        row = self.current_row()
        if row is not None:
            self.app.push_screen(ImageDetailScreen(row[1].id, row[0]))

    def action_remove(self) -> None:
        row = self.current_row()
        if row is None:
            return
        # A tag row removes that tag (the image goes with its last tag), as `rmi TAG` does.
        name, img = row

        def go(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._remove(img.id if name == "<none>" else name, name))

        self.app.push_screen(ConfirmScreen(f"Remove image {name}?", img.id), go)

    async def _remove(self, reference: str, name: str) -> None:
        from servin.api.servin.v1 import images_pb2

        try:
            await self.source.call(
                lambda cl: cl.images.Remove(images_pb2.RemoveImageRequest(reference=reference))
            )
        except ServinError as exc:
            self.notify(f"{name}: {fmt.error_text(exc)}", severity="error", timeout=8)
            return
        self.notify(f"removed {name}", timeout=3)
        self.source.request_refresh(images=True)

    def action_pull(self) -> None:
        def go(reference: str | None) -> None:
            if reference and reference.strip():
                self.app.push_screen(PullScreen(reference.strip()))

        self.app.push_screen(
            PromptScreen("pull image: NAME[:TAG] or NAME@DIGEST", placeholder="busybox:latest"),
            go,
        )

    def action_prune(self) -> None:
        def go(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._prune(), group="actions")

        self.app.push_screen(
            ConfirmScreen("Prune dangling images?", "Removes untagged images no container uses."),
            go,
        )

    async def _prune(self) -> None:
        from servin.api.servin.v1 import images_pb2

        try:
            reply = await self.source.call(
                lambda cl: cl.images.Prune(images_pb2.PruneImagesRequest(), timeout=300)
            )
        except ServinError as exc:
            self.notify(f"prune: {fmt.error_text(exc)}", severity="error", timeout=8)
            return
        freed = fmt.size(reply.space_reclaimed) if reply.space_reclaimed else "0B"
        self.notify(f"pruned {len(reply.deleted)} images, reclaimed {freed}", timeout=5)
        self.source.request_refresh(images=True)


BAR = 15  # progress bar cells: the four columns fit 80 columns


class PullScreen(BaseScreen):
    """A pull in progress: one row per layer, updated in place; escape cancels or closes.

    Progress messages can come by the hundred per second: they update a dict, and a timer
    redraws the changed rows ten times a second.
    """

    BINDINGS = [Binding("escape", "close", "Back/cancel", id="pull.close")]

    def __init__(self, reference: str) -> None:
        super().__init__()
        self.reference = reference
        self.crumb = f"pull {reference}"
        self.pulled_layers: dict[str, Progress] = {}  # id -> the last Progress
        self.lines: list[str] = []  # status lines, in order
        self.result = ""
        self.error = ""
        self.finished = False
        self._dirty: set[str] = set()
        self._rows: list[str] = []

    def compose_body(self) -> ComposeResult:
        table: DataTable[Any] = DataTable(id="layers", cursor_type="none")
        table.add_column("LAYER", key="id", width=12)
        table.add_column("ACTION", key="action", width=17)
        table.add_column("PROGRESS", key="bar", width=BAR + 5)
        table.add_column("BYTES", key="bytes", width=17)
        yield table
        yield Static("", id="pull-log", markup=False)

    def on_mount(self) -> None:
        self.set_interval(0.1, self._redraw)
        self.run_worker(self._pull(), group="pull")
        self._redraw()

    async def _pull(self) -> None:
        from servin.api.servin.v1 import images_pb2

        try:
            request = images_pb2.PullImageRequest(reference=self.reference)
            stream = self.source.stream(lambda cl: cl.images.Pull(request))
            async for msg in stream:
                self.apply(msg)
        except ServinError as exc:
            self.error = fmt.error_text(exc)
        self.finished = True
        self.source.request_refresh(images=True)
        self._redraw()

    def apply(self, msg: ImageProgress) -> None:
        """Take one ImageProgress message into the model (drawn by the next tick)."""
        p = msg.progress
        if p.id:
            self.pulled_layers[p.id] = p
            self._dirty.add(p.id)
        elif p.message:
            self.lines.append(p.message)
        if msg.status:
            self.lines.append(msg.status)
        if msg.image_id:
            self.result = msg.image_id

    def _redraw(self) -> None:
        table: DataTable[Any] = self.query_one(DataTable)
        for ident in sorted(self._dirty, key=list(self.pulled_layers).index):
            p = self.pulled_layers[ident]
            cells = [
                fmt.short_id(ident),
                p.action,
                fmt.progress_bar(p.current, p.total, BAR, done=p.done),
                _bytes(p),
            ]
            if ident in self._rows:
                for key, value in zip(("id", "action", "bar", "bytes"), cells, strict=True):
                    table.update_cell(ident, key, value)
            else:
                table.add_row(*cells, key=ident)
                self._rows.append(ident)
        self._dirty.clear()
        self.query_one("#pull-log", Static).update("\n".join(self.lines[-6:]))
        done = sum(1 for p in self.pulled_layers.values() if p.done)
        if self.error:
            state = f"failed: {self.error}"
        elif self.finished:
            state = f"done: {fmt.short_id(self.result)}" if self.result else "done"
        else:
            state = "pulling (escape cancels)"
        self.set_status(
            f"pull {self.reference} │ {done}/{len(self.pulled_layers)} layers │ {state}"
        )

    def action_close(self) -> None:
        if not self.finished:
            self.workers.cancel_group(self, "pull")
            self.notify(f"pull of {self.reference} cancelled", timeout=3)
        self.app.pop_screen()


def _ago(now: float, then: float) -> str:
    return f"{fmt.short_duration(now - then)} ago" if then else "-"


def _bytes(p: Progress) -> str:
    if p.total:
        return f"{fmt.size(p.current)} / {fmt.size(p.total)}"
    return fmt.size(p.current) if p.current else ""


class ImageDetailScreen(BaseScreen):
    """One image: inspect as a tree, and its history."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="image.back")]

    def __init__(self, image_id: str, name: str) -> None:
        super().__init__()
        self.image_id = image_id
        self.image_name = name
        self.crumb = name

    def compose_body(self) -> ComposeResult:
        with TabbedContent():
            with TabPane("Inspect", id="inspect"):
                yield Tree(self.image_name, id="tree")
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
                lambda cl: cl.images.Inspect(
                    images_pb2.InspectImageRequest(reference=self.image_id)
                )
            )
            history = await self.source.call(
                lambda cl: cl.images.History(
                    images_pb2.ImageHistoryRequest(reference=self.image_id)
                )
            )
        except ServinError as exc:
            self.set_status(f"{self.image_name}: {exc}")
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
        self.set_status(f"image {self.image_name} {fmt.short_id(self.image_id)}")
