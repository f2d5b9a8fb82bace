"""The quick front's ``logs``, ``stats --no-stream`` and non-interactive ``exec``.

Each ``*_command(argv)`` reads the command's argv (what follows the command name) and
returns a ``Runner``, or None when argv holds anything it does not implement (``logs -f``,
``stats`` streaming or ``--format``, ``exec -i/-t``, unknown or malformed flags): the entry
then runs the click CLI, which handles those and prints its own usage errors. A runner is
given the connected channel and the daemon's address (for error text) and returns the exit
code; failures are raised as ``servin.errors`` exactly as the click path raises them, and
the output is written by the same code (``servin.cli.logwrite``, ``statsview``,
``execout``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from servin.cli.quick.flags import Spec, parse
from servin.client.quick import messages_io as msg

_SERVICE = "/servin.v1.Containers/"


class Channel(Protocol):
    """The calls of ``servin.client.quick.wire.QuickChannel`` these commands make."""

    def unary(self, path: str, request: bytes, timeout: float | None = None) -> bytes: ...
    def stream(self, path: str, request: bytes) -> Iterator[bytes]: ...
    def bidi(self, path: str, first: bytes, half_close: bool = True) -> Iterable[bytes]: ...


Runner = Callable[[Channel, str], int]


def _translated(url: str) -> Callable[[BaseException], BaseException]:
    from servin.client.errors import StatusError, translate

    def convert(exc: BaseException) -> BaseException:
        return translate(exc, url) if isinstance(exc, StatusError) else exc

    return convert


def _unary(channel: Channel, url: str, method: str, request: bytes, reply: str) -> msg.Message:
    from servin.client.errors import StatusError

    try:
        return msg.decode(reply, channel.unary(_SERVICE + method, request))
    except StatusError as exc:
        raise _translated(url)(exc) from None


def _replies(start: Callable[[], Iterable[bytes]], url: str, reply: str
             ) -> Iterator[msg.Message]:  # fmt: skip
    """The replies of the call ``start`` makes, decoded; its failure (at the start or on the
    way) turned into the servin error."""
    from servin.client.errors import StatusError

    try:
        for data in start():
            yield msg.decode(reply, data)
    except StatusError as exc:
        raise _translated(url)(exc) from None


# -- logs --------------------------------------------------------------------------------------

_LOGS = Spec(
    names={"-n": "tail", "--tail": "tail", "--since": "since", "--until": "until",
           "-t": "timestamps", "--timestamps": "timestamps", "--details": "details"},
    values=frozenset({"tail", "since", "until"}),
)


def logs_command(argv: list[str]) -> Runner | None:
    """``logs [--tail N] [-t] [--since T] [--until T] [--details] CONTAINER`` (not ``-f``)."""
    from servin.cli.logwrite import parse_tail, parse_time_ns
    from servin.errors import ServinError

    parsed = parse(argv, _LOGS)
    if parsed is None or len(parsed.args) != 1:
        return None
    f = parsed.flags
    try:
        tail = parse_tail(str(f.get("tail", "all")))
        since = parse_time_ns(str(f.get("since", "")), "--since")
        until = parse_time_ns(str(f.get("until", "")), "--until")
    except ServinError:
        return None  # the click path says it
    timestamps, details = bool(f.get("timestamps")), bool(f.get("details"))
    request = msg.encode("ContainerLogsRequest", id=parsed.args[0], stdout=True, stderr=True,
                         tail=tail, since=since, until=until, timestamps=timestamps,
                         details=details)

    def run(channel: Channel, url: str) -> int:
        from servin.cli.logwrite import write_logs

        chunks = _replies(lambda: channel.stream(_SERVICE + "Logs", request), url, "LogChunk")
        write_logs(chunks, timestamps=timestamps, details=details, follow=False)
        return 0

    return run


# -- stats -------------------------------------------------------------------------------------

_STATS = Spec(names={"--no-stream": "no_stream", "--no-trunc": "no_trunc"})


def stats_command(argv: list[str]) -> Runner | None:
    """``stats --no-stream [--no-trunc] [CONTAINER...]`` with the default table."""
    parsed = parse(argv, _STATS)
    if parsed is None or not parsed.flags.get("no_stream"):
        return None
    names = parsed.args
    no_trunc = bool(parsed.flags.get("no_trunc"))
    request = msg.encode("StatsRequest", ids=names, stream=False, interval_ms=1000)

    def run(channel: Channel, url: str) -> int:
        from servin.cli.statsview import as_given, render, stats_row

        out = sys.stdout
        batches = _replies(lambda: channel.stream(_SERVICE + "Stats", request), url, "StatsBatch")
        for batch in batches:
            rows = [stats_row(s, as_given(s, names, no_trunc), no_trunc) for s in batch.stats]
            out.write("".join(line + "\n" for line in render(rows, None)))
            out.flush()
        return 0

    return run


# -- exec --------------------------------------------------------------------------------------

_EXEC = Spec(
    names={"-d": "detach", "--detach": "detach", "-e": "env", "--env": "env",
           "--env-file": "env_file", "--privileged": "privileged", "-u": "user",
           "--user": "user", "-w": "workdir", "--workdir": "workdir"},
    values=frozenset({"env", "env_file", "user", "workdir"}),
    multiple=frozenset({"env", "env_file"}),
    interspersed=False,
)


def exec_command(argv: list[str]) -> Runner | None:
    """``exec [-d] [-e K=V] [--env-file F] [-u U] [-w D] [--privileged] CONTAINER CMD...``
    without a terminal or stdin (``-i``/``-t`` run on the click path)."""
    parsed = parse(argv, _EXEC)
    if parsed is None or len(parsed.args) < 2:
        return None
    f = parsed.flags
    container, command = parsed.args[0], parsed.args[1:]
    detach = bool(f.get("detach"))

    def strings(key: str) -> list[str]:
        value = f.get(key, [])
        return value if isinstance(value, list) else []

    def run(channel: Channel, url: str) -> int:
        from servin.cli.execout import env_items, exec_failure, relay_output
        from servin.errors import ServinError

        create = msg.encode(
            "ExecCreateRequest", container_id=container, cmd=command,
            env=env_items(strings("env"), strings("env_file")), user=str(f.get("user", "")),
            working_dir=str(f.get("workdir", "")), attach_stdout=not detach,
            attach_stderr=not detach, privileged=bool(f.get("privileged")))
        exec_id = _unary(channel, url, "ExecCreate", create, "ExecCreateResponse").id
        # No stdin to forward: the request side half-closes with its one message, and the
        # daemon's relay reads that as nothing more to come (not as the end of a stdin).
        first = msg.encode("ExecInput", exec_id=exec_id, detach=detach)
        outputs = _replies(lambda: channel.bidi(_SERVICE + "ExecStart", first, half_close=True),
                           url, "AttachOutput")
        try:
            if detach:
                for _ in outputs:
                    pass
                return 0
            outcome = relay_output(outputs, tty=False)
        except ServinError as exc:
            raise exec_failure(exc) from None
        if outcome.exit_code is not None:
            return outcome.exit_code
        detail = _unary(channel, url, "ExecInspect",
                        msg.encode("ExecInspectRequest", exec_id=exec_id), "ExecDetail")
        return int(detail.exit_code)

    return run


COMMANDS: dict[str, Callable[[list[str]], Runner | None]] = {
    "logs": logs_command,
    "stats": stats_command,
    "exec": exec_command,
}
"""The commands this module runs: the command name to its argv reader."""
