"""Volumes and Networks (and the base of the Pods screen): list, inspect, create, remove,
prune.

These change rarely and have no stream of their own: they load on entering the screen, with
``r``, after an action, and when the shared events stream mentions their kind. A daemon that
does not implement a call gets a calm "not supported by this daemon", never a crash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

from google.protobuf.json_format import MessageToDict
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static, Tree

from servin.errors import InvalidArgument, ServinError
from servin.tui import format as fmt
from servin.tui.screens.base import BaseScreen
from servin.tui.screens.detail import fill_tree
from servin.tui.screens.dialogs import ConfirmScreen, PromptScreen

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from servin.tui.source import DaemonClient

# One call to the daemon, made with the live client when it runs (Source.call).
Call = Callable[["DaemonClient"], Awaitable[Any]]

MUTATING = {"create", "remove", "prune"}
ACTION_TIMEOUT = 120  # seconds for a create, remove or prune
WIDE = 140


def parse_words(line: str, flags: tuple[str, ...] = ()) -> tuple[str, dict[str, list[str]]]:
    """``NAME key=value... flag`` -> (NAME, {key: [values]}); flags get ``["1"]``.

    The create prompts' little language: the first word without ``=`` is the name.
    """
    import shlex

    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise InvalidArgument(f"cannot parse {line!r}: {exc}") from None
    name = ""
    opts: dict[str, list[str]] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if sep:
            opts.setdefault(key, []).append(value)
        elif word in flags:
            opts[word] = ["1"]
        elif not name:
            name = word
        else:
            raise InvalidArgument(f"unexpected {word!r}: give one name, then key=value words")
    return name, opts


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"bad {what} {item!r}: use {what}=KEY=VALUE")
        out[key] = value if sep else ""
    return out


class ResourceScreen(BaseScreen):
    """A list of one kind of object, fetched with its service's ``List``."""

    SERVICE: ClassVar[str] = ""  # the servin.v1 service, as messages name it
    KIND: ClassVar[str] = ""  # the event type that means "reload" (volume, network, pod)
    TITLE_TEXT: ClassVar[str] = ""
    # header, width at 80 columns, width from WIDE columns on, the narrowest terminal showing it
    COLUMNS: ClassVar[list[tuple[str, int, int, int]]] = []
    FIELD: ClassVar[str] = ""
    CREATE_HINT: ClassVar[str] = ""
    FILTER_HINT: ClassVar[str] = "words"

    BINDINGS = [
        Binding("enter", "inspect", "Inspect", id="resources.inspect"),
        Binding("c", "create", "Create", id="resources.create"),
        Binding("d", "remove", "Remove", id="resources.remove"),
        Binding("P", "prune", "Prune", id="resources.prune"),
        Binding("slash", "filter", "Filter", id="resources.filter"),
        Binding("y", "copy_id", "Copy", show=False, id="resources.copy"),
        Binding("r", "reload", "Reload", id="resources.reload"),
        Binding("escape", "clear", "Clear", show=False, id="resources.clear"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.items: list[Any] = []
        self.filter_text = ""
        self.error = ""
        self._keys: list[str] = []
        self._shown_columns: list[int] = []
        self._specs: list[tuple[str, int, int, int]] | None = None

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="resources", cursor_type="row")
        yield Static("", id="note", markup=False)

    def on_mount(self) -> None:
        self._lay_out_columns()
        self.query_one(DataTable).focus()

    def column_specs(self) -> list[tuple[str, int, int, int]]:
        """The columns for the items loaded (``row`` gives one cell per column)."""
        return self.COLUMNS

    def _lay_out_columns(self) -> None:
        """(Re)make the table's columns when the specs changed: only the columns the
        terminal has room for (80 columns keep the essentials), at fixed widths."""
        specs = self.column_specs()
        if specs is self._specs:
            return
        self._specs = specs
        table: DataTable[Any] = self.query_one(DataTable)
        table.clear(columns=True)
        width = self.app.size.width
        self._shown_columns = [
            i for i, (_, _, _, min_width) in enumerate(specs) if width >= min_width
        ]
        for i in self._shown_columns:
            label, narrow, wide, _ = specs[i]
            table.add_column(label, width=wide if width >= WIDE else narrow)

    def cells(self, item: Any) -> list[Any]:
        """The shown columns' cells of an item."""
        row = self.row(item)
        return [row[i] for i in self._shown_columns]

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.action_reload()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MUTATING:
            return not self.servin.read_only and bool(self.CREATE_HINT or action != "create")
        return True

    def update_data(self, kinds: set[str]) -> None:
        if f"{self.KIND}s" in kinds:
            self.action_reload()

    def action_reload(self) -> None:
        # One load at a time: a resume while loading does not start a second one.
        if not any(w.group == "load" and not w.is_finished for w in self.workers):
            self.run_worker(self._load(), group="load")

    # ---- what subclasses say -------------------------------------------------------------

    def list_call(self, cl: DaemonClient) -> Awaitable[Any]:
        """The List call (its reply holds the items in ``FIELD``)."""
        raise NotImplementedError

    def row(self, item: Any) -> list[Any]:
        """The table cells of one item."""
        raise NotImplementedError

    def key(self, item: Any) -> str:
        """What identifies an item in calls (a name or an ID)."""
        return str(item.name)

    def label(self, item: Any) -> str:
        """How an item is named to the user."""
        return str(item.name)

    def inspect_call(self, key: str) -> Callable[[DaemonClient], Awaitable[Message]]:
        """The Inspect call for an item."""
        raise NotImplementedError

    def remove_call(self, key: str) -> Call:
        """The Remove call for an item."""
        raise NotImplementedError

    def prune_call(self) -> Call:
        """The Prune call."""
        raise NotImplementedError

    def prune_text(self, reply: Any) -> str:
        """One line saying what a prune did."""
        return f"pruned {len(reply.deleted)} {self.TITLE_TEXT.lower()}"

    def create_call(self, line: str) -> Call:
        """The Create call from the create prompt's line (InvalidArgument when bad)."""
        raise NotImplementedError

    # ---- the list ------------------------------------------------------------------------

    async def _load(self) -> None:
        try:
            reply = await self.source.call(self.list_call)
        except ServinError as exc:
            self.error = fmt.error_text(exc)
            self.items = []
            self._show()
            return
        self.error = ""
        self.items = list(getattr(reply, self.FIELD))
        self._show()

    def visible_items(self) -> list[Any]:
        """Items whose cells contain every word of the filter."""
        words = self.filter_text.lower().split()
        out = []
        for item in self.items:
            hay = " ".join(str(c) for c in self.row(item)).lower()
            if all(w in hay for w in words):
                out.append(item)
        return out

    def _show(self) -> None:
        note = self.query_one("#note", Static)
        table: DataTable[Any] = self.query_one(DataTable)
        current = self._cursor_key()
        self._lay_out_columns()
        table.clear()
        items = self.visible_items()
        self._keys = [self.key(i) for i in items]
        for item, key in zip(items, self._keys, strict=True):
            table.add_row(*self.cells(item), key=key)
        if current in self._keys:
            table.move_cursor(row=self._keys.index(current), animate=False)
        name = self.TITLE_TEXT.lower()
        if self.error:
            note.update(f"{self.TITLE_TEXT}: {self.error} ({self.SERVICE}.List).")
            self.set_status(f"{name}: {self.error}")
        else:
            note.update(f"No {name}." if not self.items else "")
            filt = f" │ filter: {self.filter_text}" if self.filter_text else ""
            self.set_status(f"{len(items)}/{len(self.items)} {name}{filt}")
        note.display = bool(self.error or not self.items)

    def _cursor_key(self) -> str | None:
        table: DataTable[Any] = self.query_one(DataTable)
        if not table.row_count:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:  # the cursor sits past the last row while rows are replaced
            return None

    def current(self) -> Any:
        """The item under the cursor (None on an empty table)."""
        key = self._cursor_key()
        return next((i for i in self.items if self.key(i) == key), None)

    def apply_filter(self, text: str) -> None:
        """Show items whose cells contain every word of ``text``."""
        self.filter_text = text.strip()
        self._show()

    def action_filter(self) -> None:
        self.app.push_screen(
            PromptScreen(f"filter {self.TITLE_TEXT.lower()}: {self.FILTER_HINT}",
                         self.filter_text),
            lambda t: self.apply_filter(t) if t is not None else None,
        )

    def action_clear(self) -> None:
        self.apply_filter("")

    # ---- actions -------------------------------------------------------------------------

    def action_copy_id(self) -> None:
        item = self.current()
        if item is not None:
            self.app.copy_to_clipboard(self.key(item))
            self.notify(f"copied {self.key(item)} (OSC 52)", timeout=3)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_inspect()

    def action_inspect(self) -> None:
        item = self.current()
        if item is not None:
            key = self.key(item)
            self.app.push_screen(
                InspectScreen(self.SERVICE, self.inspect_call(key), self.label(item))
            )

    def action_create(self) -> None:
        def done(line: str | None) -> None:
            if not line:
                return
            try:
                call = self.create_call(line)
            except ServinError as exc:
                self.notify(str(exc), severity="error", timeout=8)
                return
            self.run_worker(self._call("Create", call, "created"), group="actions")

        self.app.push_screen(PromptScreen(self.CREATE_HINT, placeholder="name key=value ..."), done)

    def action_remove(self) -> None:
        item = self.current()
        if item is None:
            return
        label = self.label(item)
        call = self.remove_call(self.key(item))

        def go(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._call("Remove", call, f"removed {label}"), group="actions")

        kind = self.TITLE_TEXT.lower().removesuffix("s")
        self.app.push_screen(ConfirmScreen(f"Remove {kind} {label}?", self.key(item)), go)

    def action_prune(self) -> None:
        def go(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._call("Prune", self.prune_call(), ""), group="actions")

        self.app.push_screen(
            ConfirmScreen(f"Prune {self.TITLE_TEXT.lower()}?", self.PRUNE_DETAIL), go
        )

    PRUNE_DETAIL: ClassVar[str] = ""

    async def _call(self, method: str, call: Call, done: str) -> None:
        """Run an action's call; ``method`` (Create, Remove, Prune) says how to report it."""
        try:
            reply = await self.source.call(call)
        except ServinError as exc:
            self.notify(f"{method.lower()}: {fmt.error_text(exc)}", severity="error", timeout=8)
            return
        if method == "Create":
            done = f"created {getattr(reply, 'name', '') or self.TITLE_TEXT.lower()}"
        elif method == "Prune":
            done = self.prune_text(reply)
        self.notify(done, timeout=4)
        self.action_reload()


class InspectScreen(BaseScreen):
    """One object's Inspect answer as a foldable tree."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="inspect.back"),
        Binding("y", "copy", "Copy name", id="inspect.copy"),
    ]

    def __init__(
        self, service: str, call: Callable[[DaemonClient], Awaitable[Message]], label: str
    ) -> None:
        super().__init__()
        self.service = service
        self.call = call
        self.label = label
        self.crumb = label

    def compose_body(self) -> ComposeResult:
        yield Tree(self.label, id="tree")

    def on_mount(self) -> None:
        self.query_one(Tree).focus()
        self.run_worker(self._load(), group="load")

    async def _load(self) -> None:
        try:
            reply = await self.source.call(self.call)
        except ServinError as exc:
            self.set_status(f"{self.label}: {fmt.error_text(exc)}")
            return
        tree: Tree[Any] = self.query_one(Tree)
        fill_tree(tree.root, MessageToDict(reply, preserving_proto_field_name=True), 2)
        tree.root.expand()
        self.set_status(f"{self.service.removesuffix('s')} {self.label}")

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.label)
        self.notify(f"copied {self.label} (OSC 52)", timeout=3)


class VolumesScreen(ResourceScreen):
    """Named volumes."""

    SERVICE = "volumes"
    KIND = "volume"
    TITLE_TEXT = "Volumes"
    FIELD = "volumes"
    COLUMNS = [
        ("NAME", 24, 40, 0),
        ("DRIVER", 7, 8, 0),
        ("SIZE", 8, 8, 0),
        ("USED BY", 7, 7, 0),
        ("CREATED", 20, 20, 0),
        ("MOUNTPOINT", 40, 60, 120),
    ]
    CREATE_HINT = "create volume: NAME [driver=local] [opt=type=tmpfs] [label=KEY=VALUE]"
    PRUNE_DETAIL = "Removes every volume no container uses (named ones too)."

    def list_call(self, cl: DaemonClient) -> Awaitable[Any]:
        from servin.api.servin.v1 import volumes_pb2

        return cl.volumes.List(volumes_pb2.ListVolumesRequest())

    def row(self, v: Any) -> list[Any]:
        size = fmt.size(v.size) if v.size >= 0 else "?"
        return [
            v.name,
            v.driver,
            size,
            str(v.ref_count),
            fmt.utc_stamp(fmt.ts_seconds(v.created)),
            v.mountpoint,
        ]

    def inspect_call(self, key: str) -> Callable[[DaemonClient], Awaitable[Message]]:
        from servin.api.servin.v1 import volumes_pb2

        request = volumes_pb2.InspectVolumeRequest(name=key)
        return lambda cl: cl.volumes.Inspect(request)

    def remove_call(self, key: str) -> Call:
        from servin.api.servin.v1 import volumes_pb2

        request = volumes_pb2.RemoveVolumeRequest(name=key)
        return lambda cl: cl.volumes.Remove(request, timeout=ACTION_TIMEOUT)

    def prune_call(self) -> Call:
        from servin.api.servin.v1 import volumes_pb2

        request = volumes_pb2.PruneVolumesRequest(all=True)
        return lambda cl: cl.volumes.Prune(request, timeout=ACTION_TIMEOUT)

    def prune_text(self, reply: Any) -> str:
        return (
            f"pruned {len(reply.deleted)} volumes, reclaimed "
            f"{fmt.size(reply.space_reclaimed) if reply.space_reclaimed else '0B'}"
        )

    def create_call(self, line: str) -> Call:
        from servin.api.servin.v1 import volumes_pb2

        name, opts = parse_words(line)
        unknown = set(opts) - {"driver", "opt", "label"}
        if unknown:
            raise InvalidArgument(f"unknown option {sorted(unknown)[0]!r}: driver=, opt=, label=")
        request = volumes_pb2.CreateVolumeRequest(
            name=name,
            driver=(opts.get("driver") or [""])[-1],
            options=_pairs(opts.get("opt", []), "opt"),
            labels=_pairs(opts.get("label", []), "label"),
        )
        return lambda cl: cl.volumes.Create(request, timeout=ACTION_TIMEOUT)


class NetworksScreen(ResourceScreen):
    """Networks."""

    SERVICE = "networks"
    KIND = "network"
    TITLE_TEXT = "Networks"
    FIELD = "networks"
    COLUMNS = [
        ("NAME", 14, 24, 0),
        ("ID", 12, 12, 0),
        ("DRIVER", 7, 8, 0),
        ("SUBNET", 18, 20, 0),
        ("BRIDGE", 15, 16, 0),
        ("ENDPOINTS", 9, 9, 100),
        ("INTERNAL", 8, 8, 120),
    ]
    CREATE_HINT = (
        "create network: NAME [subnet=10.89.0.0/24] [gateway=10.89.0.1] [internal] "
        "[label=KEY=VALUE]"
    )
    PRUNE_DETAIL = "Removes every network no container uses (the defaults stay)."

    def list_call(self, cl: DaemonClient) -> Awaitable[Any]:
        from servin.api.servin.v1 import networks_pb2

        return cl.networks.List(networks_pb2.ListNetworksRequest())

    def row(self, n: Any) -> list[Any]:
        subnet = ",".join(i.subnet for i in n.ipam)
        return [
            n.name,
            fmt.short_id(n.id),
            n.driver,
            subnet,
            n.bridge,
            str(len(n.endpoints)),
            "yes" if n.internal else "",
        ]

    def key(self, item: Any) -> str:
        return str(item.id)

    def inspect_call(self, key: str) -> Callable[[DaemonClient], Awaitable[Message]]:
        from servin.api.servin.v1 import networks_pb2

        request = networks_pb2.InspectNetworkRequest(id=key)
        return lambda cl: cl.networks.Inspect(request)

    def remove_call(self, key: str) -> Call:
        from servin.api.servin.v1 import networks_pb2

        request = networks_pb2.RemoveNetworkRequest(id=key)
        return lambda cl: cl.networks.Remove(request, timeout=ACTION_TIMEOUT)

    def prune_call(self) -> Call:
        from servin.api.servin.v1 import networks_pb2

        request = networks_pb2.PruneNetworksRequest()
        return lambda cl: cl.networks.Prune(request, timeout=ACTION_TIMEOUT)

    def create_call(self, line: str) -> Call:
        from servin.api.servin.v1 import networks_pb2

        name, opts = parse_words(line, flags=("internal",))
        if not name:
            raise InvalidArgument("a network needs a name")
        unknown = set(opts) - {"driver", "subnet", "gateway", "internal", "label", "opt"}
        if unknown:
            raise InvalidArgument(
                f"unknown option {sorted(unknown)[0]!r}: driver=, subnet=, gateway=, internal, "
                "label=, opt="
            )
        subnets, gateways = opts.get("subnet", []), opts.get("gateway", [])
        if len(gateways) > len(subnets):
            raise InvalidArgument("gateway= needs a subnet=")
        ipam = [
            networks_pb2.IPAMConfig(subnet=s, gateway=gateways[i] if i < len(gateways) else "")
            for i, s in enumerate(subnets)
        ]
        request = networks_pb2.CreateNetworkRequest(
            name=name,
            driver=(opts.get("driver") or [""])[-1],
            ipam=ipam,
            internal="internal" in opts,
            labels=_pairs(opts.get("label", []), "label"),
            options=_pairs(opts.get("opt", []), "opt"),
        )
        return lambda cl: cl.networks.Create(request, timeout=ACTION_TIMEOUT)
