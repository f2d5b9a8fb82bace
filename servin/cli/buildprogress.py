"""Showing a build: BuildKit-style lines (``plain``), a live view of the steps (``tty``), or
nothing but the result (``quiet``).

Progress goes to stderr; the final ``Successfully built``/``Successfully tagged`` lines (or,
with ``-q``, the image ID alone) go to stdout, as docker's classic builder prints them.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from servin.humanize import human_size

if TYPE_CHECKING:
    from servin.api.servin.v1.images_pb2 import BuildProgress, BuildResult

_TAIL = 6  # output lines of a running step the live view shows


@dataclass
class Step:
    """One step as the renderers see it."""

    vertex: int
    title: str
    started: float
    done: bool = False
    cached: bool = False
    failed: bool = False
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)
    partial: str = ""
    message: str = ""


class Renderer:
    """Consumes ``BuildProgress`` messages; subclasses draw them."""

    def __init__(self, err: TextIO | None = None) -> None:
        self.err = err or sys.stderr
        self.steps: dict[int, Step] = {}
        self.order: list[int] = []
        self.started = time.monotonic()
        self.sent = 0
        self.sent_done = False
        self.result: BuildResult | None = None
        self.failure: Step | None = None
        self.lock = threading.Lock()

    # -- the feed ---------------------------------------------------------------------------

    def sending(self, total: int, done: bool = False) -> None:
        """Bytes of context sent so far (called from the upload thread)."""
        with self.lock:
            self.sent = total
            self.sent_done = done
        self.on_sending()

    def feed(self, msg: BuildProgress) -> None:
        """One ``BuildProgress`` message."""
        kind = msg.WhichOneof("event")
        with self.lock:
            if kind == "started":
                s = msg.started
                title = f"[{s.stage} {s.index}/{s.count}] {s.instruction}"
                step = Step(s.vertex, title, time.monotonic())
                self.steps[s.vertex] = step
                self.order.append(s.vertex)
            elif kind == "done":
                known = self.steps.get(msg.done.vertex)
                if known is not None:
                    known.done, known.cached = True, msg.done.cached
                    known.seconds = msg.done.seconds
                    self._flush_partial(known)
            elif kind == "failed":
                known = self.steps.get(msg.failed.vertex)
                if known is not None:
                    known.failed, known.done = True, True
                    known.message = msg.failed.message
                    known.seconds = time.monotonic() - known.started
                    self._flush_partial(known)
                    self.failure = known
            elif kind == "result":
                self.result = msg.result
            elif kind is None and msg.data:
                known = self.steps.get(msg.vertex)
                if known is not None:
                    self._add_output(known, msg.data)
        self.on_message(kind, msg)

    def _add_output(self, step: Step, data: bytes) -> None:
        text = step.partial + data.decode(errors="replace")
        *complete, step.partial = text.split("\n")
        for line in complete:
            step.lines.append(line.rstrip("\r"))
            self.on_line(step, line.rstrip("\r"))

    def _flush_partial(self, step: Step) -> None:
        if step.partial:
            line, step.partial = step.partial, ""
            step.lines.append(line)
            self.on_line(step, line)

    # -- drawing (subclasses) -----------------------------------------------------------------

    def on_sending(self) -> None:
        pass

    def on_message(self, kind: str | None, msg: BuildProgress) -> None:
        pass

    def on_line(self, step: Step, line: str) -> None:
        pass

    def close(self) -> None:
        """The build is over (successfully or not)."""

    def print_failure(self) -> None:
        """Details of the failed step (for the renderers that did not show them)."""
        step = self.failure
        if step is None:
            return
        print(f"ERROR: {step.title}", file=self.err)
        for line in step.lines[-50:]:
            print(f"  {line}", file=self.err)
        print(f"ERROR: {step.message}", file=self.err, flush=True)


class PlainRenderer(Renderer):
    """Lines: ``#3 [build 2/5] RUN make``, its output, ``#3 DONE 1.2s`` / ``#3 CACHED``."""

    def on_sending(self) -> None:
        if self.sent_done:
            print(f"#0 sending build context {human_size(self.sent)} done", file=self.err,
                  flush=True)

    def on_message(self, kind: str | None, msg: BuildProgress) -> None:
        err = self.err
        if kind == "started":
            print(f"#{msg.started.vertex} {self.steps[msg.started.vertex].title}", file=err,
                  flush=True)
        elif kind == "done":
            label = "CACHED" if msg.done.cached else f"DONE {msg.done.seconds:.1f}s"
            print(f"#{msg.done.vertex} {label}", file=err, flush=True)
        elif kind == "failed":
            print(f"#{msg.failed.vertex} ERROR: {msg.failed.message}", file=err, flush=True)
        elif kind == "warning":
            print(f"WARNING: {msg.warning}", file=err, flush=True)
        elif kind == "message":
            print(msg.message, file=err, flush=True)

    def on_line(self, step: Step, line: str) -> None:
        print(f"#{step.vertex} {line}", file=self.err, flush=True)


