"""``servin version``, ``servin info`` and ``servin system ...``."""

from __future__ import annotations

import platform
import sys
from typing import TYPE_CHECKING, Any

import click

from servin.arch import oci_architecture
from servin.cli.flagsyntax import DockerGroup
from servin.cli.options import filter_option, format_option
from servin.cli.session import get_client

if TYPE_CHECKING:
    from servin.api.servin.v1.common_pb2 import Filter
    from servin.api.servin.v1.system_pb2 import Event
    from servin.client.sync import Client


def _client_version() -> dict[str, Any]:
    from servin import API_VERSION, __version__

    return {
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "PythonVersion": platform.python_version(),
        "Os": "linux",
        "Arch": oci_architecture(),
    }


def _format_f(f: Any) -> Any:
    """docker's ``-f/--format`` of info and version (where -f is not --filter)."""
    return click.option(
        "-f", "--format", "fmt", metavar="FORMAT", help="json, or a Go template"
    )(f)


@click.command()
@_format_f
def version(fmt: str | None) -> None:
    """Show the Servin version information (client and server)."""
    from servin.api.servin.v1 import system_pb2
    from servin.cli.output import print_object
    from servin.errors import ServinError

    data: dict[str, Any] = {"Client": _client_version()}
    error: ServinError | None = None
    try:
        reply = get_client().system.Version(system_pb2.VersionRequest())
        # As json_format would show them (empty fields left out), without its import cost.
        components = [{k: v for k, v in (("name", c.name), ("version", c.version)) if v}
                      for c in reply.components]  # fmt: skip
        data["Server"] = {
            "Version": reply.version,
            "ApiVersion": reply.api_version,
            "GitCommit": reply.git_commit,
            "PythonVersion": reply.python_version,
            "Os": reply.os,
            "Arch": reply.arch,
            "KernelVersion": reply.kernel_version,
            "Components": components,
        }
    except ServinError as exc:
        error = exc
    if fmt:
        print_object(data, fmt)
    else:
        c = data["Client"]
        click.echo(
            f"Client:\n Version:\t{c['Version']}\n API version:\t{c['ApiVersion']}\n"
            f" Python:\t{c['PythonVersion']}\n OS/Arch:\t{c['Os']}/{c['Arch']}"
        )
        if "Server" in data:
            s = data["Server"]
            click.echo(
                f"\nServer:\n Version:\t{s['Version']}\n API version:\t{s['ApiVersion']}\n"
                f" Git commit:\t{s['GitCommit'] or '-'}\n Python:\t{s['PythonVersion']}\n"
                f" OS/Arch:\t{s['Os']}/{s['Arch']}\n Kernel:\t{s['KernelVersion']}"
            )
    if error is not None:
        raise error


def _info_dict() -> dict[str, Any]:
    from servin.api.servin.v1 import system_pb2
    from servin.humanize import human_size

    r = get_client().system.Info(system_pb2.InfoRequest())
    return {
        "ID": r.id,
        "Name": r.name,
        "Containers": r.containers,
        "ContainersRunning": r.containers_running,
        "ContainersPaused": r.containers_paused,
        "ContainersStopped": r.containers_stopped,
        "Images": r.images,
        "Volumes": r.volumes,
        "Networks": r.networks,
        "Pods": r.pods,
        "Driver": r.storage_driver,
        "CgroupDriver": r.cgroup_driver,
        "CgroupVersion": str(r.cgroup_version),
        "KernelVersion": r.kernel_version,
        "OperatingSystem": r.operating_system,
        "OSType": r.os_type,
        "Architecture": r.architecture,
        "NCPU": r.ncpu,
        "MemTotal": r.mem_total,
        "MemTotalHuman": human_size(r.mem_total),
        "ServinRootDir": r.root_dir,
        "ExecRoot": r.exec_root,
        "DefaultRuntime": r.default_runtime,
        "Runtimes": list(r.runtimes),
        "ServerVersion": r.server_version,
        "LoggingDriver": r.logging_driver,
        "SecurityOptions": r.security_options.split(",") if r.security_options else [],
        "InsecureRegistries": list(r.insecure_registries),
        "RegistryMirrors": dict(r.registry_mirrors),
        "Socket": r.socket,
        "DaemonPid": r.daemon_pid,
        "Warnings": list(r.warnings),
        "SystemTime": r.system_time.ToJsonString(),
    }


