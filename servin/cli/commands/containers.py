"""Container commands: run, create, start, stop, restart, kill, rm, ps, logs, wait, inspect."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import click

from servin.cli.each import inspect_each
from servin.cli.lazy import LazyGroup
from servin.cli.options import filter_option, format_option, parse_filters
from servin.cli.session import get_client
from servin.cli.terminal import check_tty
from servin.errors import InvalidArgument, NotFound, PermissionDenied, ServinError

if TYPE_CHECKING:
    from google.protobuf.timestamp_pb2 import Timestamp

    from servin.api.servin.v1.containers_pb2 import AttachInput, LogChunk
    from servin.cli.streams import InputPump


class ExitCode(ServinError):
    """A command's failure that must exit with a given code (docker's 125/126/127)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def start_failure(exc: ServinError) -> ExitCode:
    """A failed start as docker exits: 127 the program cannot be found, 126 it cannot be
    invoked (permission denied, a directory), else 125."""
    text = exc.message.lower()
    if "no such file" in text or "not found" in text:  # (not "No such container": 125)
        return ExitCode(exc.message, 127)
    if isinstance(exc, PermissionDenied) or "permission denied" in text \
            or "is a directory" in text:
        return ExitCode(exc.message, 126)
    return ExitCode(exc.message, 125)


def attach_and_start(
    container_id: str,
    *,
    stdin: bool,
    start: bool,
    tty: bool | None = None,
    detach_keys: str = "",
    stdout: bool = True,
    stderr: bool = True,
) -> int | None:
    """Attach to a container's output (and stdin), optionally start it, stream until it ends.

    With a terminal (``tty``; looked up when None) the user's terminal is raw meanwhile and
    its size follows the window. Returns the container's exit code, or None if the user
    typed the detach keys (the container runs on).
    """
    from servin.api.servin.v1 import containers_pb2
    from servin.cli.streams import run_session, terminal_size

    client = get_client()
    if tty is None:
        detail = client.containers.Inspect(containers_pb2.InspectContainerRequest(id=container_id))
        tty = detail.spec.tty
        container_id = detail.id
    size = terminal_size() if tty else None
    first = containers_pb2.AttachInput(
        id=container_id, stdin=stdin, stdout=stdout, stderr=stderr, detach_keys=detach_keys,
        rows=size[0] if size else 0, cols=size[1] if size else 0,
    )

    def registered(pump: InputPump[AttachInput]) -> None:
        if start:
            try:
                client.containers.Start(containers_pb2.StartContainerRequest(id=container_id))
            except ServinError as exc:
                raise start_failure(exc) from None
        if size:
            pump.resize(*size)  # the pty exists now: give it the window's size

    outcome = run_session(
        client.containers.Attach, first, containers_pb2.AttachInput,
        stdin=stdin, tty=bool(tty), on_registered=registered,
    )
    if outcome.detached:
        return None
    reply = client.containers.Wait(containers_pb2.WaitContainerRequest(id=container_id))
    return reply.exit_code


def _each(ids: tuple[str, ...], action: Callable[[str], object], missing_ok: bool = False
          ) -> None:  # fmt: skip
    """Run ``action`` on each argument; print it on success; report failures like docker
    (``missing_ok``: a missing one is skipped silently, as ``rm -f`` does)."""
    failed: ServinError | None = None
    for item in ids:
        try:
            action(item)
        except ServinError as exc:
            if missing_ok and isinstance(exc, NotFound):
                continue
            if failed is not None:
                click.echo(f"Error: {failed.message}", err=True)
            failed = exc
            continue
        click.echo(item)
    if failed is not None:
        raise failed


@click.command()
@click.option("-a", "--attach", is_flag=True, help="Attach STDOUT/STDERR and forward signals")
@click.option("-i", "--interactive", is_flag=True, help="Attach container's STDIN")
@click.option("--detach-keys", default="", help="Override the key sequence for detaching")
@click.argument("containers", nargs=-1, required=True)
def start(attach: bool, interactive: bool, detach_keys: str, containers: tuple[str, ...]) -> None:
    """Start one or more stopped containers."""
    from servin.api.servin.v1 import containers_pb2

    client = get_client()
    if attach or interactive:
        if len(containers) > 1:
            raise InvalidArgument("you cannot start and attach multiple containers at once")
        if interactive:
            detail = client.containers.Inspect(
                containers_pb2.InspectContainerRequest(id=containers[0]))
            check_tty(stdin=detail.spec.open_stdin, tty=detail.spec.tty)
        code = attach_and_start(containers[0], stdin=interactive, start=True,
                                detach_keys=detach_keys)
        sys.exit(0 if code is None else code)
    _each(containers, lambda c: client.containers.Start(containers_pb2.StartContainerRequest(id=c)))


