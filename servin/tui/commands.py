"""The k9s-style command line (``:images name=web``) and the command palette's entries."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from servin.errors import InvalidArgument

if TYPE_CHECKING:
    from servin.tui.app import ServinApp

# The top-level screens, in number-key order (1-9).
SCREENS = [
    "containers",
    "images",
    "volumes",
    "networks",
    "pods",
    "logs",
    "metrics",
    "events",
    "system",
]
ALIASES = {
    "co": "containers",
    "ps": "containers",
    "c": "containers",
    "container": "containers",
    "im": "images",
    "i": "images",
    "image": "images",
    "vol": "volumes",
    "volume": "volumes",
    "v": "volumes",
    "net": "networks",
    "network": "networks",
    "n": "networks",
    "pod": "pods",
    "po": "pods",
    "ev": "events",
    "event": "events",
    "e": "events",
    "sys": "system",
    "info": "system",
    "df": "system",
    "log": "logs",
    "m": "metrics",
    "top": "metrics",
    "stats": "metrics",
}
OTHER = ["sort", "theme", "help", "quit", "filter", "pull"]


@dataclass
class Command:
    """A parsed command line: a verb and its arguments."""

    verb: str
    args: list[str]


def parse_command(line: str) -> Command:
    """``images name=web`` -> Command("images", ["name=web"]); InvalidArgument if unknown."""
    try:
        words = shlex.split(line.strip().removeprefix(":"))
    except ValueError as exc:
        raise InvalidArgument(f"cannot parse {line!r}: {exc}") from None
    if not words:
        raise InvalidArgument("empty command")
    verb = ALIASES.get(words[0].lower(), words[0].lower())
    if verb in ("q", "q!", "exit"):
        verb = "quit"
    if verb not in SCREENS and verb not in OTHER:
        raise InvalidArgument(
            f"unknown command {words[0]!r}: try {', '.join(SCREENS)}, logs NAME, sort COLUMN, "
            "pull IMAGE, theme dark|light, help, quit"
        )
    return Command(verb, words[1:])


def suggestions() -> list[str]:
    """What the command line completes."""
    return [
        *SCREENS,
        "logs ",
        "sort cpu",
        "sort mem",
        "sort name",
        "pull ",
        "theme dark",
        "theme light",
        "help",
        "quit",
        "filter ",
    ]


class ServinCommands(Provider):
    """The command palette (ctrl+p): screens, themes, help."""

    def _entries(self) -> list[tuple[str, str, str]]:
        return [
            *((f"Show {s}", f":{s}", s) for s in SCREENS),
            ("Theme: dark", "Switch to the dark theme", "theme dark"),
            ("Theme: light", "Switch to the light theme", "theme light"),
            ("Sort containers by CPU", ":sort cpu", "sort cpu"),
            ("Sort containers by memory", ":sort mem", "sort mem"),
            ("Pull an image", ":pull NAME[:TAG]", "images"),
            ("Help: key bindings", "Every key, by screen", "help"),
        ]

    async def discover(self) -> Hits:
        app: ServinApp = self.app  # type: ignore[assignment]  # textual says App; it is ours
        for title, help_text, line in self._entries():
            yield DiscoveryHit(title, partial(app.run_command, line), help=help_text)

    async def search(self, query: str) -> Hits:
        app: ServinApp = self.app  # type: ignore[assignment]  # textual says App; it is ours
        matcher = self.matcher(query)
        for title, help_text, line in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score, matcher.highlight(title), partial(app.run_command, line), help=help_text
                )
