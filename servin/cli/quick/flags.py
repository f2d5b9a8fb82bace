"""Command-line flags as click parses them, for the quick commands' small flag sets.

Long flags (``--last 3``, ``--last=3``), short ones (``-n 3``, ``-n3``) and clusters of short
flags (``-aq``, ``-an3``) are read as click reads them; anything not in the spec (or
``--help``) makes the parse fail, and the caller leaves the command to click.
"""

from __future__ import annotations


class FlagSpec:
    """A command's flags: boolean flags and flags taking a value, by spelling -> name.

    With ``interspersed=False``, option parsing stops after ``max_positional_before_stop``
    positional arguments (exec: after the container, everything belongs to the command).
    """

    def __init__(self, booleans: dict[str, str], values: dict[str, str],
                 interspersed: bool = True, max_positional_before_stop: int = 0) -> None:
        self.booleans = booleans
        self.values = values
        self.interspersed = interspersed
        self.max_positional_before_stop = max_positional_before_stop


class Parsed:
    """Flags seen (names), values in order (name, value), positional arguments."""

    def __init__(self) -> None:
        self.flags: set[str] = set()
        self.values: list[tuple[str, str]] = []
        self.positional: list[str] = []


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
