"""A small Go text/template engine for ``--format``, as docker's CLI users write them.

Supported, with Go's semantics:

- actions ``{{.Field}}``, ``{{.A.B}}``, ``{{.}}``, ``{{$}}``, variables (``{{$x := .A}}``,
  ``{{range $i, $e := .List}}``), parenthesised pipelines (``{{(index .L 0).Name}}``),
  pipes (``{{.Name | upper}}``), string (``"..."`` with escapes, raw `` `...` ``), number,
  ``true``/``false``/``nil`` literals, ``{{/* comments */}}`` and ``{{- -}}`` trimming;
- blocks ``{{if}}``, ``{{else if}}``, ``{{else}}``, ``{{range}}`` (lists and maps, maps in key
  order), ``{{with}}``, each closed by ``{{end}}``;
- functions: docker's ``json``, ``join``, ``lower``, ``upper``, ``title``, ``split``,
  ``truncate``, ``pad``, and Go's ``print``, ``printf``, ``println``, ``index``, ``len``,
  ``slice``, ``eq``, ``ne``, ``lt``, ``le``, ``gt``, ``ge``, ``and``, ``or``, ``not``.

Values print as Go prints them: maps as ``map[k:v]``, lists as ``[a b]``, nil as ``<no value>``.
Text with a ``Label`` method (``servin.cli.output.LabelText``: docker's ``.Labels`` column,
``a=1,b=2``) also works with ``index``, and rows holding one under ``Labels`` answer
``{{.Label "key"}}``, as docker's list rows do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from servin.errors import InvalidArgument


class TemplateError(InvalidArgument):
    """The template does not parse or fails on the data."""


# --- values as Go prints them ----------------------------------------------------------------


def go_str(value: Any) -> str:
    """``value`` printed as Go's fmt %v prints it."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value != int(value) or abs(value) >= 1e21 else str(int(value))
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_str(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    return str(value)


def _truthy(value: Any) -> bool:
    """Go's notion of "non-empty": false, 0, nil, "" and empty collections are false."""
    if value is None or value is False:
        return False
    if isinstance(value, int | float | str | list | tuple | dict):
        return bool(value)
    return True


# --- functions ---------------------------------------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _join(items: Any, sep: str) -> str:
    return str(sep).join(go_str(i) for i in (items or []))


def _index(container: Any, *keys: Any) -> Any:
    for key in keys:
        label = getattr(container, "Label", None)
        if isinstance(container, str) and callable(label):
            container = label(str(key))  # servin.cli.output.LabelText
        elif isinstance(container, dict):
            if key in container:
                container = container[key]
            else:  # a map's zero value: "" for string maps, else nil
                values = list(container.values())
                container = "" if values and all(isinstance(v, str) for v in values) else None
        elif isinstance(container, list | tuple | str):
            try:
                container = container[int(key)]
            except (IndexError, ValueError):
                raise TemplateError(f"template: index out of range: {key}") from None
        elif container is None:
            raise TemplateError("template: index of untyped nil")
        else:
            raise TemplateError(f"template: can't index item of type {type(container).__name__}")
    return container


def _slice(value: Any, *bounds: Any) -> Any:
    if not isinstance(value, list | tuple | str):
        raise TemplateError(f"template: can't slice item of type {type(value).__name__}")
    ints = [int(b) for b in bounds]
    if len(ints) > 2:
        raise TemplateError("template: slice takes at most 2 indexes here")
    return value[slice(*ints)] if ints else value


def _len(value: Any) -> int:
    if value is None:
        raise TemplateError("template: len of nil pointer")
    try:
        return len(value)
    except TypeError:
        raise TemplateError(f"template: len of type {type(value).__name__}") from None


def _truncate(value: Any, n: Any) -> str:
    return go_str(value)[: int(n)]


def _pad(value: Any, left: Any, right: Any) -> str:
    return " " * int(left) + go_str(value) + " " * int(right)


_VERB_RE = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+))?([a-zA-Z%])")


