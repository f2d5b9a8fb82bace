"""``servin version``, ``servin info`` and ``servin system ...``."""

from __future__ import annotations

import platform
import sys
from typing import Any

import click

from servin.cli.options import format_option
from servin.cli.session import get_client


def _client_version() -> dict[str, Any]:
    from servin import API_VERSION, __version__

    return {
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "PythonVersion": platform.python_version(),
        "Os": "linux",
        "Arch": platform.machine(),
    }


@click.command()
@format_option
def version(fmt: str | None) -> None:
    """Show the Servin version information (client and server)."""
    from google.protobuf.json_format import MessageToDict

    from servin.api.servin.v1 import system_pb2
    from servin.cli.output import print_object
    from servin.errors import ServinError

    data: dict[str, Any] = {"Client": _client_version()}
    error: ServinError | None = None
    try:
        reply = get_client().system.Version(system_pb2.VersionRequest())
        server = MessageToDict(reply, preserving_proto_field_name=True)
        data["Server"] = {
            "Version": reply.version,
            "ApiVersion": reply.api_version,
            "GitCommit": reply.git_commit,
            "PythonVersion": reply.python_version,
            "Os": reply.os,
            "Arch": reply.arch,
            "KernelVersion": reply.kernel_version,
            "Components": server.get("components", []),
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
@format_option
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


@click.command("df")
@format_option
def system_df(fmt: str | None) -> None:
    """Show disk usage of images, containers, volumes and build cache."""
    from servin.api.servin.v1 import system_pb2
    from servin.cli.output import print_rows
    from servin.humanize import human_size

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


def _event_dict(e: Any) -> dict[str, Any]:
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
@click.option("-f", "--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="Filter output (type=, event=, container=, image=, label=, ...)")
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


@click.group()
def system() -> None:
    """Manage Servin."""


system.add_command(info, "info")
system.add_command(system_df, "df")
system.add_command(events, "events")
