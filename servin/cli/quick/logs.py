"""``servin logs`` on the quick path: the click command's flags, the same request, the same
output (``servin.cli.logwrite`` writes both; flushed after each chunk when following)."""

from __future__ import annotations

from servin.cli.quick.entry import QuickSession
from servin.cli.quick.flags import FlagSpec, parse_flags

TYPE_CHECKING = False
if TYPE_CHECKING:  # mypy checks a real NamedTuple; run time skips typing's import cost
    from typing import NamedTuple as Record
else:
    from servin.records import Record

LOGS = "/servin.v1.Containers/Logs"

SPEC = FlagSpec(
    booleans={"-t": "timestamps", "--timestamps": "timestamps", "--details": "details",
              "-f": "follow", "--follow": "follow"},
    values={"-n": "tail", "--tail": "tail", "--since": "since", "--until": "until"},
)


class LogsOptions(Record):
    """What ``logs`` was asked for (times in ns since the epoch, 0 unset)."""

    container: str
    tail: int = -1
    since: int = 0
    until: int = 0
    timestamps: bool = False
    details: bool = False
    follow: bool = False


def parse(args: list[str]) -> LogsOptions | None:
    """``logs``'s flags, or None for anything the click command must handle (bad values:
    click says what is wrong with them)."""
    from servin.cli.logwrite import parse_tail, parse_time_ns
    from servin.errors import ServinError

    parsed = parse_flags(SPEC, args)
    if parsed is None or len(parsed.positional) != 1:
        return None
    values: dict[str, int] = {}
    try:
        for name, value in parsed.values:
            if name == "tail":
                values[name] = parse_tail(value)
            else:
                values[name] = parse_time_ns(value, f"--{name}")
    except ServinError:
        return None
    return LogsOptions(parsed.positional[0], timestamps="timestamps" in parsed.flags,
                       details="details" in parsed.flags, follow="follow" in parsed.flags,
                       **values)


def run(options: LogsOptions, session: QuickSession) -> int:
    """Write the container's log as the click ``logs`` does."""
    from servin.cli.logwrite import write_logs
    from servin.client.quick.lite import Timestamp
    from servin.client.quick.messages_io import ContainerLogsRequest, LogChunk

    # since/until always sent, unset ones empty, as the click command sends them.
    since, until = (Timestamp(seconds=ns // 10**9, nanos=ns % 10**9)
                    for ns in (options.since, options.until))
    request = ContainerLogsRequest(
        id=options.container, follow=options.follow, stdout=True, stderr=True,
        tail=options.tail, since=since, until=until, timestamps=options.timestamps,
        details=options.details)
    replies = session.channel().stream(LOGS, request.encode())
    write_logs(map(LogChunk.decode, replies), timestamps=options.timestamps,
               details=options.details, follow=options.follow)
    return 0
