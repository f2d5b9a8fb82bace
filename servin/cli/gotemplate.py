"""A small Go text/template engine for ``--format``, as docker's CLI users write them.

Supported: ``{{.Field}}`` and ``{{.A.B}}`` lookups, ``{{.}}``, string and number literals,
function calls (``json``, ``join``, ``lower``, ``upper``, ``title``, ``println``, ``index``,
``split``, ``len``, ``truncate``, ``pad``), pipes (``{{.Name | upper}}``), ``{{if}}``/``{{else}}``,
``{{range}}`` and ``{{with}}`` blocks with ``{{end}}``, and ``{{- -}}`` trimming.
Values print as Go prints them: maps as ``map[k:v]``, lists as ``[a b]``, nil as ``<no value>``.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from servin.errors import InvalidArgument

_ACTION_RE = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)


class TemplateError(InvalidArgument):
    """The template does not parse or fails on the data."""


@dataclass
class _Text:
    text: str


@dataclass
class _Action:
    pipeline: list[list[str]]


@dataclass
class _Block:
    kind: str  # if, range, with
    pipeline: list[list[str]]
    body: list[Any] = field(default_factory=list)
    else_body: list[Any] = field(default_factory=list)


def _go_str(value: Any) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_str(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(_go_str(v) for v in value) + "]"
    return str(value)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _join(items: Any, sep: str) -> str:
    return sep.join(_go_str(i) for i in (items or []))


def _index(container: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(container, dict):
            container = container.get(key)
        elif isinstance(container, list | tuple):
            container = container[int(key)]
        else:
            return None
    return container


def _truncate(value: Any, n: Any) -> str:
    return _go_str(value)[: int(n)]


def _pad(value: Any, left: Any, right: Any) -> str:
    return " " * int(left) + _go_str(value) + " " * int(right)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "json": _json,
    "join": _join,
    "lower": lambda s: _go_str(s).lower(),
    "upper": lambda s: _go_str(s).upper(),
    "title": lambda s: _go_str(s).title(),
    "println": lambda *a: " ".join(_go_str(x) for x in a) + "\n",
    "print": lambda *a: "".join(_go_str(x) for x in a),
    "index": _index,
    "split": lambda s, sep: _go_str(s).split(sep),
    "len": lambda v: len(v or []),
    "truncate": _truncate,
    "pad": _pad,
}


class Template:
    """A parsed template; ``render(data)`` produces its text."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.nodes = self._parse(source)

    @staticmethod
    def _tokens(source: str) -> list[_Text | tuple[str, list[list[str]]]]:
        out: list[_Text | tuple[str, list[list[str]]]] = []
        pos = 0
        for m in _ACTION_RE.finditer(source):
            text = source[pos : m.start()]
            if m.group(1) and text:
                text = text.rstrip()
            if out and isinstance(out[-1], tuple) and out[-1][0] == "trim-right":
                out.pop()
                text = text.lstrip()
            if text:
                out.append(_Text(text))
            body = m.group(2).strip()
            if body.startswith("/*"):
                pass
            else:
                out.append(("action", _parse_pipeline(body)))
            if m.group(3):
                out.append(("trim-right", []))
            pos = m.end()
        tail = source[pos:]
        if out and isinstance(out[-1], tuple) and out[-1][0] == "trim-right":
            out.pop()
            tail = tail.lstrip()
        if tail:
            out.append(_Text(tail))
        if "{{" in "".join(t.text for t in out if isinstance(t, _Text)):
            raise TemplateError(f"template: unclosed action in {source!r}")
        return out

    def _parse(self, source: str) -> list[Any]:
        root: list[Any] = []
        stack: list[tuple[_Block | None, list[Any]]] = [(None, root)]
        for tok in self._tokens(source):
            block, body = stack[-1]
            if isinstance(tok, _Text):
                body.append(tok)
                continue
            pipeline = tok[1]
            head = pipeline[0][0] if pipeline and pipeline[0] else ""
            if head in ("if", "range", "with"):
                new = _Block(head, [pipeline[0][1:], *pipeline[1:]])
                body.append(new)
                stack.append((new, new.body))
            elif head == "else":
                if block is None:
                    raise TemplateError("template: unexpected {{else}}")
                stack[-1] = (block, block.else_body)
            elif head == "end":
                if block is None:
                    raise TemplateError("template: unexpected {{end}}")
                stack.pop()
            else:
                body.append(_Action(pipeline))
        if len(stack) != 1:
            raise TemplateError("template: missing {{end}}")
        return root

    def render(self, data: Any) -> str:
        """Execute the template against ``data`` (dicts, lists, scalars)."""
        out: list[str] = []
        self._run(self.nodes, data, out)
        return "".join(out)

    def _run(self, nodes: list[Any], dot: Any, out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Action):
                out.append(_go_str(_eval_pipeline(node.pipeline, dot)))
            else:
                value = _eval_pipeline(node.pipeline, dot)
                if node.kind == "if":
                    self._run(node.body if _truthy(value) else node.else_body, dot, out)
                elif node.kind == "with":
                    if _truthy(value):
                        self._run(node.body, value, out)
                    else:
                        self._run(node.else_body, dot, out)
                else:
                    items = list(value.values()) if isinstance(value, dict) else list(value or [])
                    if not items:
                        self._run(node.else_body, dot, out)
                    for item in items:
                        self._run(node.body, item, out)


def _truthy(value: Any) -> bool:
    return bool(value) and value != "0"


def _parse_pipeline(body: str) -> list[list[str]]:
    try:
        lexer = shlex.shlex(body, posix=False, punctuation_chars="|")
        lexer.whitespace_split = True
        lexer.commenters = ""
        words = list(lexer)
    except ValueError as exc:
        raise TemplateError(f"template: {exc} in {{{{{body}}}}}") from exc
    commands: list[list[str]] = [[]]
    for word in words:
        if word == "|":
            commands.append([])
        else:
            commands[-1].append(word)
    if any(not c for c in commands):
        raise TemplateError(f"template: empty command in {{{{{body}}}}}")
    return commands


def _eval_arg(word: str, dot: Any) -> Any:
    if word == ".":
        return dot
    if word.startswith("."):
        value = dot
        for part in word[1:].split("."):
            if isinstance(value, dict):
                if part not in value:
                    raise TemplateError(f"template: can't evaluate field {part}")
                value = value[part]
            elif value is None:
                return None
            else:
                if not hasattr(value, part):
                    raise TemplateError(f"template: can't evaluate field {part}")
                value = getattr(value, part)
        return value
    if word[:1] in "\"'`":
        return word[1:-1].encode().decode("unicode_escape") if word[0] == '"' else word[1:-1]
    if re.fullmatch(r"-?\d+", word):
        return int(word)
    if word in ("true", "false"):
        return word == "true"
    if word == "nil":
        return None
    if word in FUNCTIONS:
        return FUNCTIONS[word]()
    raise TemplateError(f'template: function "{word}" not defined')


def _eval_pipeline(pipeline: list[list[str]], dot: Any) -> Any:
    value: Any = _MISSING
    for command in pipeline:
        head, args = command[0], command[1:]
        if head in FUNCTIONS:
            call_args = [_eval_arg(a, dot) for a in args]
            if value is not _MISSING:
                call_args.append(value)
            try:
                value = FUNCTIONS[head](*call_args)
            except TypeError as exc:
                raise TemplateError(f"template: wrong arguments for {head}: {exc}") from exc
        else:
            if args or value is not _MISSING:
                raise TemplateError(f"template: {head} is not a function")
            value = _eval_arg(head, dot)
    return None if value is _MISSING else value


_MISSING = object()
