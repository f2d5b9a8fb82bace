"""Command-line flags as click parses them, for the quick commands' small flag sets.

Long flags (``--last 3``, ``--last=3``), short ones (``-n 3``, ``-n3``) and clusters of short
flags (``-aq``, ``-an3``) are read as click reads them; anything not in the spec (or
``--help``) makes the parse fail, and the caller leaves the command to click.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FlagSpec:
    """A command's flags: boolean flags and flags taking a value, by spelling -> name."""

    booleans: dict[str, str]
    values: dict[str, str]
    # Whether positional arguments end option parsing (exec: after the container and the
    # command, everything belongs to the command).
    interspersed: bool = True
    max_positional_before_stop: int = 0  # with interspersed=False: positionals before stop


@dataclass
class Parsed:
    """Flags seen (names), values in order (name, value), positional arguments."""

    flags: set[str] = field(default_factory=set)
    values: list[tuple[str, str]] = field(default_factory=list)
    positional: list[str] = field(default_factory=list)


def parse_flags(spec: FlagSpec, args: list[str]) -> Parsed | None:
    """Parse ``args`` by ``spec``; None if any flag is not in it."""
    out = Parsed()
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            out.positional.extend(args[i:])
            break
        if not arg.startswith("-") or arg == "-":
            out.positional.append(arg)
            if not spec.interspersed and len(out.positional) > spec.max_positional_before_stop:
                out.positional.extend(args[i:])
                break
            continue
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if name in spec.booleans and not eq:
                out.flags.add(spec.booleans[name])
            elif name in spec.values:
                if not eq:
                    if i >= len(args):
                        return None
                    value = args[i]
                    i += 1
                out.values.append((spec.values[name], value))
            else:
                return None
            continue
        # one short flag or a cluster of them: -a, -aq, -n3, -an 3
        for pos in range(1, len(arg)):
            flag = "-" + arg[pos]
            if flag in spec.booleans:
                out.flags.add(spec.booleans[flag])
            elif flag in spec.values:
                value = arg[pos + 1 :]
                if not value:
                    if i >= len(args):
                        return None
                    value = args[i]
                    i += 1
                out.values.append((spec.values[flag], value))
                break
            else:
                return None
    return out
