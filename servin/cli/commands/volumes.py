"""``servin volume ...``: create, ls, inspect, rm, prune, export, import."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import click

from servin.cli.each import inspect_each, raise_failures
from servin.cli.flagsyntax import DockerGroup
from servin.cli.options import add_commands, filter_option, format_option, parse_filters
from servin.cli.session import get_client
from servin.errors import InvalidArgument, ServinError

_CHUNK = 1024 * 1024


def _kv(values: tuple[str, ...], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid {flag} {item!r}: expected KEY=VALUE")
        out[key] = value if sep else ""
    return out


@click.command("create")
@click.option("-d", "--driver", default="local", help="Volume driver name")
@click.option("-o", "--opt", "opts", multiple=True, metavar="KEY=VALUE",
              help="Driver options (type=tmpfs|none|nfs, device=, o=)")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Set metadata")
@click.argument("name", required=False, default="")
def volume_create(driver: str, opts: tuple[str, ...], labels: tuple[str, ...], name: str) -> None:
    """Create a volume."""
    from servin.api.servin.v1 import volumes_pb2

    v = get_client().volumes.Create(volumes_pb2.CreateVolumeRequest(
        name=name, driver=driver, options=_kv(opts, "--opt"), labels=_kv(labels, "--label")))
    click.echo(v.name)


@click.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display volume names")
@filter_option
@format_option
def volume_ls(quiet: bool, filters: tuple[str, ...], fmt: str | None) -> None:
    """List volumes."""
    from servin.api.servin.v1 import volumes_pb2
    from servin.cli.output import print_rows

    reply = get_client().volumes.List(
        volumes_pb2.ListVolumesRequest(filters=parse_filters(filters)))
    rows = [
        {
            "Driver": v.driver,
            "Name": v.name,
            "Mountpoint": v.mountpoint,
            "Scope": v.scope or "local",
            "Labels": ",".join(f"{k}={val}" for k, val in sorted(v.labels.items())),
            "Links": str(v.ref_count),
            "Size": "N/A",
        }
        for v in reply.volumes
    ]
    print_rows([("DRIVER", "Driver"), ("VOLUME NAME", "Name")], rows, fmt,
               quiet_key="Name", quiet=quiet)


@click.command("inspect")
@click.option("-f", "--format", "fmt", metavar="FORMAT",
              help="json, or a Go template ({{.Mountpoint}})")
@click.argument("names", nargs=-1, required=True)
def volume_inspect(fmt: str | None, names: tuple[str, ...]) -> None:
    """Display detailed information on one or more volumes."""
    from servin.api.servin.v1 import volumes_pb2

    client = get_client()
    inspect_each(names, lambda name: client.volumes.Inspect(
        volumes_pb2.InspectVolumeRequest(name=name)), fmt)


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="Do not fail when a volume does not exist")
@click.argument("names", nargs=-1, required=True)
def volume_rm(force: bool, names: tuple[str, ...]) -> None:
    """Remove one or more volumes (refused while a container uses them)."""
    from servin.api.servin.v1 import volumes_pb2

    client = get_client()
    failed: list[ServinError] = []
    for name in names:
        try:
            client.volumes.Remove(volumes_pb2.RemoveVolumeRequest(name=name, force=force))
            click.echo(name)
        except ServinError as exc:
            failed.append(exc)
    raise_failures(failed)


@click.command("prune")
@click.option("-a", "--all", "all_", is_flag=True,
              help="Remove all unused volumes, not just anonymous ones")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="Provide filter values (label=, label!=)")
def volume_prune(all_: bool, force: bool, filters: tuple[str, ...]) -> None:
    """Remove unused volumes."""
    from servin.api.servin.v1 import volumes_pb2
    from servin.humanize import human_size

    if not force:
        what = "all volumes" if all_ else "all anonymous volumes"
        click.confirm(f"WARNING! This will remove {what} not used by at least one container.\n"
                      "Are you sure you want to continue?", abort=True)
    reply = get_client().volumes.Prune(
        volumes_pb2.PruneVolumesRequest(filters=parse_filters(filters), all=all_))
    if reply.deleted:
        click.echo("Deleted Volumes:")
        for name in reply.deleted:
            click.echo(name)
        click.echo("")
    click.echo(f"Total reclaimed space: {human_size(reply.space_reclaimed)}")


@click.command("export")
@click.option("-o", "--output", default="", help="Write to a file instead of STDOUT")
@click.argument("name")
def volume_export(output: str, name: str) -> None:
    """Write a volume's content as a tar archive (a backup)."""
    from servin.api.servin.v1 import volumes_pb2

    if not output and sys.stdout.isatty():
        raise InvalidArgument("refusing to write a tar archive to a terminal: "
                              "use -o FILE or redirect the output")
    stream = get_client().volumes.Export(volumes_pb2.ExportVolumeRequest(name=name))
    out = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115
    try:
        for chunk in stream:
            out.write(chunk.data)
        out.flush()
    finally:
        if output:
            out.close()


@click.command("import")
@click.argument("name")
@click.argument("source", required=False, default="-")
def volume_import(name: str, source: str) -> None:
    """Restore a tar archive (a file, or - for STDIN) into a volume, created if missing."""
    from servin.api.servin.v1 import volumes_pb2

    def messages() -> Iterator[Any]:
        yield volumes_pb2.ImportVolumeInput(name=name)
        stream = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115
        try:
            while chunk := stream.read(_CHUNK):
                yield volumes_pb2.ImportVolumeInput(data=chunk)
        finally:
            if source != "-":
                stream.close()

    get_client().volumes.Import(messages())


@click.group(cls=DockerGroup)
def volume() -> None:
    """Manage volumes."""


add_commands(
    volume,
    (
        (volume_create, ("create",)),
        (volume_ls, ("ls", "list")),
        (volume_inspect, ("inspect",)),
        (volume_rm, ("rm", "remove")),
        (volume_prune, ("prune",)),
        (volume_export, ("export",)),
        (volume_import, ("import",)),
    ),
)
