"""Interactive commands: ``exec`` (a command in a running container) and ``attach``."""

from __future__ import annotations

import sys

import click

from servin.cli.execout import env_items, exec_failure
from servin.cli.session import get_client
from servin.cli.terminal import check_tty
from servin.errors import Conflict, ServinError

_EXEC_CONTEXT = {"allow_interspersed_args": False}


@click.command("exec", context_settings=_EXEC_CONTEXT)
@click.option("-d", "--detach", is_flag=True, help="Detached mode: run command in the background")
@click.option("--detach-keys", default="", help="Override the key sequence for detaching")
@click.option("-e", "--env", "env", multiple=True, help="Set environment variables")
@click.option("--env-file", multiple=True, help="Read in a file of environment variables")
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open even if not attached")
@click.option("--privileged", is_flag=True, help="Give extended privileges to the command")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY")
@click.option("-u", "--user", default="", help="Username or UID (format: <name|uid>[:<group|gid>])")
@click.option("-w", "--workdir", default="", help="Working directory inside the container")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(
    detach: bool,
    detach_keys: str,
    env: tuple[str, ...],
    env_file: tuple[str, ...],
    interactive: bool,
    privileged: bool,
    tty: bool,
    user: str,
    workdir: str,
    container: str,
    command: tuple[str, ...],
) -> None:
    """Execute a command in a running container."""
    from servin.api.servin.v1 import containers_pb2
    from servin.cli.streams import run_session, terminal_size

    if not detach:
        check_tty(stdin=interactive, tty=tty)
    client = get_client()
    created = client.containers.ExecCreate(
        containers_pb2.ExecCreateRequest(
            container_id=container,
            cmd=list(command),
            env=env_items(env, env_file),
            user=user,
            working_dir=workdir,
            tty=tty,
            attach_stdin=interactive and not detach,
            attach_stdout=not detach,
            attach_stderr=not detach,
            privileged=privileged,
            detach_keys=detach_keys,
        )
    )
    if detach:
        try:
            for _ in client.containers.ExecStart(
                iter([containers_pb2.ExecInput(exec_id=created.id, detach=True)])
            ):
                pass
        except ServinError as exc:
            raise exec_failure(exc) from None
        return
    size = terminal_size() if tty else None
    first = containers_pb2.ExecInput(
        exec_id=created.id, rows=size[0] if size else 0, cols=size[1] if size else 0
    )
    try:
        outcome = run_session(
            client.containers.ExecStart, first, containers_pb2.ExecInput,
            stdin=interactive, tty=tty,
        )
    except ServinError as exc:
        raise exec_failure(exc) from None
    if outcome.detached:
        sys.exit(0)
    code = outcome.exit_code
    if code is None:  # the stream ended without the exit: ask
        code = client.containers.ExecInspect(
            containers_pb2.ExecInspectRequest(exec_id=created.id)
        ).exit_code
    sys.exit(code)


@click.command()
@click.option("--no-stdin", is_flag=True, help="Do not attach STDIN")
@click.option("--detach-keys", default="", help="Override the key sequence for detaching")
@click.argument("container")
def attach(no_stdin: bool, detach_keys: str, container: str) -> None:
    """Attach local standard input, output, and error streams to a running container."""
    from servin.api.servin.v1 import containers_pb2
    from servin.cli.commands.containers import attach_and_start

    client = get_client()
    detail = client.containers.Inspect(containers_pb2.InspectContainerRequest(id=container))
    if not detail.state.running:
        raise Conflict("You cannot attach to a stopped container, start it first")
    stdin = detail.spec.open_stdin and not no_stdin
    check_tty(stdin=stdin, tty=detail.spec.tty)
    code = attach_and_start(detail.id, stdin=stdin, start=False, tty=detail.spec.tty,
                            detach_keys=detach_keys)
    sys.exit(0 if code is None else code)