@click.command()
@click.option(
    "-t",
    "--timeout",
    "--time",
    "timeout",
    type=int,
    default=None,
    help="Seconds to wait before killing the container",
)
@click.option("-s", "--signal", "sig", default="", help="Signal to send to the container")
@click.argument("containers", nargs=-1, required=True)
def stop(timeout: int | None, sig: str, containers: tuple[str, ...]) -> None:
    """Stop one or more running containers."""
    from servin.api.servin.v1 import containers_pb2

    client = get_client()
    _each(
        containers,
        lambda c: client.containers.Stop(
            containers_pb2.StopContainerRequest(
                id=c, timeout=-1 if timeout is None else timeout, signal=sig
            )
        ),
    )


@click.command()
@click.option(
    "-t",
    "--timeout",
    "--time",
    "timeout",
    type=int,
    default=None,
    help="Seconds to wait before killing the container",
)
@click.option("-s", "--signal", "sig", default="", help="Signal to send to the container")
@click.argument("containers", nargs=-1, required=True)
def restart(timeout: int | None, sig: str, containers: tuple[str, ...]) -> None:
    """Restart one or more containers."""
    from servin.api.servin.v1 import containers_pb2

    client = get_client()
    _each(
        containers,
        lambda c: client.containers.Restart(
            containers_pb2.RestartContainerRequest(
                id=c, timeout=-1 if timeout is None else timeout, signal=sig
            )
        ),
    )


@click.command()
@click.option("-s", "--signal", "sig", default="KILL", help="Signal to send to the container")
@click.argument("containers", nargs=-1, required=True)
def kill(sig: str, containers: tuple[str, ...]) -> None:
    """Kill one or more running containers."""
    from servin.api.servin.v1 import containers_pb2

    client = get_client()
    _each(
        containers,
        lambda c: client.containers.Kill(containers_pb2.KillContainerRequest(id=c, signal=sig)),
    )


@click.command()
@click.option("-f", "--force", is_flag=True, help="Force the removal of a running container")
@click.option("-v", "--volumes", is_flag=True, help="Remove anonymous volumes of the container")
@click.argument("containers", nargs=-1, required=True)
def rm(force: bool, volumes: bool, containers: tuple[str, ...]) -> None:
    """Remove one or more containers."""
    from servin.api.servin.v1 import containers_pb2

    client = get_client()
    _each(
        containers,
        lambda c: client.containers.Remove(
            containers_pb2.RemoveContainerRequest(id=c, force=force, volumes=volumes)
        ),
        missing_ok=force,
    )


@click.command()
@click.option(
    "-a", "--all", "all_", is_flag=True, help="Show all containers (default shows just running)"
)
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs")
@click.option("-n", "--last", type=int, default=0, help="Show n last created containers")
@click.option("-l", "--latest", is_flag=True, help="Show the latest created container")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes")
@filter_option
@format_option
def ps(
    all_: bool,
    quiet: bool,
    last: int,
    latest: bool,
    no_trunc: bool,
    size: bool,
    filters: tuple[str, ...],
    fmt: str | None,
) -> None:
    """List containers."""
    from servin.api.servin.v1 import containers_pb2
    from servin.cli.output import print_rows
    from servin.cli.tables import print_table, ps_cells, ps_columns, ps_row

    limit = 1 if latest else last
    reply = get_client().containers.List(
        containers_pb2.ListContainersRequest(
            all=all_ or limit > 0, filters=parse_filters(filters), limit=limit, size=size
        )
    )
    if not fmt and not quiet:  # the default table: only the cells it shows
        now = time.time()
        print_table([h for h, _ in ps_columns(size)],
                    [ps_cells(c, no_trunc, size, now) for c in reply.containers])
        return
    rows = [ps_row(c, no_trunc) for c in reply.containers]
    print_rows(
        ps_columns(size),
        rows,
        fmt,
        quiet_key="ID",
        quiet=quiet,
    )


