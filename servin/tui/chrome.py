"""The console's frame: a two-line header and a footer of key hints.

The header says where you are and what you look at, as k9s's does: a tab bar of the nine
screens with the current one highlighted (and, when a screen is pushed on it, the trail:
``Containers > web-1 > logs``), then the context and host, the daemon's version, the host's
CPU and memory, and containers running/total. The footer lists the current keys and always
keeps ``? Help  q Quit`` at its right end, dropping other hints before those.

Both are plain line-drawn widgets fed by the app (``ServinHeader.set``); the text is built by
pure functions (``tab_bar``, ``info_line``) so narrow terminals are handled in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.widget import Widget

from servin.tui.commands import SCREENS

# Shorter tab labels for narrow terminals (the current screen keeps its full name).
SHORT = {
    "containers": "Cont",
    "images": "Img",
    "volumes": "Vol",
    "networks": "Net",
    "pods": "Pods",
    "logs": "Logs",
    "metrics": "Top",
    "events": "Evt",
    "system": "Sys",
}
PINNED = ("app.help", "app.quit")  # footer hints that are never dropped


def tab_bar(current: str, trail: Sequence[str], width: int) -> list[tuple[str, bool]]:
    """The tab labels (label, is-current) that fit in ``width`` cells: full names, else
    short ones, else numbers; the current tab is always named, with its trail."""
    here = " > ".join([current.capitalize(), *trail])
    for style in ("full", "short", "number"):
        tabs = []
        for i, name in enumerate(SCREENS, 1):
            if name == current:
                tabs.append((f"{i} {here}", True))
            elif style == "full":
                tabs.append((f"{i} {name.capitalize()}", False))
            elif style == "short":
                tabs.append((f"{i} {SHORT[name]}", False))
            else:
                tabs.append((str(i), False))
        if sum(len(t) + 2 for t, _ in tabs) <= width:
            return tabs
    return tabs


def tab_bar_width(tabs: Sequence[tuple[str, bool]]) -> int:
    """Cells the tabs take (each is padded by one cell on both sides)."""
    return sum(len(t) + 2 for t, _ in tabs)


@dataclass
class HeaderFacts:
    """What the header's second line shows (empty strings are left out)."""

    where: str = ""  # "prod (ssh://ops@prod-1)" or the host URL
    status: str = ""  # "12/14 running", "DISCONNECTED ...", "connecting"
    version: str = ""  # "servin 0.4.0"
    cpu: str = ""  # "cpu 37% of 2"
    memory: str = ""  # "mem 1.2GB/3.8GB"
    notes: str = ""  # "read-only"
    alarm: bool = False  # disconnected: the status is shown as a warning


def info_line(facts: HeaderFacts, width: int) -> list[tuple[str, str]]:
    """The second line's parts (text, role) that fit: the host and the status always;
    the CPU and memory, then the version, are dropped on narrow terminals."""
    parts = [
        (facts.where, "where"),
        (facts.status, "alarm" if facts.alarm else "status"),
        (facts.cpu, "figure"),
        (facts.memory, "figure"),
        (facts.version, "figure"),
        (facts.notes, "status"),
    ]
    parts = [p for p in parts if p[0]]
    drop_order = [facts.version, facts.memory, facts.cpu]

    def length(ps: list[tuple[str, str]]) -> int:
        return sum(len(t) for t, _ in ps) + 3 * (len(ps) - 1) + 2

    for victim in drop_order:
        if length(parts) <= width:
            break
        parts = [p for p in parts if p[0] != victim or not victim]
    return parts


