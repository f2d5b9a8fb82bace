"""The Servin console: a Textual app over one ``Source``.

Screens are Textual modes (1-7 switch between them, each keeping its own stack: Containers
-> details -> logs survives a look at Images). The app owns the source, relays its coalesced
changes to the active screen, keeps the title (host and connection) current, and runs the
``:`` command line, the palette, the help screen and the shell (``e``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from servin.errors import ServinError
from servin.tui import format as fmt
from servin.tui.chrome import HeaderFacts
from servin.tui.commands import SCREENS, ServinCommands, parse_command, suggestions
from servin.tui.config import THEMES
from servin.tui.screens.base import BaseScreen
from servin.tui.screens.containers import ContainersScreen
from servin.tui.screens.detail import ContainerDetailScreen
from servin.tui.screens.dialogs import ConfirmScreen, HelpScreen, PromptScreen
from servin.tui.screens.events import EventsScreen
from servin.tui.screens.images import ImageDetailScreen, ImagesScreen, PullScreen
from servin.tui.screens.logs import LogsScreen, MergedLogsScreen
from servin.tui.screens.metrics import MetricsScreen
from servin.tui.screens.pods import PodsScreen
from servin.tui.screens.resources import NetworksScreen, VolumesScreen
from servin.tui.screens.system import SystemScreen
from servin.tui.source import Source

# A shell that exists in nearly every image; bash when the image has it.
SHELL_PROBE = "command -v bash >/dev/null 2>&1 && exec bash || exec sh"
CLEAR_SCREEN = "\x1b[H\x1b[2J\x1b[3J"  # home, erase the screen and the scrollback


class ServinApp(App[None]):
    """The console."""

    CSS_PATH = "servin.tcss"
    TITLE = "Servin"
    COMMANDS: ClassVar[set[Any]] = {*App.COMMANDS, ServinCommands}
    MODES: ClassVar[dict[str, Any]] = {
        "containers": ContainersScreen,
        "images": ImagesScreen,
        "volumes": VolumesScreen,
        "networks": NetworksScreen,
        "pods": PodsScreen,
        "logs": MergedLogsScreen,
        "metrics": MetricsScreen,
        "events": EventsScreen,
        "system": SystemScreen,
    }
    DEFAULT_MODE = "containers"
    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(str(i + 1), f"show('{name}')", name.capitalize(), show=False, id=f"app.{name}")
            for i, name in enumerate(SCREENS)
        ),
        Binding("colon", "command_line", "Command", id="app.command"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("ctrl+t", "toggle_theme", "Theme", show=False, id="app.theme"),
        Binding("ctrl+r", "reconnect", "Reconnect", show=False, id="app.reconnect"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(
        self,
        source: Source,
        *,
        read_only: bool = False,
        theme: str = "dark",
        keys: dict[str, str] | None = None,
        shell_command: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.read_only = read_only
        self.keys = dict(keys or {})
        self.selected_containers: set[str] = set()  # the Containers screen's multi-selection
        self._shell_command = shell_command
        for t in THEMES.values():
            self.register_theme(t)
        self.theme = THEMES[theme].name

    # ---- life ------------------------------------------------------------------------

    def on_mount(self) -> None:
        if self.keys:
            self.set_keymap(self.keys)
        self.source.subscribe(self._on_source_change)
        self.source.start()

    async def on_unmount(self) -> None:
        await self.source.stop()

    def _on_source_change(self, kinds: set[str]) -> None:
        top = self.screen
        screen = top if isinstance(top, BaseScreen) and top.is_mounted else None
        if screen is None:
            # A dialog is on top: the screen under it still shows its header and data.
            screen = next(
                (s for s in reversed(self.screen_stack) if isinstance(s, BaseScreen)), None
            )
            if screen is None or not screen.is_mounted:
                return
        if kinds & {"connection", "containers", "info"}:
            screen.refresh_header()
        screen.update_data(kinds)

    def header_facts(self) -> HeaderFacts:
        """What the header's second line says now."""
        st = self.source.state
        alarm = False
        if st.connected:
            running = sum(1 for c in st.containers.values() if c.state == "running")
            status = f"{running}/{len(st.containers)} running"
        elif st.ever_connected:
            status = "DISCONNECTED (last known data shown, reconnecting)"
            alarm = True
        elif st.error:
            status = "disconnected (retrying)"
            alarm = True
        else:
            status = "connecting"
        facts = HeaderFacts(
            where=f"{st.context} ({st.host})" if st.context else st.host,
            status=status,
            alarm=alarm,
            notes="read-only" if self.read_only else "",
        )
        if st.version is not None:
            facts.version = f"servin {st.version.version}"
        info = st.info
        if info is not None:
            cpus = f"{info.ncpu} CPU" if info.ncpu else "CPU"
            if st.host_cpu_percent is not None:
                facts.cpu = f"{cpus} {st.host_cpu_percent:.0f}%"
            elif info.load_average:
                facts.cpu = f"{cpus} load {info.load_average[0]:.2f}"
            if info.mem_total:
                used = info.mem_total - info.mem_available if info.mem_available else 0
                facts.memory = (
                    f"mem {fmt.size(used)}/{fmt.size(info.mem_total)}"
                    if used
                    else f"mem {fmt.size(info.mem_total)}"
                )
        return facts

    # ---- navigation ------------------------------------------------------------------

    def action_show(self, name: str) -> None:
        """Switch to a top-level screen."""
        self.switch_mode(name)

    def action_command_line(self) -> None:
        self.push_screen(
            PromptScreen(
                ":containers :images name=web :logs NAME :sort cpu :theme light :help",
                suggestions=suggestions(),
                placeholder="command",
            ),
            lambda line: self.run_command(line) if line else None,
        )

    def run_command(self, line: str) -> None:
        """Run one command line (``images name=web``, ``logs web-1``, ``sort cpu``...)."""
        try:
            cmd = parse_command(line)
            self._run(cmd.verb, cmd.args)
        except ServinError as exc:
            self.notify(str(exc), severity="error")

    def _run(self, verb: str, args: list[str]) -> None:
        from servin.errors import InvalidArgument

        if verb == "quit":
            self.exit()
        elif verb == "help":
            self.action_help()
        elif verb == "theme":
            if not args or args[0] not in THEMES:
                raise InvalidArgument("theme dark|light")
            self.theme = THEMES[args[0]].name
        elif verb == "logs" and args:
            self._open_logs(args)
        elif verb == "pull":
            if len(args) != 1 or self.read_only:
                raise InvalidArgument("pull IMAGE (not in read-only mode)")
            self.switch_mode("images")
            self.push_screen(PullScreen(args[0]))
        elif verb in SCREENS:
            self.switch_mode(verb)
            if args:
                self.call_after_refresh(self._filter_screen, " ".join(args))
        elif verb == "filter":
            self._filter_screen(" ".join(args))
        elif verb == "sort":
            if not args:
                raise InvalidArgument("sort COLUMN: name, image, state, health, uptime, cpu, mem")
            screen = self.screen
            if isinstance(screen, MetricsScreen):
                screen.set_sort(args[0])
                return
            self.switch_mode("containers")
            screen = self.screen
            if isinstance(screen, ContainersScreen):
                screen.set_sort(args[0], reverse=(args[1] == "desc") if len(args) > 1 else None)

    def _open_logs(self, args: list[str]) -> None:
        """Push a Logs screen on the named containers (merged when several)."""
        from servin.errors import NotFound

        found = []
        for ref in args:
            match = next(
                (
                    c
                    for c in self.source.state.containers.values()
                    if ref in (c.name, c.id) or c.id.startswith(ref)
                ),
                None,
            )
            if match is None:
                raise NotFound(f"no container {ref!r}")
            found.append((match.id, match.name))
        self.push_screen(LogsScreen(found))

    def _filter_screen(self, text: str) -> None:
        screen = self.screen
        apply = getattr(screen, "apply_filter", None)
        if apply is not None:
            apply(text)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.help_text()))

    def action_toggle_theme(self) -> None:
        self.theme = (
            THEMES["light"].name if self.theme == THEMES["dark"].name else THEMES["dark"].name
        )

    def action_reconnect(self) -> None:
        self.source.reconnect_now()

    def help_text(self) -> str:
        """Every binding by screen, with the key in effect (tui.toml's [keys] applied)."""
        from rich.markup import escape

        groups: list[tuple[str, list[BindingType]]] = [
            ("Everywhere", self.BINDINGS),
            ("Containers", ContainersScreen.BINDINGS),
            ("Container details", ContainerDetailScreen.BINDINGS),
            ("Logs", LogsScreen.BINDINGS),
            ("Metrics", MetricsScreen.BINDINGS),
            ("Images", ImagesScreen.BINDINGS),
            ("Image details", ImageDetailScreen.BINDINGS),
            ("Image pull", PullScreen.BINDINGS),
            ("Events", EventsScreen.BINDINGS),
            ("Volumes, networks", VolumesScreen.BINDINGS),
            ("Pods", PodsScreen.BINDINGS),
            ("System", SystemScreen.BINDINGS),
            ("Confirm dialog", ConfirmScreen.BINDINGS),
        ]
        lines = ["[b]Servin console keys[/b]  (escape closes; ctrl+p opens the palette)", ""]
        for title, bindings in groups:
            lines.append(f"[b]{title}[/b]")
            for b in bindings:
                if not isinstance(b, Binding):
                    continue
                key = self.keys.get(b.id or "", b.key)
                shown = ", ".join(
                    self.get_key_display(Binding(k.strip(), "")) for k in key.split(",")
                )
                if self.read_only and b.id and b.id.split(".")[-1] in _MUTATING_IDS:
                    continue
                lines.append(f"  {escape(shown):<16} {escape(b.description):<14} [dim]{b.id}[/]")
            lines.append("")
        lines.append('Rebind keys in ~/.config/servin/tui.toml: [keys] "containers.stop" = "x"')
        return "\n".join(lines)

    # ---- shell -----------------------------------------------------------------------

    def exec_shell(self, container_id: str) -> None:
        """Suspend the console and run a shell in the container (``servin exec -it``)."""
        if self.read_only:
            return
        cmd = self._shell_command or [
            sys.executable,
            "-m",
            "servin",
            "-H",
            self.source.state.host,
            "exec",
            "-it",
            container_id,
            "sh",
            "-c",
            SHELL_PROBE,
        ]
        try:
            with self.suspend():
                # The shell starts on a cleared screen, not under what the terminal showed
                # before the console (leaving the alternate screen brings that back).
                sys.stdout.write(CLEAR_SCREEN)
                sys.stdout.flush()
                rc = subprocess.call(cmd, cwd=Path.cwd())
        except Exception as exc:  # SuspendNotSupported (no terminal), exec missing, ...
            self.notify(f"cannot open a shell: {exc}", severity="error")
            return
        if rc not in (0, 130):
            self.notify(f"the shell ended with status {rc}", severity="warning")
        self.refresh()


_MUTATING_IDS = {
    "start",
    "stop",
    "restart",
    "kill",
    "remove",
    "pause",
    "exec",
    "pull",
    "prune",
    "create",
}
