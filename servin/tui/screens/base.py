"""What every screen shares: the header (the tab bar, host, daemon and host figures), a
status line, the footer of keys, and the hook through which the app hands it fresh data."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker

from servin.tui.chrome import ServinFooter, ServinHeader

if TYPE_CHECKING:
    from servin.tui.app import ServinApp
    from servin.tui.source import Source, State


def run_factory(
    node: DOMNode, factory: Callable[[], Coroutine[Any, Any, None]], group: str
) -> Worker[None]:
    """Run ``factory()`` in a worker of ``node``. A factory rather than a coroutine: a worker
    cancelled before it starts leaves no never-awaited coroutine behind."""
    # The annotation settles textual's WorkType union for mypy (a factory of coroutines).
    worker: Worker[None] = node.run_worker(factory, group=group)
    return worker


class BaseScreen(Screen[None]):
    """A screen of the console. Subclasses compose their body and implement ``update_data``."""

    # What this screen adds to the header's trail when pushed on a top-level screen
    # (``web-1``, ``logs web-1``); top-level screens say nothing.
    crumb: str = ""

    def compose(self) -> ComposeResult:
        yield ServinHeader()
        yield from self.compose_body()
        yield Static("", id="status", markup=False)
        yield ServinFooter()

    def compose_body(self) -> ComposeResult:
        yield from ()

    @property
    def servin(self) -> ServinApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]  # textual says App; it is ServinApp

    @property
    def source(self) -> Source:
        """The shared data source."""
        return self.servin.source

    @property
    def state(self) -> State:
        """The last known picture of the daemon."""
        return self.servin.source.state

    def on_screen_resume(self) -> None:
        self.refresh_header()
        self.update_data({"connection", "containers", "stats", "events", "images", "info"})

    def refresh_header(self) -> None:
        """Bring the header up to date (mode, trail, connection, figures)."""
        app = self.servin
        stack = app.screen_stack
        upto = stack[1 : stack.index(self) + 1] if self in stack else []
        trail = [s.crumb for s in upto if isinstance(s, BaseScreen) and s.crumb]
        self.query_one(ServinHeader).set(app.current_mode, trail, app.header_facts())

    def update_data(self, kinds: set[str]) -> None:
        """Fresh data arrived (``kinds`` names what changed). Called on the active screen."""

    _status_text: str | None = None

    def set_status(self, text: str) -> None:
        """The one-line status under the body (untouched when the text is the same: an
        update re-lays out the screen, which would redraw every row once a second)."""
        if text != self._status_text:
            self._status_text = text
            # One line whatever the text: no layout (it would repaint the whole screen).
            self.query_one("#status", Static).update(text, layout=False)

    def report(self, results: list[tuple[str, Any]], verb: str) -> None:
        """Notify how a bulk action went: one line for success, one per failure."""
        failed = [(name, err) for name, err in results if err is not None]
        done = len(results) - len(failed)
        if done:
            self.notify(f"{verb} {done} container{'s' if done != 1 else ''}", timeout=3)
        for name, err in failed:
            self.notify(f"{name}: {err}", severity="error", timeout=8)
