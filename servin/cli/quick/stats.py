"""``servin stats --no-stream`` on the quick path (the default table; the live view and
``--format`` run on click): the same requests and rows (``servin.cli.statsview``)."""

from __future__ import annotations

import sys

from servin.cli.quick.entry import QuickSession
from servin.cli.quick.flags import FlagSpec, parse_flags

TYPE_CHECKING = False
if TYPE_CHECKING:  # mypy checks a real NamedTuple; run time skips typing's import cost
    from typing import NamedTuple as Record
else:
    from servin.records import Record

STATS = "/servin.v1.Containers/Stats"
LIST = "/servin.v1.Containers/List"

SPEC = FlagSpec(booleans={"--no-stream": "no_stream", "--no-trunc": "no_trunc", "-a": "all",
                          "--all": "all"}, values={})


class StatsOptions(Record):
    """The containers named (none: every running one, or every one with ``-a``)."""

    containers: list[str]
    no_trunc: bool = False
    all: bool = False


def parse(args: list[str]) -> StatsOptions | None:
    """``stats --no-stream``'s flags, or None for anything the click command must handle."""
    parsed = parse_flags(SPEC, args)
    if parsed is None or "no_stream" not in parsed.flags:
        return None
    return StatsOptions(parsed.positional, no_trunc="no_trunc" in parsed.flags,
                        all="all" in parsed.flags)


def run(options: StatsOptions, session: QuickSession) -> int:
    """Print one table of the containers' usage as the click ``stats --no-stream`` does."""
    from servin.cli.statsview import as_given, render, stats_row
    from servin.client.quick.messages_io import StatsBatch, StatsRequest

    names, no_trunc = options.containers, options.no_trunc
    channel = session.channel()
    ids = names
    if options.all and not names:  # every container, stopped ones too (as click's -a)
        from servin.client.quick.lite import ListContainersRequest, ListContainersResponse

        reply = channel.unary(LIST, ListContainersRequest(all=True).encode())
        ids = [c.id for c in ListContainersResponse.decode(reply).containers]
    request = StatsRequest(ids=ids, stream=False, interval_ms=1000).encode()
    out = sys.stdout
    for data in channel.stream(STATS, request):
        batch = StatsBatch.decode(data)
        rows = [stats_row(s, as_given(s, names, no_trunc), no_trunc) for s in batch.stats]
        out.write("".join(line + "\n" for line in render(rows, None)))
        out.flush()
    return 0
