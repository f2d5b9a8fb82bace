"""Variable substitution in Dockerfile words, as docker's builder does it.

The rules are a small subset of a POSIX shell's, applied by the builder (not by a shell) to
the arguments of ENV, LABEL, ARG, COPY, ADD, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL,
FROM and instruction flags:

- ``'...'`` keeps everything literally; ``"..."`` keeps everything but ``$`` expansions, and
  the escape character escapes only ``"``, ``$`` and itself there;
- the escape character (``\\`` or the ``# escape=`` directive's) escapes the next character;
- ``$NAME``, ``${NAME}``, ``${NAME:-word}`` (word if unset or empty), ``${NAME-word}`` (word
  if unset), ``${NAME:+word}`` (word if set and not empty), ``${NAME+word}`` (word if set),
  ``${NAME:?message}`` and ``${NAME?message}`` (an error); the word may hold expansions too.
  An unset variable expands to nothing; a ``$`` not followed by a name stays a ``$``.

``process_word`` returns one string (quotes removed, no splitting); ``process_words`` splits
the result into words on unquoted whitespace, as the shell would.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from servin.errors import InvalidArgument

_SPECIAL_PARAMS = "@*#?-$!0"


@dataclass
class _Words:
    """Splits the processed characters into words (quoted text never splits)."""

    words: list[str] = field(default_factory=list)
    word: str = ""
    in_word: bool = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.add_raw_char(ch)

    def add_raw_char(self, ch: str) -> None:
        self.word += ch
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw_string(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def result(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
        return self.words


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        if self.pos >= len(self.text):
            return ""
        ch = self.text[self.pos]
        self.pos += 1
        return ch


class Lexer:
    """Substitution with one escape character (``\\`` by default, or `````)."""

    def __init__(self, escape: str = "\\") -> None:
        self.escape = escape

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """``word`` with quotes removed and variables expanded (no word splitting)."""
        return _Processor(word, env, self.escape).run()[0]

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """``word`` expanded and split into words on unquoted whitespace."""
        return _Processor(word, env, self.escape).run()[1]

    def expand_heredoc(self, text: str, env: Mapping[str, str]) -> str:
        """A here-document body with ``$`` expansions, quotes kept (as ``<<EOF`` in sh)."""
        return _Processor(text, env, self.escape, quotes=False).run()[0]


class _Processor:
    def __init__(self, text: str, env: Mapping[str, str], escape: str,
                 quotes: bool = True) -> None:
        self.s = _Scanner(text)
        self.env = env
        self.escape = escape
        self.quotes = quotes
        self.source = text

    def run(self) -> tuple[str, list[str]]:
        return self._until("")

    def _error(self, message: str) -> InvalidArgument:
        return InvalidArgument(f"{message} (in {self.source!r})")

    def _until(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        s = self.s
        while s.peek():
            ch = s.peek()
            if stop and ch == stop:
                s.next()
                return "".join(result), words.result()
            if ch == "$":
                value = self._dollar()
                result.append(value)
                words.add_string(value)
            elif self.quotes and ch == "'":
                value = self._single_quote()
                result.append(value)
                words.add_raw_string(value)
            elif self.quotes and ch == '"':
                value = self._double_quote()
                result.append(value)
                words.add_raw_string(value)
            else:
                ch = s.next()
                if ch == self.escape:
                    if not self.quotes:
                        # In a here-document only $, the escape and ` are escapable.
                        if s.peek() in ("$", self.escape, "`"):
                            ch = s.next()
                        result.append(ch)
                        words.add_raw_char(ch)
                        continue
                    ch = s.next()
                    if not ch:
                        break  # an escape at the very end is dropped
                    words.add_raw_char(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop:
            raise self._error(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.result()

    def _single_quote(self) -> str:
        s = self.s
        s.next()
        out: list[str] = []
        while True:
            ch = s.next()
            if not ch:
                raise self._error(
                    "unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def _double_quote(self) -> str:
        s = self.s
        s.next()
        out: list[str] = []
        while True:
            ch = s.peek()
            if not ch:
                raise self._error(
                    "unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                s.next()
                return "".join(out)
            if ch == "$":
                out.append(self._dollar())
                continue
            ch = s.next()
            if ch == self.escape:
                nxt = s.peek()
                if not nxt:
                    continue  # an escape at the end of the word is dropped
                if nxt in ('"', "$", self.escape):
                    ch = s.next()
            out.append(ch)

    def _name(self) -> str:
        s = self.s
        name: list[str] = []
        while s.peek():
            ch = s.peek()
            if not name and ch.isdigit():
                while s.peek().isdigit():
                    name.append(s.next())
                return "".join(name)
            if not name and ch in _SPECIAL_PARAMS:
                return s.next()
            if not (ch.isalnum() or ch == "_"):
                break
            name.append(s.next())
        return "".join(name)

    def _dollar(self) -> str:
        s = self.s
        s.next()  # the $
        if s.peek() != "{":
            name = self._name()
            if not name:
                return "$"
            return self.env.get(name, "")
        s.next()  # the {
        if not s.peek():
            raise self._error("syntax error: missing '}'")
        if s.peek() in "{}:":
            raise self._error("syntax error: bad substitution")
        name = self._name()
        ch = s.next()
        if ch == "}":
            return self.env.get(name, "")
        colon = ch == ":"
        modifier = s.next() if colon else ch
        if modifier not in ("-", "+", "?"):
            if not modifier:
                raise self._error("syntax error: missing '}'")
            what = f":{modifier}" if colon else modifier
            raise self._error(f"unsupported modifier ({what}) in substitution")
        try:
            word, _ = self._until("}")
        except InvalidArgument:
            raise self._error("syntax error: missing '}'") from None
        is_set = name in self.env
        value = self.env.get(name, "")
        present = bool(value) if colon else is_set
        if modifier == "-":
            return value if present else word
        if modifier == "+":
            return word if present else ""
        if not present:
            raise InvalidArgument(f"{name}: {word or 'is not allowed to be unset'}")
        return value