class QuietRenderer(Renderer):
    """Nothing while it runs; the failed step's output when it fails."""

    def close(self) -> None:
        self.print_failure()


class TtyRenderer(Renderer):
    """A live view: one line per step with its state and time, the tail of running steps'
    output, a header with the elapsed time; the final view stays on the terminal."""

    def __init__(self, err: TextIO | None = None) -> None:
        super().__init__(err)
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=self.err, highlight=False)
        self.warnings: list[str] = []
        self.live = Live(console=self.console, refresh_per_second=8, transient=False,
                         get_renderable=self._render)
        self.live.start()

    def on_message(self, kind: str | None, msg: BuildProgress) -> None:
        if kind == "warning":
            self.warnings.append(msg.warning)

    def _render(self) -> Any:
        from rich.text import Text

        with self.lock:
            now = time.monotonic()
            done = sum(1 for s in self.steps.values() if s.done)
            out = Text()
            out.append(f"[+] Building {now - self.started:.1f}s ({done}/{len(self.steps)})",
                       style="bold blue" if self.failure is None else "bold red")
            if self.sent and not self.steps:
                out.append(f"\n => sending build context {human_size(self.sent)}")
            for vertex in self.order:
                s = self.steps[vertex]
                if s.failed:
                    style, prefix, tail = "red", "=> ERROR ", f"{s.seconds:.1f}s"
                elif s.cached:
                    style, prefix, tail = "blue", "=> CACHED ", ""
                elif s.done:
                    style, prefix, tail = "blue", "=> ", f"{s.seconds:.1f}s"
                else:
                    style, prefix, tail = "", "=> ", f"{now - s.started:.1f}s"
                width = max(20, self.console.width - len(tail) - 4)
                line = f"{prefix}{s.title}"
                if len(line) > width:
                    line = line[: width - 1] + "…"
                out.append(f"\n {line:<{width}} {tail}", style=style)
                if not s.done:
                    for text in s.lines[-_TAIL:]:
                        out.append(f"\n => => # {text[: width - 8]}", style="dim")
            for warning in self.warnings:
                out.append(f"\n WARNING: {warning}", style="yellow")
            return out

    def close(self) -> None:
        self.live.refresh()
        self.live.stop()
        self.print_failure()


def renderer(mode: str, err: TextIO | None = None) -> Renderer:
    """The renderer for ``--progress`` (``auto``: live on a terminal, lines otherwise)."""
    stream = err or sys.stderr
    if mode == "auto":
        try:
            mode = "tty" if stream.isatty() else "plain"
        except (AttributeError, ValueError):
            mode = "plain"
    if mode == "tty":
        return TtyRenderer(stream)
    if mode == "quiet":
        return QuietRenderer(stream)
    return PlainRenderer(stream)
