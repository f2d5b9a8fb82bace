"""``servin run`` and ``servin create``: a container from an image and docker's run flags."""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import click

from servin.cli.commands.containers import ExitCode, attach_and_start, start_failure
from servin.cli.runflags import build_spec, run_options
from servin.cli.session import get_client
from servin.errors import NotFound, ServinError


def _create(
    image: str, command: tuple[str, ...], options: dict[str, Any], auto_remove: bool = False
) -> str:
    from servin.api.servin.v1 import containers_pb2

    pull, platform = options.pop("pull", "missing"), options.pop("platform", "")
    spec = build_spec(image, command, options)
    spec.auto_remove = auto_remove
    request = containers_pb2.CreateContainerRequest(name=options["name"], spec=spec)
    if pull == "always":
        _pull(image, platform)
    try:
        try:
            reply = get_client().containers.Create(request)
        except NotFound as exc:
            if "No such image" not in exc.message:
                raise
            if pull == "never":
                raise ExitCode(f"Unable to find image '{image}' locally", 125) from None
            click.echo(f"Unable to find image '{image}' locally", err=True)
            _pull(image, platform)
            reply = get_client().containers.Create(request)
    except ServinError as exc:
        raise ExitCode(exc.message, 125) from None
    return reply.id


def _pull(image: str, platform: str) -> None:
    from servin.cli.commands.registry import pull_for_run

    try:
        pull_for_run(image, platform)
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


@click.command(context_settings=_RUN_CONTEXT)
@click.option("-d", "--detach", is_flag=True, help="Run container in background and print its ID")
@click.option("--rm", "remove", is_flag=True, help="Remove the container when it exits")
@click.option("--detach-keys", default="", help="Override the key sequence for detaching")
@run_options
@pull_options
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(detach: bool, remove: bool, image: str, command: tuple[str, ...], **options: Any) -> None:
    """Create and run a new container from an image."""
    from servin.api.servin.v1 import containers_pb2

    container_id = _create(image, command, options, auto_remove=remove and detach)
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
            container_id, stdin=options["interactive"], start=True, tty=options["tty"],
            detach_keys=options.get("detach_keys") or "",
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
@run_options
@pull_options
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def create(image: str, command: tuple[str, ...], **options: Any) -> None:
    """Create a new container."""
    click.echo(_create(image, command, options))