def parse_time(text: str, flag: str) -> Timestamp:
    """docker's --since/--until: RFC 3339, a Unix timestamp, or a duration (10m, 1h30m)."""
    import re
    from datetime import datetime

    from google.protobuf.timestamp_pb2 import Timestamp

    ts = Timestamp()
    if not text:
        return ts
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", text)
    if m and any(m.groups()):
        hours, minutes, seconds = (float(g) if g else 0.0 for g in m.groups())
        ts.FromNanoseconds(int((time.time() - hours * 3600 - minutes * 60 - seconds) * 1e9))
        return ts
    try:
        ts.FromNanoseconds(int(float(text) * 1e9))
        return ts
    except ValueError:
        pass
    try:
        ts.FromDatetime(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise InvalidArgument(f"invalid value for {flag}: {text!r}") from None
    return ts


@click.command()
@click.option("-f", "--follow", is_flag=True, help="Follow log output")
@click.option("-n", "--tail", default="all", help="Number of lines to show from the end")
@click.option("--since", default="", help="Show logs since timestamp or relative (e.g. 42m)")
@click.option("--until", default="", help="Show logs before a timestamp or relative time")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps")
@click.option("--details", is_flag=True, help="Show extra details provided to logs")
@click.argument("container")
def logs(follow: bool, tail: str, since: str, until: str, timestamps: bool, details: bool,
         container: str) -> None:
    """Fetch the logs of a container."""
    from servin.api.servin.v1 import containers_pb2

    try:
        tail_n = -1 if tail == "all" else int(tail)
    except ValueError:
        raise InvalidArgument(f"invalid value for --tail: {tail!r}") from None
    request = containers_pb2.ContainerLogsRequest(
        id=container,
        follow=follow,
        stdout=True,
        stderr=True,
        tail=tail_n,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
        timestamps=timestamps,
        details=details,
    )
    write_logs(get_client().containers.Logs(request), timestamps=timestamps, details=details,
               follow=follow)  # fmt: skip


def write_logs(chunks: Iterable[LogChunk], *, timestamps: bool, details: bool, follow: bool
               ) -> None:  # fmt: skip
    """Write ``LogChunk``s to stdout and stderr: buffered (flushed where the stream changes,
    so the two keep their order on one terminal), and at once after each chunk when
    following. ``timestamps`` put docker's time, ``details`` the entry's attributes
    (``k=v,k=v``, from ``--log-opt labels=/env=``) and a space before each line."""
    from servin.client.logs import Stamper, records

    stdout, stderr = sys.stdout.buffer, sys.stderr.buffer
    stamp = Stamper() if timestamps else None
    last = stdout
    try:
        for chunk in chunks:
            attrs = b""
            if details:
                text = ",".join(f"{k}={v}" for k, v in sorted(chunk.attrs.items()))
                attrs = text.encode() + b" "
            for stream, ns, data in records(chunk):
                target = stderr if stream == 2 else stdout
                if target is not last:
                    last.flush()
                    last = target
                if stamp is not None:
                    target.write(stamp(ns) + b" " + attrs + data)
                elif details:
                    target.write(attrs + data)
                else:
                    target.write(data)
            if follow:
                last.flush()
    finally:
        last.flush()


@click.command()
@click.argument("containers", nargs=-1, required=True)
def wait(containers: tuple[str, ...]) -> None:
    """Block until one or more containers stop, then print their exit codes."""
    from servin.api.servin.v1 import containers_pb2

    client = get_client()
    _each_wait = []
    for c in containers:
        reply = client.containers.Wait(containers_pb2.WaitContainerRequest(id=c))
        _each_wait.append(reply.exit_code)
        click.echo(reply.exit_code)


@click.command("inspect")
@click.option(
    "-f", "--format", "fmt", metavar="FORMAT", help="Format the output using a Go template"
)
@click.option("-s", "--size", is_flag=True, help="Display total file sizes")
@click.argument("containers", nargs=-1, required=True)
def container_inspect(fmt: str | None, size: bool, containers: tuple[str, ...]) -> None:
    """Display detailed information on one or more containers."""
    from servin.api.servin.v1 import containers_pb2

    client = get_client()
    inspect_each(containers, lambda item: client.containers.Inspect(
        containers_pb2.InspectContainerRequest(id=item, size=size)), fmt)


@click.command("inspect")
@click.option(
    "-f", "--format", "fmt", metavar="FORMAT", help="Format the output using a Go template"
)
@click.option(
    "--type",
    "kind",
    type=click.Choice(["container", "image"]),
    default=None,
    help="Only look for this type of object",
)
@click.option(
    "-s", "--size", is_flag=True, help="Display total file sizes if the type is container"
)
@click.argument("names", nargs=-1, required=True)
def inspect(fmt: str | None, kind: str | None, size: bool, names: tuple[str, ...]) -> None:
    """Return low-level information on containers or images."""
    from servin.api.servin.v1 import containers_pb2, images_pb2
    from servin.cli.output import document, print_objects

    client = get_client()
    results = []
    error: ServinError | None = None
    for name in names:
        found = None
        if kind in (None, "container"):
            try:
                found = document(client.containers.Inspect(
                    containers_pb2.InspectContainerRequest(id=name, size=size)))
            except NotFound:
                found = None
        if found is None and kind in (None, "image"):
            try:
                found = document(
                    client.images.Inspect(images_pb2.InspectImageRequest(reference=name)))
            except NotFound:
                found = None
        if found is None:
            error = NotFound(f"No such object: {name}")
        else:
            results.append(found)
    if results or error is None:
        print_objects(results, fmt)
    if error is not None:
        raise error


@click.command()
@click.argument("containers", nargs=-1, required=True)
def pause(containers: tuple[str, ...]) -> None:
    """Pause all processes within one or more containers."""
    from servin.api.servin.v1 import containers_pb2

    client = get_client()
    _each(containers, lambda c: client.containers.Pause(
        containers_pb2.PauseContainerRequest(id=c)))


@click.command()
@click.argument("containers", nargs=-1, required=True)
def unpause(containers: tuple[str, ...]) -> None:
    """Unpause all processes within one or more containers."""
    from servin.api.servin.v1 import containers_pb2

    client = get_client()
    _each(containers, lambda c: client.containers.Unpause(
        containers_pb2.UnpauseContainerRequest(id=c)))


@click.command()
@click.argument("container_name")
@click.argument("new_name")
def rename(container_name: str, new_name: str) -> None:
    """Rename a container."""
    from servin.api.servin.v1 import containers_pb2

    get_client().containers.Rename(
        containers_pb2.RenameContainerRequest(id=container_name, new_name=new_name))


@click.command()
@click.option("-m", "--memory", default="", help="Memory limit")
@click.option("--memory-swap", default="", help="Swap limit equal to memory plus swap")
@click.option("--memory-reservation", default="", help="Memory soft limit")
@click.option("--cpus", default="", help="Number of CPUs")
@click.option("-c", "--cpu-shares", type=int, default=None, help="CPU shares (relative weight)")
@click.option("--cpu-period", type=int, default=None, help="Limit CPU CFS period")
@click.option("--cpu-quota", type=int, default=None, help="Limit CPU CFS quota")
@click.option("--cpuset-cpus", default="", help="CPUs in which to allow execution")
@click.option("--cpuset-mems", default="", help="MEMs in which to allow execution")
@click.option("--pids-limit", type=int, default=None, help="Tune container pids limit")
@click.option("--restart", default="", help="Restart policy to apply when a container exits")
@click.argument("containers", nargs=-1, required=True)
def update(containers: tuple[str, ...], restart: str, **values: Any) -> None:
    """Update configuration of one or more containers."""
    from servin.api.servin.v1 import containers_pb2
    from servin.cli.runflags import build_update, parse_restart

    resources, fields = build_update(values)
    if not fields and not restart:
        raise InvalidArgument("you must provide one or more flags when using this command")
    request = containers_pb2.UpdateContainerRequest(resources=resources, fields=fields)
    if restart:
        request.restart_policy.CopyFrom(parse_restart(restart))
    client = get_client()

    def one(c: str) -> None:
        request.id = c
        client.containers.Update(request)

    _each(containers, one)


@click.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="Provide filter values (e.g. until=24h, label=KEY=VALUE)")
def prune(force: bool, filters: tuple[str, ...]) -> None:
    """Remove all stopped containers."""
    from servin.cli.commands.system import prune_containers
    from servin.humanize import human_size

    if not force:
        click.echo("WARNING! This will remove all stopped containers.")
        if not click.confirm("Are you sure you want to continue?", default=False):
            return
    deleted, reclaimed = prune_containers(get_client(), parse_filters(filters))
    if deleted:
        click.echo("Deleted Containers:\n" + "\n".join(deleted) + "\n")
    click.echo(f"Total reclaimed space: {human_size(reclaimed)}")