def _printf(fmt: Any, *args: Any) -> str:
    """Go's fmt.Sprintf for the verbs templates use: %v %s %q %d %f %g %e %x %X %o %t %c %%."""
    out: list[str] = []
    pos = 0
    remaining = list(args)
    text = go_str(fmt)
    for m in _VERB_RE.finditer(text):
        out.append(text[pos : m.start()])
        pos = m.end()
        flags, width, precision, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        if not remaining:
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = remaining.pop(0)
        spec = flags + (width or "") + (f".{precision}" if precision is not None else "")
        try:
            out.append(_format_verb(arg, spec, verb))
        except (TypeError, ValueError):
            out.append(f"%!{verb}({type(arg).__name__}={go_str(arg)})")
    out.append(text[pos:])
    if remaining:
        out.append("%!(EXTRA " + ", ".join(go_str(a) for a in remaining) + ")")
    return "".join(out)


def _format_verb(arg: Any, spec: str, verb: str) -> str:
    if verb in "vs":
        return ("%" + spec + "s") % go_str(arg)
    if verb == "q":
        return ("%" + spec + "s") % json.dumps(go_str(arg))
    if verb == "t":
        return ("%" + spec + "s") % go_str(bool(arg))
    if verb in "dxXoc":
        if isinstance(arg, bool) or not isinstance(arg, int):
            raise TypeError(verb)
        return ("%" + spec + verb) % arg
    if verb in "feEgG":
        if isinstance(arg, bool) or not isinstance(arg, int | float):
            raise TypeError(verb)
        return ("%" + spec + verb) % arg
    raise ValueError(verb)


def _compare(op: str) -> Callable[..., bool]:
    def compare(a: Any, *others: Any) -> bool:
        if not others:
            raise TemplateError(f"template: {op}: missing argument for comparison")
        try:
            if op == "eq":
                return any(a == b for b in others)
            b = others[0]
            return bool(
                {"ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]
            )
        except TypeError:
            raise TemplateError(f"template: {op}: incompatible types for comparison") from None

    return compare


def _and(*args: Any) -> Any:
    for a in args:
        if not _truthy(a):
            return a
    return args[-1]


def _or(*args: Any) -> Any:
    for a in args:
        if _truthy(a):
            return a
    return args[-1]


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "json": _json,
    "join": _join,
    "lower": lambda s: go_str(s).lower(),
    "upper": lambda s: go_str(s).upper(),
    "title": lambda s: go_str(s).title(),
    "split": lambda s, sep: go_str(s).split(sep),
    "truncate": _truncate,
    "pad": _pad,
    "print": lambda *a: "".join(go_str(x) for x in a),
    "printf": _printf,
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "index": _index,
    "slice": _slice,
    "len": _len,
    "eq": _compare("eq"),
    "ne": _compare("ne"),
    "lt": _compare("lt"),
    "le": _compare("le"),
    "gt": _compare("gt"),
    "ge": _compare("ge"),
    "and": _and,
    "or": _or,
    "not": lambda v: not _truthy(v),
}

# --- lexing --------------------------------------------------------------------------------------

