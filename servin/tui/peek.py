"""The Containers screen's split view: the selected container's live log tail and its CPU
and memory graphs, under the table (as lazydocker shows them), so the broken service's logs
are in sight without leaving the list.

One ``Containers.Logs`` stream follows the container under the cursor (switched a moment
after the cursor settles, so scrolling through the list does not open a stream per row);
the graphs read the source's shared stats history (no call of their own).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Static

from servin.client.logs import entries as log_entries
from servin.errors import ServinError
from servin.tui import format as fmt
from servin.tui.graph import Graph
from servin.tui.logview import LogLine, LogView, lines_from_entries
from servin.tui.screens.base import run_factory

if TYPE_CHECKING:
    from servin.tui.source import Source

TAIL = 200  # lines of backlog the tail starts with
KEEP = 5000  # lines the tail keeps
SETTLE = 0.3  # seconds the cursor rests on a row before its stream opens
BATCH = 0.1  # seconds new lines are gathered before they are drawn


class ContainerPeek(Horizontal):
    """Log tail (left) and live graphs (right) of one container."""

    DEFAULT_CSS = """
    ContainerPeek {
        height: 45%;
        border-top: solid $primary 50%;
    }
    ContainerPeek #peek-logs {
        width: 2fr;
    }
    ContainerPeek #peek-graphs {
        width: 1fr;
        min-width: 30;
        max-width: 60;
        padding: 0 1;
        border-left: solid $primary 30%;
    }
    ContainerPeek .peek-title {
        height: 1;
        padding: 0 1;
        color: $text-muted;
    }
    ContainerPeek #peek-mem {
        color: $accent;
    }
    """

    def __init__(self, source: Source) -> None:
        super().__init__(id="peek")
        self.source = source
        self.container_id: str | None = None
        self.container_name = ""
        self._pending: list[LogLine] = []
        self._partial: dict[str, str] = {}
        self._drain_timer: Timer | None = None
        self._switch_timer: Timer | None = None
        self._streaming = False
        self._error = ""

    def compose(self) -> ComposeResult:
        with Vertical(id="peek-logs"):
            yield Static("", id="peek-log-title", classes="peek-title", markup=False)
            yield LogView(id="peek-log", max_lines=KEEP)
        with Vertical(id="peek-graphs"):
            yield Static("", id="peek-cpu-title", classes="peek-title", markup=False)
            yield Graph(id="peek-cpu")
            yield Static("", id="peek-mem-title", classes="peek-title", markup=False)
            yield Graph(id="peek-mem")
            yield Static("", id="peek-facts", markup=False)

    # ---- which container ---------------------------------------------------------------

    def follow(self, container_id: str | None, name: str = "", now: bool = False) -> None:
        """Show ``container_id`` (after the cursor settled on it, or ``now``)."""
        if self._switch_timer is not None:
            self._switch_timer.stop()
            self._switch_timer = None
        if container_id == self.container_id:
            return
        if now:
            self._switch(container_id, name)
        else:
            self._switch_timer = self.set_timer(
                SETTLE, partial(self._switch, container_id, name), name="peek-switch"
            )

    def _switch(self, container_id: str | None, name: str) -> None:
        self._switch_timer = None
        self.container_id, self.container_name = container_id, name
        self.workers.cancel_group(self, "peek-logs")
        self._pending.clear()
        self._partial.clear()
        self._error = ""
        self._streaming = False
        self.query_one(LogView).clear()
        if container_id is not None and self.source.state.connected:
            self._streaming = True
            run_factory(self, partial(self._stream, container_id), group="peek-logs")
        self._update_titles()
        self.update_live()

    def resume(self) -> None:
        """Open the stream again if it ended (after a reconnect)."""
        if self.container_id and not self._streaming and self.source.state.connected:
            self._streaming = True
            self.query_one(LogView).clear()
            run_factory(self, partial(self._stream, self.container_id), group="peek-logs")
            self._update_titles()

    # ---- the log tail ------------------------------------------------------------------

    async def _stream(self, container_id: str) -> None:
        from servin.api.servin.v1 import containers_pb2

        request = containers_pb2.ContainerLogsRequest(
            id=container_id, follow=True, stdout=True, stderr=True, timestamps=True, tail=TAIL
        )
        try:
            async for chunk in self.source.stream(lambda cl: cl.containers.Logs(request)):
                entries = list(log_entries(chunk, container_id))
                self._pending.extend(lines_from_entries(entries, None, self._partial))
                if self._drain_timer is None:
                    self._drain_timer = self.set_timer(BATCH, self._drain, name="peek-drain")
        except ServinError as exc:
            self._error = fmt.error_text(exc)
        if container_id == self.container_id:
            self._streaming = False
            self._update_titles()

    def _drain(self) -> None:
        self._drain_timer = None
        if self._pending:
            lines, self._pending = self._pending, []
            self.query_one(LogView).append(lines)

    # ---- the graphs --------------------------------------------------------------------

    def update_live(self) -> None:
        """Redraw the graphs and figures from the shared stats history."""
        state = self.source.state
        cid = self.container_id
        s = state.stats.get(cid) if cid else None
        hist = state.history.get(cid) if cid else None
        cpu = list(hist.cpu) if hist else []
        mem = list(hist.mem) if hist else []
        host_total = state.info.mem_total if state.info is not None else 0
        limit = s.memory_limit if s is not None else 0
        self.query_one("#peek-cpu", Graph).set(cpu, 100.0)
        self.query_one("#peek-mem", Graph).set(mem, fmt.memory_top(limit, host_total, mem))
        cpu_now = f"{s.cpu_percent:.1f}%" if s is not None else "-"
        cpu_peak = f"{max(cpu):.1f}%" if cpu else "-"
        self._title("#peek-cpu-title", f"CPU {cpu_now}  (peak {cpu_peak}, of one core)")
        if s is not None:
            own = limit and host_total and limit < host_total
            of = f" of {fmt.size(limit)}" if own else ""
            self._title("#peek-mem-title", f"Memory {fmt.size(s.memory_usage)}{of}")
            facts = (
                f"pids {s.pids}\nnet {fmt.size(s.net_rx)} in, {fmt.size(s.net_tx)} out\n"
                f"block {fmt.size(s.block_read)} read, {fmt.size(s.block_write)} written"
            )
        else:
            self._title("#peek-mem-title", "Memory -")
            c = state.containers.get(cid) if cid else None
            facts = f"{c.name} is {c.state}: no live figures" if c is not None else ""
        self._title("#peek-facts", facts)

    def _update_titles(self) -> None:
        if self.container_id is None:
            text = "no container selected"
        elif self._error:
            text = f"logs of {self.container_name}: {self._error}"
        elif self._streaming:
            text = f"logs of {self.container_name} (live tail; l opens the full view)"
        else:
            text = f"logs of {self.container_name} (stream ended)"
        self._title("#peek-log-title", text)

    _shown: dict[str, str] | None = None

    def _title(self, selector: str, text: str) -> None:
        # Untouched when unchanged: an update re-lays out the widget.
        if self._shown is None:
            self._shown = {}
        if self._shown.get(selector) != text:
            self._shown[selector] = text
            self.query_one(selector, Static).update(text)