_HERE = "servin.cli.commands.containers"
_RUN = "servin.cli.commands.run"
_STATS = "servin.cli.commands.stats"
_INTERACTIVE = "servin.cli.commands.interactive"
_FILES = "servin.cli.commands.files"


@click.group(cls=LazyGroup, lazy={
    "run": f"{_RUN}:run", "create": f"{_RUN}:create", "start": f"{_HERE}:start",
    "stop": f"{_HERE}:stop", "restart": f"{_HERE}:restart", "kill": f"{_HERE}:kill",
    "rm": f"{_HERE}:rm", "remove": f"{_HERE}:rm", "ls": f"{_HERE}:ps", "list": f"{_HERE}:ps",
    "ps": f"{_HERE}:ps", "logs": f"{_HERE}:logs", "wait": f"{_HERE}:wait",
    "inspect": f"{_HERE}:container_inspect", "stats": f"{_STATS}:stats", "top": f"{_STATS}:top",
    "pause": f"{_HERE}:pause", "unpause": f"{_HERE}:unpause", "rename": f"{_HERE}:rename",
    "update": f"{_HERE}:update", "exec": f"{_INTERACTIVE}:exec_",
    "attach": f"{_INTERACTIVE}:attach", "cp": f"{_FILES}:cp", "diff": f"{_FILES}:diff",
    "commit": f"{_FILES}:commit", "export": f"{_FILES}:export", "prune": f"{_HERE}:prune",
})
def container() -> None:
    """Manage containers."""