@click.command()
@_format_f
def info(fmt: str | None) -> None:
    """Display system-wide information."""
    from servin.cli.output import print_object

    data = _info_dict()
    if fmt:
        print_object(data, fmt)
        return
    lines = [
        "Server:",
        f" Containers: {data['Containers']}",
        f"  Running: {data['ContainersRunning']}",
        f"  Paused: {data['ContainersPaused']}",
        f"  Stopped: {data['ContainersStopped']}",
        f" Images: {data['Images']}",
        f" Server Version: {data['ServerVersion']}",
        f" Storage Driver: {data['Driver']}",
        f" Logging Driver: {data['LoggingDriver']}",
        f" Cgroup Driver: {data['CgroupDriver']}",
        f" Cgroup Version: {data['CgroupVersion']}",
        f" Runtimes: {' '.join(data['Runtimes'])}",
        f" Default Runtime: {data['DefaultRuntime']}",
        f" Security Options: {', '.join(data['SecurityOptions'])}",
        f" Kernel Version: {data['KernelVersion']}",
        f" Operating System: {data['OperatingSystem']}",
        f" OSType: {data['OSType']}",
        f" Architecture: {data['Architecture']}",
        f" CPUs: {data['NCPU']}",
        f" Total Memory: {data['MemTotalHuman']}",
        f" Name: {data['Name']}",
        f" ID: {data['ID']}",
        f" Servin Root Dir: {data['ServinRootDir']}",
        f" Exec Root: {data['ExecRoot']}",
        f" Socket: {data['Socket']}",
    ]
    if data["InsecureRegistries"]:
        lines.append(" Insecure Registries:")
        lines += [f"  {r}" for r in data["InsecureRegistries"]]
    lines += [f"WARNING: {w}" for w in data["Warnings"]]
    click.echo("\n".join(lines))


def _df_verbose() -> None:
    """``system df -v``: each image, container and volume with its space, as docker."""
    from servin.api.servin.v1 import containers_pb2, images_pb2, system_pb2, volumes_pb2
    from servin.cli.output import print_rows
    from servin.humanize import ago, human_size

    client = get_client()
    containers = client.containers.List(
        containers_pb2.ListContainersRequest(all=True, size=True)).containers
    # DiskUsage knows which layer bytes images share; List knows when they were created.
    reply = client.system.DiskUsage(system_pb2.DiskUsageRequest())
    usage = {i.id: i for i in reply.images}
    cache = sum(item.size for item in reply.items if item.type == "Build Cache")
    images = client.images.List(images_pb2.ListImagesRequest()).images
    volumes = client.volumes.List(volumes_pb2.ListVolumesRequest()).volumes
    from servin.cli.commands.images import split_tag

    rows = []
    for image in images:
        ref = usage.get(image.id)
        shared = ref.shared_size if ref is not None else 0
        for name in list(image.repo_tags) or ["<none>:<none>"]:
            repo, tag = ("<none>", "<none>") if name == "<none>:<none>" else split_tag(name)
            rows.append({"Repository": repo, "Tag": tag, "ID": image.id.removeprefix(
                "sha256:")[:12], "Created": ago(image.created.ToNanoseconds() / 1e9),
                "Size": human_size(image.size), "Shared": human_size(shared),
                "Unique": human_size(max(image.size - shared, 0)),
                "Containers": ref.containers if ref is not None else 0})
    click.echo("Images space usage:\n")
    print_rows([("REPOSITORY", "Repository"), ("TAG", "Tag"), ("IMAGE ID", "ID"),
                ("CREATED", "Created"), ("SIZE", "Size"), ("SHARED SIZE", "Shared"),
                ("UNIQUE SIZE", "Unique"), ("CONTAINERS", "Containers")],
               rows, None)
    click.echo("\nContainers space usage:\n")
    print_rows([("CONTAINER ID", "ID"), ("IMAGE", "Image"), ("COMMAND", "Command"),
                ("LOCAL VOLUMES", "Volumes"), ("SIZE", "Size"), ("CREATED", "Created"),
                ("STATUS", "Status"), ("NAMES", "Names")],
               [{"ID": c.id[:12], "Image": c.image, "Command": f'"{c.command[:19]}"',
                 "Volumes": sum(1 for m in c.mounts if m.type == "volume"),
                 "Size": human_size(c.size_rw), "Created": ago(c.created.ToNanoseconds() / 1e9),
                 "Status": c.status, "Names": c.name} for c in containers], None)
    click.echo("\nLocal Volumes space usage:\n")
    print_rows([("VOLUME NAME", "Name"), ("LINKS", "Links"), ("SIZE", "Size")],
               [{"Name": v.name, "Links": v.ref_count,
                 "Size": human_size(v.size) if v.size >= 0 else "N/A"} for v in volumes], None)
    click.echo(f"\nBuild cache usage: {human_size(cache)}")


