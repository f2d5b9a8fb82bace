"""``servin stats --no-stream`` on the quick path (the default table; streaming, ``-a`` and
``--format`` run on click): the same request and rows (``servin.cli.statsview``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from servin.cli.quick.entry import QuickSession
from servin.cli.quick.flags import FlagSpec, parse_flags

STATS = "/servin.v1.Containers/Stats"

SPEC = FlagSpec(booleans={"--no-stream": "no_stream", "--no-trunc": "no_trunc"}, values={})


@dataclass
class StatsOptions:
    """The containers named (none: every running one) and ``--no-trunc``."""

    containers: list[str]
    no_trunc: bool = False


def parse(args: list[str]) -> StatsOptions | None:
    """``stats --no-stream``'s flags, or None for anything the click command must handle."""
    parsed = parse_flags(SPEC, args)
    if parsed is None or "no_stream" not in parsed.flags:
        return None
    return StatsOptions(parsed.positional, no_trunc="no_trunc" in parsed.flags)


def run(options: StatsOptions, session: QuickSession) -> int:
    """Print one table of the containers' usage as the click ``stats --no-stream`` does."""
    from servin.cli.statsview import as_given, render, stats_row
    from servin.client.quick.messages_io import StatsBatch, StatsRequest

    names, no_trunc = options.containers, options.no_trunc
    request = StatsRequest(ids=names, stream=False, interval_ms=1000).encode()
    out = sys.stdout
    for data in session.channel().stream(STATS, request):
        batch = StatsBatch.decode(data)
        rows = [stats_row(s, as_given(s, names, no_trunc), no_trunc) for s in batch.stats]
        out.write("".join(line + "\n" for line in render(rows, None)))
        out.flush()
    return 0
