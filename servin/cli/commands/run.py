"""``servin run`` and ``servin create``: a container from an image and docker's run flags."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

import click

from servin.cli.commands.containers import attach_and_start, start_failure
from servin.cli.execout import ExitCode
from servin.cli.runflags import build_spec, run_options
from servin.cli.session import get_client
from servin.cli.terminal import check_tty
from servin.errors import NotFound, ServinError


class _CidFile:
    """``--cidfile``: refused if it exists (another container may be using it), made before
    the container so a failure leaves nothing, written with the ID once it exists."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1
        if not path:
            return
        try:
            self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            raise ExitCode(f"container ID file found, make sure the other container isn't "
                           f"running or delete {path}", 125) from None
        except OSError as exc:
            raise ExitCode(f"failed to create the container ID file: {path}: "
                           f"{(exc.strerror or str(exc)).lower()}", 125) from None

    def write(self, container_id: str) -> None:
        if self.fd >= 0:
            os.write(self.fd, container_id.encode())
            os.close(self.fd)
            self.fd = -1

    def discard(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def _attached(attach: tuple[str, ...], interactive: bool) -> list[str]:
    """The streams a client attaches, as docker's CLI records them: those of ``-a``
    (stdout and stderr without it), and stdin with ``-i``."""
    streams = {s.lower() for s in attach} or {"stdout", "stderr"}
    if interactive:
        streams.add("stdin")
    return [s for s in _STREAMS if s in streams]


def _create(image: str, command: tuple[str, ...], options: dict[str, Any],
            attach: list[str]) -> str:
    from servin.api.servin.v1 import containers_pb2

    pull, platform = options.pop("pull", "missing"), options.pop("platform", "")
    quiet = options["quiet"]
    spec = build_spec(image, command, options)
    spec.attach.extend(attach)
    spec.attach_set = True
    request = containers_pb2.CreateContainerRequest(name=options["name"], spec=spec)
    cidfile = _CidFile(options["cidfile"])
    try:
        if pull == "always":
            _pull(image, platform, quiet)
        try:
            try:
                reply = get_client().containers.Create(request)
            except NotFound as exc:
                if "No such image" not in exc.message:
                    raise
                if pull == "never":
                    raise ExitCode(f"Unable to find image '{image}' locally", 125) from None
                if not quiet:
                    click.echo(f"Unable to find image '{image}' locally", err=True)
                _pull(image, platform, quiet)
                reply = get_client().containers.Create(request)
        except ServinError as exc:
            raise ExitCode(exc.message, 125) from None
    except BaseException:
        cidfile.discard()
        raise
    cidfile.write(reply.id)
    for warning in reply.warnings:
        click.echo(f"WARNING: {warning}", err=True)
    return reply.id


def _pull(image: str, platform: str, quiet: bool) -> None:
    from servin.cli.commands.registry import pull_for_run

    try:
        pull_for_run(image, platform, quiet=quiet)
    except ServinError as exc:
        raise ExitCode(exc.message, 125) from None


def pull_options(f: Any) -> Any:
    """``--pull`` and ``--platform`` of run and create."""
    f = click.option("--platform", default="",
                     help="Platform to pull if the image is missing (os/arch[/variant])")(f)
    return click.option("--pull", type=click.Choice(["always", "missing", "never"]),
                        default="missing", help="Pull image before running")(f)


# -h is --hostname here, as in docker: only --help shows help.
_RUN_CONTEXT = {"allow_interspersed_args": False, "help_option_names": ["--help"]}
_STREAMS = ("stdin", "stdout", "stderr")
_ATTACH = click.option("-a", "--attach", "attach", multiple=True,
                       type=click.Choice(_STREAMS, case_sensitive=False),
                       help="Attach to STDIN, STDOUT or STDERR (repeatable)")


@click.command(context_settings=_RUN_CONTEXT)
@click.option("-d", "--detach", is_flag=True, help="Run container in background and print its ID")
@_ATTACH
@click.option("--detach-keys", default="", help="Override the key sequence for detaching")
@run_options
@pull_options
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(detach: bool, attach: tuple[str, ...], image: str, command: tuple[str, ...],
        **options: Any) -> None:
    """Create and run a new container from an image."""
    from servin.api.servin.v1 import containers_pb2

    streams = _attached(attach, options["interactive"])
    stdin = "stdin" in streams
    if detach and attach:
        raise click.UsageError("conflicting options: -a and -d")
    if not detach:
        check_tty(stdin=stdin, tty=options["tty"])
    remove = options["remove"]
    # In the foreground the client removes the container once it has its exit code; the
    # daemon does it for a detached one.
    options["remove"] = remove and detach
    container_id = _create(image, command, options, [] if detach else streams)
    client = get_client()
    if detach:
        try:
            client.containers.Start(containers_pb2.StartContainerRequest(id=container_id))
        except ServinError as exc:
            raise start_failure(exc) from None
        click.echo(container_id)
        return
    code: int | None = -1
    try:
        code = attach_and_start(
            container_id, stdin=stdin, start=True, tty=options["tty"],
            detach_keys=options.get("detach_keys") or "",
            stdout="stdout" in streams, stderr="stderr" in streams,
        )
    finally:
        # A detached container (code None) runs on: it is not removed from here.
        if remove and code is not None:
            with contextlib.suppress(NotFound):
                client.containers.Remove(
                    containers_pb2.RemoveContainerRequest(id=container_id, force=True, volumes=True)
                )
    sys.exit(0 if code is None else code)


@click.command(context_settings=_RUN_CONTEXT)
@_ATTACH
@run_options
@pull_options
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def create(attach: tuple[str, ...], image: str, command: tuple[str, ...],
           **options: Any) -> None:
    """Create a new container."""
    click.echo(_create(image, command, options, _attached(attach, options["interactive"])))