@click.command("df")
@click.option("-v", "--verbose", is_flag=True, help="Show detailed information on space usage")
@format_option
def system_df(verbose: bool, fmt: str | None) -> None:
    """Show disk usage of images, containers, volumes and build cache."""
    from servin.api.servin.v1 import system_pb2
    from servin.cli.output import print_rows
    from servin.humanize import human_size

    if verbose and not fmt:
        _df_verbose()
        return
    reply = get_client().system.DiskUsage(system_pb2.DiskUsageRequest())
    rows = []
    for item in reply.items:
        pct = f" ({item.reclaimable * 100 // item.size}%)" if item.size else ""
        rows.append(
            {
                "Type": item.type,
                "TotalCount": item.total,
                "Active": item.active,
                "Size": human_size(item.size),
                "Reclaimable": f"{human_size(item.reclaimable)}{pct}",
            }
        )
    print_rows(
        [
            ("TYPE", "Type"),
            ("TOTAL", "TotalCount"),
            ("ACTIVE", "Active"),
            ("SIZE", "Size"),
            ("RECLAIMABLE", "Reclaimable"),
        ],
        rows,
        fmt,
    )


def _event_dict(e: Event) -> dict[str, Any]:
    ns = e.time.ToNanoseconds()
    return {
        "Type": e.type, "Action": e.action, "Status": e.action, "ID": e.id, "id": e.id,
        "Actor": {"ID": e.id, "Attributes": dict(e.attributes)},
        "From": e.attributes.get("image", ""), "Scope": "local",
        "time": ns // 1_000_000_000, "timeNano": ns,
    }


@click.command()
@click.option("--since", default="", help="Show all events created since timestamp")
@click.option("--until", default="", help="Stream events until this timestamp")
@filter_option
@format_option
def events(since: str, until: str, filters: tuple[str, ...], fmt: str | None) -> None:
    """Get real time events from the daemon."""
    import json
    from datetime import UTC, datetime

    from servin.api.servin.v1 import system_pb2
    from servin.cli.commands.containers import parse_time
    from servin.cli.gotemplate import Template
    from servin.cli.options import parse_filters
    from servin.cli.output import unescape

    request = system_pb2.EventsRequest(
        since=parse_time(since, "--since"), until=parse_time(until, "--until"),
        filters=parse_filters(filters))
    template = Template(unescape(fmt)) if fmt and fmt != "json" else None
    for e in get_client().system.Events(request):
        if fmt == "json":
            click.echo(json.dumps(_event_dict(e), separators=(",", ":")))
        elif template is not None:
            click.echo(template.render(_event_dict(e)))
        else:
            ns = e.time.ToNanoseconds()
            stamp = datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime(
                "%Y-%m-%dT%H:%M:%S") + f".{ns % 1_000_000_000:09d}Z"
            attrs = ", ".join(f"{k}={v}" for k, v in sorted(e.attributes.items()))
            click.echo(f"{stamp} {e.type} {e.action} {e.id}" + (f" ({attrs})" if attrs else ""),
                       nl=True)
        sys.stdout.flush()


@click.group(cls=DockerGroup)
def system() -> None:
    """Manage Servin (info, df, events, prune)."""


