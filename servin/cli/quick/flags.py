"""A strict reader of one quick command's argv: the flags it knows, as click reads them
(``--name value``, ``--name=value``, ``-n value``, ``-nvalue``, ``--`` ending the flags), and
``None`` for anything else so the caller falls back to the full click CLI, which then gives
the exact usage error or runs the flag the quick front does not implement."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Spec:
    """The flags of one command: ``names`` maps every spelling (``-n``, ``--tail``) to its
    key; ``values`` are the keys taking a value, ``multiple`` those that may repeat."""

    names: dict[str, str]
    values: frozenset[str] = frozenset()
    multiple: frozenset[str] = frozenset()
    interspersed: bool = True  # flags after positionals (click's default); exec says False


@dataclass
class Parsed:
    """Flags given (flag keys to True, a value, or a list of values) and the positionals."""

    flags: dict[str, object] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)


def parse(argv: list[str], spec: Spec) -> Parsed | None:
    """``argv`` read by ``spec``, or None when it holds anything ``spec`` does not know."""
    out = Parsed()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            out.args.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            out.args.append(arg)
            if not spec.interspersed:
                out.args.extend(argv[i:])
                break
            continue
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if not arg.startswith("--") and len(arg) > 2 and arg[:2] in spec.names \
                and spec.names[arg[:2]] in spec.values:
            name, eq, inline = arg[:2], "=", arg[2:]  # -n100
        key = spec.names.get(name)
        if key is None:
            return None
        if key in spec.values:
            if eq:
                value = inline
            elif i < len(argv):
                value = argv[i]
                i += 1
            else:
                return None
            if key in spec.multiple:
                values = out.flags.setdefault(key, [])
                assert isinstance(values, list)
                values.append(value)
            else:
                out.flags[key] = value
        elif eq:
            return None
        else:
            out.flags[key] = True
    return out