_ACTION_RE = re.compile(r"\{\{(-[ \t\r\n])?(.*?)([ \t\r\n]-)?\}\}", re.S)
_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![.\w]))
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<pipe>\|)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<variable>\$\w*(?:\.\w+)*)
  | (?P<field>(?:\.\w+)+|\.)
  | (?P<ident>[A-Za-z_]\w*)
    """,
    re.X,
)


@dataclass
class _Tok:
    kind: str
    text: str


def _lex_action(body: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(body):
        m = _TOKEN_RE.match(body, pos)
        if m is None:
            raise TemplateError(f"template: unexpected {body[pos]!r} in {{{{{body}}}}}")
        kind = m.lastgroup or ""
        if kind != "space":
            tokens.append(_Tok(kind, m.group()))
        pos = m.end()
    return tokens


# --- syntax tree -------------------------------------------------------------------------------


@dataclass
class _Text:
    text: str


@dataclass
class _Operand:
    """A term, then field names applied to its value: ``(pipe).A.B`` or ``$x.A``."""

    kind: str  # field, variable, literal, func, pipe
    value: Any
    chain: list[str] = field(default_factory=list)


@dataclass
class _Pipe:
    decl: list[str]  # variables declared ($x :=) or assigned ($x =)
    assign: bool
    commands: list[list[_Operand]]


@dataclass
class _Action:
    pipe: _Pipe


@dataclass
class _Block:
    kind: str  # if, range, with
    pipe: _Pipe
    body: list[Any] = field(default_factory=list)
    else_body: list[Any] = field(default_factory=list)


class _Parser:
    def __init__(self, tokens: list[_Tok], source: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.source = source

    def peek(self) -> _Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise TemplateError(f"template: unexpected end of {{{{{self.source}}}}}")
        self.pos += 1
        return tok

    def pipeline(self, allow_two: bool = False) -> _Pipe:
        decl: list[str] = []
        assign = False
        # $x := ... / $x = ... / $i, $e := ... (range only)
        save = self.pos
        names: list[str] = []
        while (tok := self.peek()) is not None and tok.kind == "variable" and "." not in tok.text:
            names.append(self.take().text)
            nxt = self.peek()
            if nxt is not None and nxt.kind == "comma" and allow_two and len(names) == 1:
                self.take()
                continue
            break
        nxt = self.peek()
        if names and nxt is not None and nxt.kind in ("declare", "assign"):
            self.take()
            decl, assign = names, nxt.kind == "assign"
        else:
            self.pos = save
        commands: list[list[_Operand]] = []
        while True:
            command = self.command()
            if not command:
                raise TemplateError(f"template: missing value in {{{{{self.source}}}}}")
            commands.append(command)
            tok = self.peek()
            if tok is None or tok.kind == "rparen":
                break
            if tok.kind != "pipe":
                raise TemplateError(f"template: unexpected {tok.text!r} in {{{{{self.source}}}}}")
            self.take()
        return _Pipe(decl, assign, commands)

    def command(self) -> list[_Operand]:
        operands: list[_Operand] = []
        while (tok := self.peek()) is not None and tok.kind not in ("pipe", "rparen"):
            operands.append(self.operand())
        return operands

    def operand(self) -> _Operand:
        tok = self.take()
        if tok.kind == "lparen":
            inner = self.pipeline()
            if self.take().kind != "rparen":
                raise TemplateError(f"template: unclosed '(' in {{{{{self.source}}}}}")
            op = _Operand("pipe", inner)
        elif tok.kind == "field":
            op = _Operand("field", None, [p for p in tok.text.split(".") if p])
        elif tok.kind == "variable":
            name, *chain = tok.text.split(".")
            op = _Operand("variable", name, chain)
        elif tok.kind == "string":
            try:
                op = _Operand("literal", json.loads(tok.text))
            except ValueError:
                raise TemplateError(f"template: bad string {tok.text}") from None
        elif tok.kind == "raw":
            op = _Operand("literal", tok.text[1:-1])
        elif tok.kind == "number":
            text = tok.text
            op = _Operand("literal", float(text) if any(c in text for c in ".eE") else int(text))
        elif tok.kind == "ident":
            if tok.text in ("true", "false"):
                op = _Operand("literal", tok.text == "true")
            elif tok.text == "nil":
                op = _Operand("literal", None)
            elif tok.text in FUNCTIONS:
                op = _Operand("func", tok.text)
            else:
                raise TemplateError(f'template: function "{tok.text}" not defined')
        else:
            raise TemplateError(f"template: unexpected {tok.text!r} in {{{{{self.source}}}}}")
        # (pipe).Field chains directly after a closing parenthesis
        while (nxt := self.peek()) is not None and nxt.kind == "field" and op.kind == "pipe":
            if nxt.text == ".":
                break
            op.chain += [p for p in self.take().text.split(".") if p]
        return op


def _parse(source: str) -> list[Any]:
    """The template's node tree (raises TemplateError on any syntax error)."""
    root: list[Any] = []
    # stack entries: (the innermost open block, the body being filled)
    stack: list[tuple[_Block | None, list[Any]]] = [(None, root)]
    pos = 0
    trim_next = False
    for m in _ACTION_RE.finditer(source):
        text = source[pos : m.start()]
        if trim_next:
            text = text.lstrip()
        if m.group(1):
            text = text.rstrip()
        if text:
            stack[-1][1].append(_Text(text))
        trim_next = bool(m.group(3))
        pos = m.end()
        body = m.group(2).strip()
        if body.startswith("/*"):
            if not body.endswith("*/"):
                raise TemplateError("template: unclosed comment")
            continue
        tokens = _lex_action(body)
        if not tokens:
            raise TemplateError("template: missing value for command")
        head = tokens[0].text if tokens[0].kind == "ident" else ""
        block, current = stack[-1]
        if head in ("if", "range", "with"):
            new = _Block(head, _Parser(tokens[1:], body).pipeline(allow_two=head == "range"))
            current.append(new)
            stack.append((new, new.body))
        elif head == "else":
            if block is None or current is block.else_body:
                raise TemplateError("template: unexpected {{else}}")
            if len(tokens) > 1:  # {{else if ...}} / {{else with ...}}: a block inside else
                kind = tokens[1].text
                if kind not in ("if", "with") or kind != block.kind:
                    raise TemplateError(f"template: unexpected {{{{{body}}}}}")
                chained = _Block(kind, _Parser(tokens[2:], body).pipeline())
                chained.else_body = []
                block.else_body.append(chained)
                stack[-1] = (chained, chained.body)  # the one {{end}} closes the whole chain
            else:
                stack[-1] = (block, block.else_body)
        elif head == "end":
            if block is None or len(tokens) > 1:
                raise TemplateError("template: unexpected {{end}}")
            stack.pop()
        elif head == "define" or head == "template" or head == "block":
            raise TemplateError(f"template: {head} is not supported in --format")
        else:
            parser = _Parser(tokens, body)
            current.append(_Action(parser.pipeline()))
            if parser.peek() is not None:
                raise TemplateError(f"template: unexpected ')' in {{{{{body}}}}}")
    tail = source[pos:]
    if trim_next:
        tail = tail.lstrip()
    if "{{" in tail:
        raise TemplateError(f"template: unclosed action in {source!r}")
    if tail:
        stack[-1][1].append(_Text(tail))
    if len(stack) != 1:
        raise TemplateError("template: unexpected EOF (missing {{end}})")
    return root