system.add_command(info, "info")
system.add_command(system_df, "df")
system.add_command(events, "events")


def prune_containers(client: Client, filters: list[Filter]) -> tuple[list[str], int]:
    """Remove stopped containers: the daemon's Containers.Prune, or (a daemon without it)
    each stopped container by Remove. Returns (removed IDs, bytes reclaimed)."""
    from servin.api.servin.v1 import common_pb2, containers_pb2
    from servin.client.errors import Unimplemented
    from servin.errors import ServinError

    try:
        reply = client.containers.Prune(containers_pb2.PruneContainersRequest(filters=filters))
        return list(reply.deleted), reply.space_reclaimed
    except Unimplemented:
        pass
    stopped = common_pb2.Filter(key="status", values=["created", "exited", "dead"])
    listed = client.containers.List(
        containers_pb2.ListContainersRequest(all=True, size=True, filters=[*filters, stopped])
    )
    deleted, reclaimed = [], 0
    for c in listed.containers:
        try:
            client.containers.Remove(containers_pb2.RemoveContainerRequest(id=c.id))
        except ServinError as exc:  # started or removed meanwhile: not ours to prune
            click.echo(f"Warning: {c.id[:12]}: {exc.message}", err=True)
            continue
        deleted.append(c.id)
        reclaimed += c.size_rw
    return deleted, reclaimed


@click.command("prune")
@click.option("-a", "--all", "all_", is_flag=True,
              help="Remove all unused images, not just dangling ones")
@click.option("--volumes", is_flag=True, help="Prune anonymous volumes")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="Provide filter values (e.g. label=<key>=<value>)")
def system_prune(all_: bool, volumes: bool, force: bool, filters: tuple[str, ...]) -> None:
    """Remove stopped containers, unused networks, dangling images (and volumes)."""
    from servin.api.servin.v1 import images_pb2, networks_pb2, volumes_pb2
    from servin.cli.options import parse_filters
    from servin.client.errors import Unimplemented
    from servin.humanize import human_size

    parsed = parse_filters(filters)
    if not force:
        items = [
            "all stopped containers",
            "all networks not used by at least one container",
            *(["all anonymous volumes not used by at least one container"] if volumes else []),
            "all images without at least one container associated to them"
            if all_ else "all dangling images",
        ]
        click.echo("WARNING! This will remove:\n" + "".join(f"  - {i}\n" for i in items), nl=False)
        if not click.confirm("Are you sure you want to continue?", default=False):
            return
    client = get_client()
    total = 0
    not_pruned: list[str] = []
    deleted, reclaimed = prune_containers(client, parsed)
    total += reclaimed
    if deleted:
        click.echo("Deleted Containers:\n" + "\n".join(deleted) + "\n")
    try:
        reply = client.networks.Prune(networks_pb2.PruneNetworksRequest(filters=parsed))
        if reply.deleted:
            click.echo("Deleted Networks:\n" + "\n".join(reply.deleted) + "\n")
    except Unimplemented:
        not_pruned.append("networks")
    if volumes:
        try:
            vreply = client.volumes.Prune(volumes_pb2.PruneVolumesRequest(filters=parsed))
            total += vreply.space_reclaimed
            if vreply.deleted:
                click.echo("Deleted Volumes:\n" + "\n".join(vreply.deleted) + "\n")
        except Unimplemented:
            not_pruned.append("volumes")
    try:
        ireply = client.images.Prune(images_pb2.PruneImagesRequest(all=all_, filters=parsed))
        total += ireply.space_reclaimed
        lines = [f"untagged: {u}" for u in ireply.untagged]
        lines += [f"deleted: {d}" for d in ireply.deleted]
        if lines:
            click.echo("Deleted Images:\n" + "\n".join(lines) + "\n")
    except Unimplemented:
        not_pruned.append("images")
    click.echo(f"Total reclaimed space: {human_size(total)}")
    if not_pruned:
        click.echo(
            f"Not pruned ({', '.join(not_pruned)}): the daemon does not support pruning them",
            err=True,
        )


system.add_command(system_prune, "prune")
