"""``.dockerignore``: which context files a build leaves out, with docker's pattern rules.

One pattern per line; ``#`` starts a comment line; blank lines are skipped; a leading ``!``
makes an exception (the file is kept after all); a leading ``/`` is dropped (every pattern is
relative to the context root) and the pattern is cleaned like a path. ``*`` matches any run
of characters but ``/``, ``?`` one character but ``/``, ``[...]`` a class, ``\\`` escapes the
next character, and ``**`` any number of directories (none included). A pattern matching a
directory excludes everything below it. The last pattern that matches a path decides.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from servin.errors import InvalidArgument


@dataclass(frozen=True)
class Pattern:
    """One cleaned pattern."""

    text: str
    exclusion: bool  # a "!" exception
    regex: re.Pattern[str]
    depth: int  # path components in the pattern


def read_patterns(text: str) -> list[str]:
    """The patterns of a ``.dockerignore`` file, as docker reads them."""
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        out.append(line)
    return out


def _clean(pattern: str) -> tuple[str, bool]:
    exclusion = pattern.startswith("!")
    if exclusion:
        pattern = pattern[1:].strip()
    if pattern:
        pattern = posixpath.normpath(pattern)
        if pattern == ".":
            pattern = ""
    pattern = pattern.lstrip("/")
    return pattern, exclusion


def _compile(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(.*/)?")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i + 1 < n:
                i += 1
                out.append(re.escape(pattern[i]))
            else:
                out.append(r"\\")
        elif ch == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("!", "^") else i + 1)
            if end < 0:
                raise InvalidArgument(f"invalid .dockerignore pattern {pattern!r}: "
                                      "unterminated [")
            body = pattern[i + 1:end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as exc:
        raise InvalidArgument(f"invalid .dockerignore pattern {pattern!r}: {exc}") from None


class Matcher:
    """Decides whether a context path (relative, ``/``-separated) is excluded."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns: list[Pattern] = []
        for raw in patterns:
            text, exclusion = _clean(raw)
            if not text:
                continue
            self.patterns.append(Pattern(text, exclusion, _compile(text), text.count("/") + 1))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    @property
    def has_exclusions(self) -> bool:
        """Whether some ``!`` pattern may bring back a path below an excluded directory."""
        return any(p.exclusion for p in self.patterns)

    def excluded(self, path: str) -> bool:
        """Whether ``path`` is left out of the context."""
        path = path.strip("/")
        if not path or path == ".":
            return False
        parent = posixpath.dirname(path)
        parent_dirs = parent.split("/") if parent else []
        matched = False
        for p in self.patterns:
            hit = bool(p.regex.match(path))
            if not hit and parent_dirs and p.depth <= len(parent_dirs):
                hit = bool(p.regex.match("/".join(parent_dirs[:p.depth])))
            if hit:
                matched = not p.exclusion
        return matched

    def may_hold_kept(self, directory: str) -> bool:
        """Whether an excluded ``directory`` may still hold a file an exception keeps (so a
        walk must descend into it)."""
        directory = directory.strip("/")
        for p in self.patterns:
            if not p.exclusion:
                continue
            prefix = p.text.split("/")
            dirs = directory.split("/")
            if _prefix_may_match(prefix, dirs):
                return True
        return False


def _prefix_may_match(pattern: list[str], dirs: list[str]) -> bool:
    """Whether a path below ``dirs`` could match the pattern's components."""
    for i, comp in enumerate(dirs):
        if i >= len(pattern):
            return False
        part = pattern[i]
        if "**" in part:
            return True
        if not _compile(part).match(comp):
            return False
    return True