# --- execution ---------------------------------------------------------------------------------


class Template:
    """A parsed template; ``render(data)`` produces its text."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.nodes = _parse(source)

    def render(self, data: Any) -> str:
        """Execute the template against ``data`` (dicts, lists, scalars)."""
        out: list[str] = []
        _run(self.nodes, data, [{"$": data}], out)
        return "".join(out)


def _run(nodes: list[Any], dot: Any, scopes: list[dict[str, Any]], out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.text)
        elif isinstance(node, _Action):
            value = _pipe(node.pipe, dot, scopes)
            if not node.pipe.decl:
                out.append(go_str(value))
        elif node.kind in ("if", "with"):
            scopes.append({})
            value = _pipe(node.pipe, dot, scopes)
            if _truthy(value):
                _run(node.body, value if node.kind == "with" else dot, scopes, out)
            else:
                _run(node.else_body, dot, scopes, out)
            scopes.pop()
        else:
            scopes.append({})
            value = _eval_commands(node.pipe.commands, dot, scopes)
            if isinstance(value, dict):
                pairs = sorted(value.items())
            elif isinstance(value, list | tuple):
                pairs = list(enumerate(value))
            elif value is None:
                pairs = []
            elif isinstance(value, int) and not isinstance(value, bool):
                pairs = [(i, i) for i in range(value)]
            else:
                raise TemplateError(f"template: range can't iterate over {go_str(value)}")
            if not pairs:
                _run(node.else_body, dot, scopes, out)
            for key, item in pairs:
                names = node.pipe.decl
                if len(names) == 1:
                    scopes[-1][names[0]] = item
                elif len(names) == 2:
                    scopes[-1][names[0]], scopes[-1][names[1]] = key, item
                _run(node.body, item, scopes, out)
            scopes.pop()


def _pipe(pipe: _Pipe, dot: Any, scopes: list[dict[str, Any]]) -> Any:
    value = _eval_commands(pipe.commands, dot, scopes)
    for name in pipe.decl:
        if pipe.assign:
            for scope in reversed(scopes):
                if name in scope:
                    scope[name] = value
                    break
            else:
                raise TemplateError(f"template: undefined variable: {name}")
        else:
            scopes[-1][name] = value
    return value


def _eval_commands(commands: list[list[_Operand]], dot: Any, scopes: list[dict[str, Any]]) -> Any:
    value: Any = _MISSING
    for command in commands:
        head, args = command[0], command[1:]
        if head.kind == "func":
            call_args = [_operand(a, dot, scopes) for a in args]
            if value is not _MISSING:
                call_args.append(value)
            try:
                value = FUNCTIONS[head.value](*call_args)
            except TypeError as exc:
                raise TemplateError(f"template: wrong arguments for {head.value}: {exc}") from exc
        elif head.kind == "field" and (args or value is not _MISSING):
            # a method call with arguments: {{.Label "key"}}
            target = _lookup(dot, head.chain[:-1])
            name = head.chain[-1] if head.chain else ""
            if name == "Label" and isinstance(target, dict):  # docker's rows: {{.Label "k"}}
                target = target.get("Labels")
            method = getattr(target, name, None) if name[:1].isupper() else None
            if not callable(method):
                raise TemplateError(f"template: {'.'.join(head.chain)} is not a method")
            call_args = [_operand(a, dot, scopes) for a in args]
            if value is not _MISSING:
                call_args.append(value)
            try:
                value = method(*call_args)
            except TypeError as exc:
                raise TemplateError(f"template: wrong arguments: {exc}") from exc
        else:
            if args or value is not _MISSING:
                raise TemplateError("template: can't give argument to non-function")
            value = _operand(head, dot, scopes)
    return None if value is _MISSING else value


def _operand(op: _Operand, dot: Any, scopes: list[dict[str, Any]]) -> Any:
    if op.kind == "literal":
        return op.value
    if op.kind == "func":
        try:
            return FUNCTIONS[op.value]()
        except TypeError as exc:
            raise TemplateError(f"template: wrong arguments for {op.value}: {exc}") from exc
    if op.kind == "field":
        return _lookup(dot, op.chain)
    if op.kind == "variable":
        for scope in reversed(scopes):
            if op.value in scope:
                return _lookup(scope[op.value], op.chain)
        raise TemplateError(f"template: undefined variable: {op.value}")
    return _lookup(_eval_commands(op.value.commands, dot, scopes), op.chain)


def _lookup(value: Any, chain: list[str]) -> Any:
    for part in chain:
        if isinstance(value, dict):
            if part not in value:
                # docker evaluates inspect templates on its Go structs first, whose field
                # names differ from the JSON keys only in case (ID for "Id").
                matches = [k for k in value if isinstance(k, str) and k.lower() == part.lower()]
                if len(matches) != 1:
                    raise TemplateError(f"template: can't evaluate field {part}")
                part = matches[0]
            value = value[part]
        elif value is None:
            return None
        else:  # Go templates see exported (capitalised) fields and methods only
            attr = getattr(value, part, _MISSING) if part[:1].isupper() else _MISSING
            if attr is _MISSING:
                raise TemplateError(f"template: can't evaluate field {part}")
            value = attr() if callable(attr) and not isinstance(attr, type) else attr
    return value


_MISSING = object()
