"""``servin network ...`` and ``servin port``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from servin.cli.each import inspect_each
from servin.cli.flagsyntax import DockerGroup
from servin.cli.options import add_commands, filter_option, format_option, parse_filters
from servin.cli.session import get_client
from servin.errors import InvalidArgument, ServinError

if TYPE_CHECKING:
    from servin.api.servin.v1.containers_pb2 import PortMapping


def _labels(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for value in values:
        key, _, val = value.partition("=")
        if not key:
            raise InvalidArgument(f"invalid label {value!r}: expected key=value")
        out[key] = val
    return out


@click.command("create")
@click.option("-d", "--driver", default="bridge", help="Driver to manage the Network")
@click.option("--subnet", default="", help="Subnet in CIDR format")
@click.option("--gateway", default="", help="IPv4 gateway for the subnet")
@click.option("--ip-range", default="", help="Allocate container IPs from a sub-range")
@click.option("--internal", is_flag=True, help="Restrict external access to the network")
@click.option("--label", multiple=True, help="Set metadata on a network (key=value)")
@click.option("-o", "--opt", multiple=True, help="Set driver specific options (key=value)")
@click.argument("name")
def network_create(driver: str, subnet: str, gateway: str, ip_range: str, internal: bool,
                   label: tuple[str, ...], opt: tuple[str, ...], name: str) -> None:
    """Create a network."""
    from servin.api.servin.v1 import networks_pb2

    ipam = [networks_pb2.IPAMConfig(subnet=subnet, gateway=gateway, ip_range=ip_range)] \
        if (subnet or gateway or ip_range) else []
    n = get_client().networks.Create(networks_pb2.CreateNetworkRequest(
        name=name, driver=driver, ipam=ipam, internal=internal, labels=_labels(label),
        options=_labels(opt),
    ))
    click.echo(n.id)


@click.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output")
@filter_option
@format_option
def network_ls(quiet: bool, no_trunc: bool, filters: tuple[str, ...], fmt: str | None) -> None:
    """List networks."""
    from servin.api.servin.v1 import networks_pb2
    from servin.cli.output import print_rows

    reply = get_client().networks.List(
        networks_pb2.ListNetworksRequest(filters=parse_filters(filters)))
    rows = [
        {
            "ID": n.id if no_trunc else n.id[:12],
            "Name": n.name,
            "Driver": n.driver,
            "Scope": n.scope or "local",
            "Subnet": n.ipam[0].subnet if n.ipam else "",
            "Internal": str(n.internal).lower(),
            "Labels": ",".join(f"{k}={v}" for k, v in sorted(n.labels.items())),
        }
        for n in reply.networks
    ]
    print_rows([("NETWORK ID", "ID"), ("NAME", "Name"), ("DRIVER", "Driver"),
                ("SCOPE", "Scope")], rows, fmt, quiet_key="ID", quiet=quiet)


@click.command("inspect")
@click.option("-f", "--format", "fmt", metavar="FORMAT",
              help="Format the output using a Go template")
@click.argument("networks", nargs=-1, required=True)
def network_inspect(fmt: str | None, networks: tuple[str, ...]) -> None:
    """Display detailed information on one or more networks."""
    from servin.api.servin.v1 import networks_pb2

    client = get_client()
    inspect_each(networks, lambda name: client.networks.Inspect(
        networks_pb2.InspectNetworkRequest(id=name)), fmt)


@click.command("rm")
@click.argument("networks", nargs=-1, required=True)
def network_rm(networks: tuple[str, ...]) -> None:
    """Remove one or more networks."""
    from servin.api.servin.v1 import networks_pb2

    client = get_client()
    error: ServinError | None = None
    for name in networks:
        try:
            client.networks.Remove(networks_pb2.RemoveNetworkRequest(id=name))
            click.echo(name)
        except ServinError as exc:
            if error is not None:
                click.echo(f"Error: {error.message}", err=True)
            error = exc
    if error is not None:
        raise error


@click.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="Provide filter values (e.g. label=key=value)")
def network_prune(force: bool, filters: tuple[str, ...]) -> None:
    """Remove all unused networks."""
    from servin.api.servin.v1 import networks_pb2

    if not force and not click.confirm(
        "WARNING! This will remove all custom networks not used by at least one container.\n"
        "Are you sure you want to continue?"
    ):
        return
    reply = get_client().networks.Prune(
        networks_pb2.PruneNetworksRequest(filters=parse_filters(filters)))
    if reply.deleted:
        click.echo("Deleted Networks:")
        for name in reply.deleted:
            click.echo(name)


@click.command("connect")
@click.option("--alias", multiple=True, help="Add network-scoped alias for the container")
@click.option("--ip", default="", help="IPv4 address (e.g., 172.30.100.104)")
@click.argument("network")
@click.argument("container")
def network_connect(alias: tuple[str, ...], ip: str, network: str, container: str) -> None:
    """Connect a container to a network."""
    from servin.api.servin.v1 import networks_pb2

    get_client().networks.Connect(networks_pb2.ConnectNetworkRequest(
        network=network, container=container, aliases=list(alias), ipv4_address=ip))


@click.command("disconnect")
@click.option("-f", "--force", is_flag=True, help="Force the container to disconnect")
@click.argument("network")
@click.argument("container")
def network_disconnect(force: bool, network: str, container: str) -> None:
    """Disconnect a container from a network."""
    from servin.api.servin.v1 import networks_pb2

    get_client().networks.Disconnect(networks_pb2.DisconnectNetworkRequest(
        network=network, container=container, force=force))


@click.group(cls=DockerGroup)
def network() -> None:
    """Manage networks."""


add_commands(
    network,
    (
        (network_create, ("create",)),
        (network_ls, ("ls", "list")),
        (network_inspect, ("inspect",)),
        (network_rm, ("rm", "remove")),
        (network_prune, ("prune",)),
        (network_connect, ("connect",)),
        (network_disconnect, ("disconnect",)),
    ),
)


def format_port(p: PortMapping) -> str:
    """``0.0.0.0:32768`` for one mapping."""
    return f"{p.host_ip or '0.0.0.0'}:{p.host_port}"


@click.command()
@click.argument("container")
@click.argument("private_port", required=False, default="")
def port(container: str, private_port: str) -> None:
    """List port mappings or a specific mapping for the container."""
    from servin.api.servin.v1 import containers_pb2

    d = get_client().containers.Inspect(containers_pb2.InspectContainerRequest(id=container))
    wanted_port, _, wanted_proto = private_port.partition("/")
    found = False
    for p in sorted(d.ports, key=lambda p: (p.container_port, p.protocol)):
        if wanted_port and (str(p.container_port) != wanted_port
                            or p.protocol != (wanted_proto or "tcp")):
            continue
        found = True
        if wanted_port:
            click.echo(format_port(p))
        else:
            click.echo(f"{p.container_port}/{p.protocol} -> {format_port(p)}")
    if wanted_port and not found:
        from servin.errors import NotFound

        raise NotFound(f"No public port '{wanted_port}/{wanted_proto or 'tcp'}' published "
                       f"for {container}")
