"""``servin ps`` on the quick path: the click command's flags, the same request and output."""

from __future__ import annotations

import sys

from servin.cli.quick.entry import QuickSession
from servin.cli.quick.flags import FlagSpec, parse_flags

LIST = "/servin.v1.Containers/List"

SPEC = FlagSpec(
    booleans={"-a": "all", "--all": "all", "-q": "quiet", "--quiet": "quiet",
              "-l": "latest", "--latest": "latest", "--no-trunc": "no_trunc",
              "-s": "size", "--size": "size"},
    values={"-n": "last", "--last": "last", "-f": "filter", "--filter": "filter"},
)


class PsOptions:
    """What ``ps`` was asked for."""

    def __init__(self, flags: set[str]) -> None:
        self.all = "all" in flags
        self.quiet = "quiet" in flags
        self.latest = "latest" in flags
        self.no_trunc = "no_trunc" in flags
        self.size = "size" in flags
        self.last = 0
        self.filters: dict[str, list[str]] = {}


def parse(args: list[str]) -> PsOptions | None:
    """``ps``'s flags, or None for anything the click command must handle."""
    parsed = parse_flags(SPEC, args)
    if parsed is None or parsed.positional:
        return None
    options = PsOptions(parsed.flags)
    for name, value in parsed.values:
        if name == "last":
            try:
                options.last = int(value)
            except ValueError:
                return None  # click's "not a valid integer"
        else:
            key, sep, item = value.partition("=")
            if not sep or not key:
                return None  # click's "bad format of filter"
            options.filters.setdefault(key, []).append(item)
    return options


def run(options: PsOptions, session: QuickSession) -> int:
    """List containers as the click ``ps`` does."""
    from servin.client.quick.lite import Filter, ListContainersRequest, ListContainersResponse

    limit = 1 if options.latest else options.last
    request = ListContainersRequest(
        all=options.all or limit > 0,
        filters=[Filter(key=k, values=v) for k, v in options.filters.items()],
        limit=limit,
        size=options.size,
    )
    reply = ListContainersResponse.decode(session.channel().unary(LIST, request.encode()))
    if options.quiet:
        ids = [c.id if options.no_trunc else c.id[:12] for c in reply.containers]
        if ids:
            sys.stdout.write("\n".join(ids) + "\n")
        return 0
    import time

    from servin.cli.tables import print_table, ps_cells, ps_columns

    now = time.time()
    print_table([h for h, _ in ps_columns(options.size)],
                [ps_cells(c, options.no_trunc, options.size, now) for c in reply.containers])
    return 0
