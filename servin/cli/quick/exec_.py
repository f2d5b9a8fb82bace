"""``servin exec`` without a terminal or stdin on the quick path (``-i``, ``-t`` and
``--detach-keys`` run on click): ExecCreate, then one ExecStart whose request side is
half-closed with its first message (no stdin to forward: the daemon reads the end of the
requests as nothing more to come), the output written as it comes
(``servin.cli.execout``), the process's exit code as ours."""

from __future__ import annotations

from servin.cli.quick.entry import QuickSession
from servin.cli.quick.flags import FlagSpec, parse_flags

TYPE_CHECKING = False
if TYPE_CHECKING:  # mypy checks a real NamedTuple; run time skips typing's import cost
    from typing import NamedTuple as Record
else:
    from servin.records import Record

SERVICE = "/servin.v1.Containers/"

SPEC = FlagSpec(
    booleans={"-d": "detach", "--detach": "detach", "--privileged": "privileged"},
    values={"-e": "env", "--env": "env", "--env-file": "env_file", "-u": "user",
            "--user": "user", "-w": "workdir", "--workdir": "workdir"},
    interspersed=False,
)


class ExecOptions(Record):
    """What ``exec`` was asked to run, and how."""

    container: str
    command: list[str]
    detach: bool = False
    privileged: bool = False
    env: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    user: str = ""
    workdir: str = ""


def parse(args: list[str]) -> ExecOptions | None:
    """``exec``'s flags, or None for anything the click command must handle."""
    parsed = parse_flags(SPEC, args)
    if parsed is None or len(parsed.positional) < 2:
        return None
    lists: dict[str, list[str]] = {"env": [], "env_file": []}
    single: dict[str, str] = {}
    for name, value in parsed.values:
        if name in lists:
            lists[name].append(value)
        else:
            single[name] = value
    return ExecOptions(parsed.positional[0], parsed.positional[1:],
                       detach="detach" in parsed.flags, privileged="privileged" in parsed.flags,
                       env=tuple(lists["env"]), env_files=tuple(lists["env_file"]), **single)


def run(options: ExecOptions, session: QuickSession) -> int:
    """Run the command in the container as the click ``exec`` does; its exit code."""
    from servin.cli.execout import env_items, exec_failure, relay_output
    from servin.client.errors import StatusError, translate
    from servin.client.quick.messages_io import (
        AttachOutput,
        ExecCreateRequest,
        ExecCreateResponse,
        ExecDetail,
        ExecInput,
        ExecInspectRequest,
    )

    detach = options.detach
    create = ExecCreateRequest(
        container_id=options.container, cmd=options.command,
        env=env_items(options.env, options.env_files), user=options.user,
        working_dir=options.workdir, attach_stdout=not detach, attach_stderr=not detach,
        privileged=options.privileged)
    channel = session.channel()
    exec_id = ExecCreateResponse.decode(channel.unary(SERVICE + "ExecCreate", create.encode())).id
    first = ExecInput(exec_id=exec_id, detach=detach).encode()
    try:
        outputs = map(AttachOutput.decode, channel.bidi(SERVICE + "ExecStart", first))
        if detach:
            for _ in outputs:
                pass
            return 0
        outcome = relay_output(outputs, tty=False)
    except StatusError as exc:  # 126/127 for a command that cannot run, as click's exec
        raise exec_failure(translate(exc, session.url)) from None
    if outcome.exit_code is not None:
        return outcome.exit_code
    # The stream ended without the exit status: ask for it.
    inspect = ExecInspectRequest(exec_id=exec_id).encode()
    return ExecDetail.decode(channel.unary(SERVICE + "ExecInspect", inspect)).exit_code