class ServinHeader(Widget):
    """The two header lines (see the module docstring)."""

    DEFAULT_CSS = """
    ServinHeader {
        dock: top;
        height: 2;
        background: $panel;
        color: $foreground;
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "servin-header--brand",
        "servin-header--tab",
        "servin-header--current",
        "servin-header--where",
        "servin-header--alarm",
        "servin-header--figure",
    }
    DEFAULT_CSS += """
    ServinHeader > .servin-header--brand { color: $accent; text-style: bold; }
    ServinHeader > .servin-header--tab { color: $text-muted; }
    ServinHeader > .servin-header--current {
        background: $primary; color: $background; text-style: bold;
    }
    ServinHeader > .servin-header--where { text-style: bold; }
    ServinHeader > .servin-header--alarm { color: $error; text-style: bold; }
    ServinHeader > .servin-header--figure { color: $text-muted; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.mode = "containers"
        self.trail: list[str] = []
        self.facts = HeaderFacts()

    def set(self, mode: str, trail: Sequence[str], facts: HeaderFacts) -> None:
        """Show ``mode``'s tab (with ``trail``) and ``facts``; repaints only on a change."""
        trail = list(trail)
        if (mode, trail, facts) != (self.mode, self.trail, self.facts):
            self.mode, self.trail, self.facts = mode, trail, facts
            self.refresh()

    def render(self) -> Text:
        width = self.size.width
        brand = " ◆ Servin "
        tabs = tab_bar(self.mode, self.trail, width - len(brand))
        if tab_bar_width(tabs) + len(brand) > width or any(
            t == str(i) for i, (t, _) in enumerate(tabs, 1)
        ):
            brand = " ◆ "  # narrow: the tabs' names matter more than ours
            tabs = tab_bar(self.mode, self.trail, width - len(brand))
        line = Text(no_wrap=True, overflow="ellipsis", end="")
        line.append(brand, self.get_component_rich_style("servin-header--brand"))
        tab = self.get_component_rich_style("servin-header--tab")
        current = self.get_component_rich_style("servin-header--current")
        for label, is_current in tabs:
            line.append(f" {label} ", current if is_current else tab)
        line.truncate(width, overflow="ellipsis")
        second = Text(" ", no_wrap=True, overflow="ellipsis", end="")
        styles = {
            "where": self.get_component_rich_style("servin-header--where"),
            "alarm": self.get_component_rich_style("servin-header--alarm"),
            "figure": self.get_component_rich_style("servin-header--figure"),
            "status": self.rich_style,
        }
        for i, (text, role) in enumerate(info_line(self.facts, width)):
            if i:
                second.append(" · ", styles["figure"])
            second.append(text, styles[role])
        second.truncate(width, overflow="ellipsis")
        return Text("\n").join([line, second])


class ServinFooter(Widget):
    """One line of key hints; ``? Help`` and ``q Quit`` always stay, at the right end."""

    DEFAULT_CSS = """
    ServinFooter {
        dock: bottom;
        height: 1;
        background: $footer-background;
        color: $footer-foreground;
    }
    ServinFooter > .servin-footer--key {
        color: $footer-key-foreground;
        background: $footer-key-background;
        text-style: bold;
    }
    ServinFooter > .servin-footer--description {
        color: $footer-description-foreground;
        background: $footer-description-background;
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "servin-footer--key",
        "servin-footer--description",
    }

    def __init__(self) -> None:
        super().__init__()
        self._spans: list[tuple[int, int, str]] = []  # x from, x to, key to simulate

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, lambda _: self.refresh())

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def hints(self) -> list[tuple[Binding, str]]:
        """The shown bindings with their key as displayed, pinned ones last."""
        seen: set[str] = set()
        shown: list[tuple[Binding, str]] = []
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if not binding.show or not active.enabled or binding.action in seen:
                continue
            seen.add(binding.action)
            shown.append((binding, self.app.get_key_display(binding)))
        pinned = [h for h in shown if h[0].id in PINNED]
        return [h for h in shown if h[0].id not in PINNED] + pinned

    def render(self) -> Text:
        width = self.size.width
        key_style = self.get_component_rich_style("servin-footer--key")
        desc_style = self.get_component_rich_style("servin-footer--description")
        hints = self.hints()
        pinned = [h for h in hints if h[0].id in PINNED]
        rest = [h for h in hints if h[0].id not in PINNED]

        def cost(h: tuple[Binding, str]) -> int:
            return len(h[1]) + len(h[0].description) + 3

        room = width - sum(cost(h) for h in pinned)
        chosen = []
        for h in rest:
            if cost(h) > room:
                break
            chosen.append(h)
            room -= cost(h)
        line = Text(no_wrap=True, end="")
        self._spans = []

        def add(h: tuple[Binding, str]) -> None:
            start = line.cell_len
            line.append(f" {h[1]} ", key_style)
            line.append(f"{h[0].description} ", desc_style)
            self._spans.append((start, line.cell_len, h[0].key.split(",")[0]))

        for h in chosen:
            add(h)
        if pinned:
            line.append(" " * max(0, room), desc_style)
            for h in pinned:
                add(h)
        line.truncate(width)
        return line

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                self.app.simulate_key(key)
                return
