"""Modal dialogs: confirm an action, the ``:`` command line, a one-line prompt, help."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.timer import Timer
from textual.widgets import Input, Label, Static


class ConfirmScreen(ModalScreen[bool]):
    """Ask before a destructive action: y/enter confirms, n/escape cancels."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question = question
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question, id="question", markup=False)
            if self.detail:
                yield Static(self.detail, id="detail", markup=False)
            yield Label("[b]y[/b] yes    [b]n[/b] no", id="keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PromptScreen(ModalScreen[str | None]):
    """A one-line input docked at the bottom: the ``:`` command line, ``/`` search, save path.

    Enter returns the text, escape returns None. With ``on_change``, the text is also handed
    over while it is typed, once typing pauses for ``DEBOUNCE`` seconds (filter as you type).
    """

    DEBOUNCE = 0.15

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(
        self,
        prompt: str,
        value: str = "",
        *,
        suggestions: list[str] | None = None,
        placeholder: str = "",
        on_change: Callable[[str], object] | None = None,
    ) -> None:
        super().__init__()
        self.prompt = prompt
        self.value = value
        self.suggestions = suggestions or []
        self.placeholder = placeholder
        self._on_change = on_change
        self._debounce: Timer | None = None

    def compose(self) -> ComposeResult:
        suggester = SuggestFromList(self.suggestions) if self.suggestions else None
        with Vertical(id="prompt-bar"):
            yield Input(
                self.value,
                placeholder=self.placeholder,
                suggester=suggester,
                id="prompt-input",
            )
            yield Label(self.prompt, id="prompt-label", markup=False)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._on_change is None or (event.value == self.value and self._debounce is None):
            return
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(self.DEBOUNCE, lambda: self._changed(event.value))

    def _changed(self, text: str) -> None:
        self._debounce = None
        if self._on_change is not None:
            self._on_change(text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    """Every key binding, by screen, with its id (for ``[keys]`` in tui.toml)."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close", id="help.close")]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(self.text, id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)
