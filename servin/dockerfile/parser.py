"""The Dockerfile's lines: parser directives, comments, continuations, flags, here-documents.

This is the first of two steps (``instructions.py`` is the second): it turns the text into
logical lines, each an instruction keyword, its ``--flags`` and the rest of the line, with the
here-documents that follow it. It follows docker's parser:

- Parser directives (``# syntax=...``, ``# escape=\\`` or `````) are comment lines at the very
  top; the first line that is not one (a blank line, another comment, an instruction) ends
  them. An unknown directive name ends them too and is just a comment. A repeated directive
  is an error.
- A line whose first non-blank character is ``#`` is a comment, also inside a continued
  instruction; blank lines inside a continued instruction are skipped.
- The escape character at the end of a line (trailing blanks allowed) continues the line.
- ``RUN``, ``COPY`` and ``ADD`` (also after ``ONBUILD``) in shell form may name
  here-documents (``<<EOF``, ``<<-EOF`` strips leading tabs, ``<<'EOF'`` or ``<<"EOF"``
  does not expand variables); each body follows the instruction, in order, up to its
  terminator line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from servin.errors import InvalidArgument

DIRECTIVES = ("syntax", "escape", "check")
_DIRECTIVE_RE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC_RE = re.compile(r"^(\d*)<<(-?)([^<]*)$")
HEREDOC_INSTRUCTIONS = ("RUN", "COPY", "ADD")
KEYWORDS = (
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
    "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
)


class DockerfileError(InvalidArgument):
    """A Dockerfile that cannot be parsed; the message names the line."""


@dataclass(frozen=True)
class Heredoc:
    """One here-document: its delimiter word, body, and how to treat it."""

    name: str
    content: str
    expand: bool = True  # the delimiter was not quoted: $VAR in the body is expanded
    chomp: bool = False  # <<- : leading tabs were stripped from the body


@dataclass
class Line:
    """One logical line of a Dockerfile: an instruction with its raw arguments."""

    keyword: str  # upper-case: RUN, COPY, ...
    flags: list[str]  # the leading --name[=value] words, unquoted
    rest: str  # the arguments after the flags, as written (continuations joined)
    original: str  # the whole logical line, as written (continuations joined)
    start: int  # first line number (1-based)
    end: int  # last line number, here-documents included
    heredocs: list[Heredoc] = field(default_factory=list)

    def where(self) -> str:
        """``line N`` for messages."""
        return f"line {self.start}"


@dataclass
class Parsed:
    """A parsed Dockerfile."""

    lines: list[Line]
    directives: dict[str, str]
    escape: str = "\\"
    warnings: list[str] = field(default_factory=list)


def parse(text: str | bytes) -> Parsed:
    """Parse a Dockerfile's text into logical lines (raises DockerfileError)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DockerfileError(f"the Dockerfile is not UTF-8 text: {exc}") from None
    text = text.removeprefix("\ufeff")
    raw = text.split("\n")
    if raw and raw[-1] == "":
        raw.pop()
    raw = [r.removesuffix("\r") for r in raw]
    directives: dict[str, str] = {}
    escape = "\\"
    i = 0
    # Parser directives: comment lines at the top.
    while i < len(raw):
        match = _DIRECTIVE_RE.match(raw[i].lstrip(" \t"))
        if not match or match.group(1).lower() not in DIRECTIVES:
            break
        name, value = match.group(1).lower(), match.group(2)
        if name in directives:
            raise DockerfileError(f"line {i + 1}: only one {name} parser directive can be used")
        if name == "escape":
            if value not in ("\\", "`"):
                raise DockerfileError(f"line {i + 1}: invalid escape '{value}': must be ` or \\")
            escape = value
        directives[name] = value
        i += 1
    continuation = re.compile(re.escape(escape) + r"[ \t]*$")
    parsed = Parsed([], directives, escape)
    while i < len(raw):
        start = i + 1
        text_line = raw[i].lstrip(" \t")
        i += 1
        if not text_line.strip() or text_line.startswith("#"):
            continue
        line, more = _trim_continuation(text_line, continuation)
        blank_in_continuation = False
        while more and i < len(raw):
            nxt = raw[i]
            i += 1
            if nxt.lstrip(" \t").startswith("#"):
                continue
            if not nxt.strip():
                blank_in_continuation = True
                continue
            part, more = _trim_continuation(nxt, continuation)
            line += part
        if blank_in_continuation:
            parsed.warnings.append(f"line {start}: empty continuation lines are deprecated")
        node = _split_line(line, start, i, escape)
        if node.keyword in HEREDOC_INSTRUCTIONS or _onbuild_heredoc(node):
            for doc in heredoc_markers(node.rest if node.keyword != "ONBUILD" else _sub_rest(node)):
                body: list[str] = []
                terminated = False
                while i < len(raw):
                    content = raw[i]
                    i += 1
                    candidate = content.lstrip("\t") if doc.chomp else content
                    if candidate == doc.name:
                        terminated = True
                        break
                    body.append(content + "\n")
                if not terminated:
                    raise DockerfileError(f"line {start}: unterminated heredoc {doc.name!r}")
                text_body = "".join(body)
                if doc.chomp:
                    text_body = "".join(b.lstrip("\t") for b in body)
                node.heredocs.append(Heredoc(doc.name, text_body, doc.expand, doc.chomp))
            node.end = i
        parsed.lines.append(node)
    return parsed


def _trim_continuation(line: str, continuation: re.Pattern[str]) -> tuple[str, bool]:
    if continuation.search(line):
        return continuation.sub("", line), True
    return line, False


def _split_line(line: str, start: int, end: int, escape: str) -> Line:
    stripped = line.strip()
    keyword, _, rest = stripped.partition(" ")
    if "\t" in keyword:
        keyword, _, more = keyword.partition("\t")
        rest = more + " " + rest if rest else more
    upper = keyword.upper()
    if upper not in KEYWORDS:
        raise DockerfileError(f"line {start}: unknown instruction: {keyword}")
    flags, rest = extract_flags(rest.lstrip(" \t"))
    return Line(upper, flags, rest, line, start, end)


def _onbuild_heredoc(node: Line) -> bool:
    if node.keyword != "ONBUILD":
        return False
    sub = node.rest.strip().split(None, 1)
    return bool(sub) and sub[0].upper() in HEREDOC_INSTRUCTIONS


def _sub_rest(node: Line) -> str:
    parts = node.rest.strip().split(None, 1)
    if len(parts) < 2:
        return ""
    _, rest = extract_flags(parts[1])
    return rest


def extract_flags(text: str) -> tuple[list[str], str]:
    """Split the leading ``--flag[=value]`` words off an instruction's arguments.

    Quotes and the backslash inside a flag word are interpreted (``--label="a b"``); the
    first word that does not start with ``--`` (or a lone ``--``) ends the flags.
    """
    flags: list[str] = []
    pos = 0
    n = len(text)
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n:
            return flags, ""
        if not text.startswith("--", pos):
            return flags, text[pos:]
        word: list[str] = []
        quote = ""
        while pos < n:
            ch = text[pos]
            if quote:
                if ch == quote:
                    quote = ""
                elif ch == "\\" and pos + 1 < n:
                    pos += 1
                    word.append(text[pos])
                else:
                    word.append(ch)
            elif ch.isspace():
                break
            elif ch in ("'", '"'):
                quote = ch
            elif ch == "\\":
                if pos + 1 < n:
                    pos += 1
                    word.append(text[pos])
            else:
                word.append(ch)
            pos += 1
        value = "".join(word)
        if value == "--":
            return flags, text[pos:].lstrip()
        flags.append(value)


@dataclass(frozen=True)
class HeredocMarker:
    """A ``<<NAME`` word found in an instruction's arguments."""

    name: str
    expand: bool
    chomp: bool


def heredoc_markers(rest: str) -> list[HeredocMarker]:
    """The here-documents an instruction names, in order (none in JSON form)."""
    if is_json_array(rest):
        return []
    found: list[HeredocMarker] = []
    for word in _raw_words(rest):
        match = _HEREDOC_RE.match(word)
        if not match or not match.group(3):
            continue
        name = match.group(3)
        quoted = any(q in name for q in ("'", '"'))
        name = _unquote(name)
        if name:
            found.append(HeredocMarker(name, not quoted, match.group(2) == "-"))
    return found


def _raw_words(text: str) -> list[str]:
    """Words split on unquoted whitespace, quotes and escapes kept as written."""
    words: list[str] = []
    word: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            word.append(ch)
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"' and i + 1 < len(text):
                i += 1
                word.append(text[i])
        elif ch.isspace():
            if word:
                words.append("".join(word))
                word = []
        else:
            word.append(ch)
            if ch in ("'", '"'):
                quote = ch
            elif ch == "\\" and i + 1 < len(text):
                i += 1
                word.append(text[i])
        i += 1
    if word:
        words.append("".join(word))
    return words


def _unquote(text: str) -> str:
    out: list[str] = []
    quote = ""
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
            else:
                out.append(ch)
        elif ch in ("'", '"'):
            quote = ch
        else:
            out.append(ch)
    return "".join(out)


def is_json_array(rest: str) -> bool:
    """Whether arguments are in JSON (exec) form: a JSON array of strings."""
    return parse_json_array(rest) is not None


def parse_json_array(rest: str) -> list[str] | None:
    """The list of strings when ``rest`` is a JSON array of strings, else None.

    Raises DockerfileError for a JSON array holding something other than strings (docker's
    "not a string array").
    """
    text = rest.strip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise DockerfileError("JSON arguments must be a list of strings")
    return value


def split_words(rest: str, escape: str = "\\") -> list[str]:
    """Words of ENV/LABEL/ARG arguments: split on unquoted blanks, quotes and escapes kept
    (substitution removes them later), as docker's ``parseWords``."""
    words: list[str] = []
    word: list[str] = []
    quote = ""
    blank_ok = False
    in_word = False
    i = 0
    n = len(rest)
    while i < n:
        ch = rest[i]
        if not in_word and not quote:
            if ch.isspace():
                i += 1
                continue
            in_word = True
        if quote:
            if ch == quote:
                quote = ""
            if ch == escape and quote != "'" and quote:
                if i + 1 == n:
                    i += 1
                    continue
                word.append(ch)
                i += 1
                ch = rest[i]
            word.append(ch)
            i += 1
            continue
        if ch.isspace():
            if blank_ok or word:
                words.append("".join(word))
            word = []
            blank_ok = False
            in_word = False
            i += 1
            continue
        if ch in ("'", '"'):
            quote = ch
            blank_ok = True
        if ch == escape:
            if i + 1 == n:
                i += 1
                continue
            word.append(ch)
            i += 1
            ch = rest[i]
        word.append(ch)
        i += 1
    if in_word and (blank_ok or word):
        words.append("".join(word))
    return words
