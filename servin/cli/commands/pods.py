"""``servin pod ...``: create, ls, inspect, start, stop, restart, kill, pause, unpause, rm,
prune, top, stats, logs (podman's pod commands are the model for the output)."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, BinaryIO

import click

from servin.cli.each import for_each, inspect_each
from servin.cli.flagsyntax import DockerGroup
from servin.cli.options import add_commands, filter_option, format_option, parse_filters
from servin.cli.session import get_client, target
from servin.errors import InvalidArgument, ServinError

if TYPE_CHECKING:
    from servin.api.servin.v1.containers_pb2 import ContainerLogsRequest
    from servin.api.servin.v1.pods_pb2 import Pod, PodStatsResponse

SHARABLE = ("net", "ipc", "uts", "pid")
ALWAYS_SHARED = {"net", "ipc", "uts"}


def _kv(values: tuple[str, ...], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid {flag} {item!r}: expected KEY=VALUE")
        out[key] = value if sep else ""
    return out


def parse_share(text: str) -> bool:
    """``--share net,ipc,uts[,pid]`` (or ``+pid``): whether the PID namespace is shared."""
    if not text:
        return False
    items = [s.strip() for s in text.lstrip("+").split(",") if s.strip()]
    for item in items:
        if item not in SHARABLE:
            raise InvalidArgument(f"invalid --share {item!r} (valid: {', '.join(SHARABLE)})")
    if not text.startswith("+") and not set(items) >= ALWAYS_SHARED:
        raise InvalidArgument("--share: net, ipc and uts are always shared in a pod "
                              "(give them, or +pid to add pid)")
    return "pid" in items


@click.command("create")
@click.option("--name", default="", help="Assign a name to the pod")
@click.option("-l", "--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="Set metadata on the pod")
@click.option("-p", "--publish", multiple=True, metavar="[IP:][HOST:]CONTAINER[/PROTO]",
              help="Publish a port of the pod to the host")
@click.option("--share", default="", metavar="NAMESPACES",
              help="Namespaces to share: net,ipc,uts (always), pid (or +pid)")
@click.option("--hostname", default="", help="The pod's hostname (default: its name)")
@click.option("--dns", multiple=True, help="DNS servers of the pod")
@click.option("--dns-search", multiple=True, help="DNS search domains of the pod")
@click.option("--dns-option", multiple=True, help="DNS options of the pod")
@click.option("--add-host", multiple=True, metavar="HOST:IP", help="Add a host-to-IP mapping")
@click.option("--network", "--net", "network", default="",
              help="The pod's network: bridge (default), a network name, host or none")
@click.option("--network-alias", multiple=True, help="Network-scoped alias of the pod")
@click.option("-m", "--memory", default="", help="Memory limit of the whole pod")
@click.option("--cpus", default="", help="Number of CPUs the whole pod may use")
@click.option("--cgroup-parent", default="", help="Parent cgroup of the pod's cgroup")
def pod_create(name: str, labels: tuple[str, ...], publish: tuple[str, ...], share: str,
               hostname: str, dns: tuple[str, ...], dns_search: tuple[str, ...],
               dns_option: tuple[str, ...], add_host: tuple[str, ...], network: str,
               network_alias: tuple[str, ...], memory: str, cpus: str,
               cgroup_parent: str) -> None:
    """Create a new empty pod (its infra container is created, not started)."""
    from servin.api.servin.v1 import pods_pb2
    from servin.cli.runflags import parse_publish
    from servin.units import parse_bytes

    spec = pods_pb2.PodSpec(
        hostname=hostname, labels=_kv(labels, "--label"), network=network,
        share_pid=parse_share(share), dns=list(dns), dns_search=list(dns_search),
        dns_options=list(dns_option), extra_hosts=list(add_host),
        aliases=list(network_alias), cgroup_parent=cgroup_parent,
    )
    for item in publish:
        spec.ports.extend(parse_publish(item))
    if memory:
        spec.memory = parse_bytes(memory, "--memory")
    if cpus:
        try:
            spec.nano_cpus = round(float(cpus) * 1e9)
        except ValueError:
            raise InvalidArgument(f"invalid argument {cpus!r} for --cpus") from None
    pod = get_client().pods.Create(pods_pb2.CreatePodRequest(name=name, spec=spec))
    click.echo(pod.id)


def pod_row(p: Pod, no_trunc: bool = False) -> dict[str, str]:
    """The template fields of one pod (podman's ``pod ps`` names)."""
    from servin.humanize import ago

    infra = p.infra_container_id
    return {
        "ID": p.id if no_trunc else p.id[:12],
        "Name": p.name,
        "Status": p.state,
        "Created": ago(p.created.seconds) if p.created.seconds else "",
        "InfraID": infra if no_trunc else infra[:12],
        "NumberOfContainers": str(len(p.containers)),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(p.spec.labels.items())),
        "Networks": ",".join(p.networks),
        "ContainerNames": ",".join(c.name for c in p.containers if not c.infra),
        "ContainerStatuses": ",".join(c.status for c in p.containers if not c.infra),
    }


@click.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Print only the pod IDs")
@click.option("--no-trunc", is_flag=True, help="Do not truncate IDs")
@click.option("--ctr-names", is_flag=True, help="Show the names of the containers")
@click.option("--ctr-status", is_flag=True, help="Show the statuses of the containers")
@filter_option
@format_option
def pod_ls(quiet: bool, no_trunc: bool, ctr_names: bool, ctr_status: bool,
           filters: tuple[str, ...], fmt: str | None) -> None:
    """List pods."""
    from servin.api.servin.v1 import pods_pb2
    from servin.cli.output import print_rows

    reply = get_client().pods.List(pods_pb2.ListPodsRequest(filters=parse_filters(filters)))
    rows = [pod_row(p, no_trunc) for p in reply.pods]
    columns = [("POD ID", "ID"), ("NAME", "Name"), ("STATUS", "Status"), ("CREATED", "Created"),
               ("INFRA ID", "InfraID")]
    if ctr_names:
        columns.append(("NAMES", "ContainerNames"))
    if ctr_status:
        columns.append(("STATUS", "ContainerStatuses"))
    columns.append(("# OF CONTAINERS", "NumberOfContainers"))
    print_rows(columns, rows, fmt, quiet_key="ID", quiet=quiet)


@click.command("inspect")
@click.option("-f", "--format", "fmt", metavar="FORMAT",
              help="json, or a Go template ({{.InfraContainerID}})")
@click.argument("pods", nargs=-1, required=True)
def pod_inspect(fmt: str | None, pods: tuple[str, ...]) -> None:
    """Display detailed information on one or more pods."""
    from servin.api.servin.v1 import pods_pb2

    client = get_client()
    inspect_each(pods, lambda name: client.pods.Inspect(pods_pb2.PodRequest(id=name)), fmt)


@click.command("start")
@click.argument("pods", nargs=-1, required=True)
def pod_start(pods: tuple[str, ...]) -> None:
    """Start one or more pods (the infra, then every container)."""
    from servin.api.servin.v1 import pods_pb2

    client = get_client()
    for_each(pods, lambda p: client.pods.Start(pods_pb2.PodRequest(id=p)).id)


@click.command("stop")
@click.option("-t", "--time", "timeout", type=int, default=None,
              help="Seconds to wait for each container to stop before killing it")
@click.argument("pods", nargs=-1, required=True)
def pod_stop(timeout: int | None, pods: tuple[str, ...]) -> None:
    """Stop one or more pods (the containers, then the infra)."""
    from servin.api.servin.v1 import pods_pb2

    client = get_client()
    for_each(pods, lambda p: client.pods.Stop(pods_pb2.StopPodRequest(
        id=p, timeout=timeout or 0, has_timeout=timeout is not None)).id)


@click.command("restart")
@click.option("-t", "--time", "timeout", type=int, default=None,
              help="Seconds to wait for each container to stop before killing it")
@click.argument("pods", nargs=-1, required=True)
def pod_restart(timeout: int | None, pods: tuple[str, ...]) -> None:
    """Restart one or more pods."""
    from servin.api.servin.v1 import pods_pb2

    client = get_client()
    for_each(pods, lambda p: client.pods.Restart(pods_pb2.StopPodRequest(
        id=p, timeout=timeout or 0, has_timeout=timeout is not None)).id)


@click.command("kill")
@click.option("-s", "--signal", "signal_", default="KILL", help="Signal to send")
@click.argument("pods", nargs=-1, required=True)
def pod_kill(signal_: str, pods: tuple[str, ...]) -> None:
    """Send a signal to every running container of one or more pods."""
    from servin.api.servin.v1 import pods_pb2

    client = get_client()
    for_each(pods, lambda p: client.pods.Kill(pods_pb2.KillPodRequest(id=p,
                                                                      signal=signal_)).id)


@click.command("pause")
@click.argument("pods", nargs=-1, required=True)
def pod_pause(pods: tuple[str, ...]) -> None:
    """Pause every running container of one or more pods."""
    from servin.api.servin.v1 import pods_pb2

    client = get_client()
    for_each(pods, lambda p: client.pods.Pause(pods_pb2.PodRequest(id=p)).id)


@click.command("unpause")
@click.argument("pods", nargs=-1, required=True)
def pod_unpause(pods: tuple[str, ...]) -> None:
    """Unpause every paused container of one or more pods."""
    from servin.api.servin.v1 import pods_pb2

    client = get_client()
    for_each(pods, lambda p: client.pods.Unpause(pods_pb2.PodRequest(id=p)).id)


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="Stop and remove running containers too")
@click.option("-a", "--all", "all_", is_flag=True, help="Remove every pod")
@click.argument("pods", nargs=-1)
def pod_rm(force: bool, all_: bool, pods: tuple[str, ...]) -> None:
    """Remove one or more pods with their containers."""
    from servin.api.servin.v1 import pods_pb2

    client = get_client()
    if all_:
        pods = tuple(p.id for p in client.pods.List(pods_pb2.ListPodsRequest()).pods)
    elif not pods:
        raise InvalidArgument("pod rm needs at least one pod (or --all)")
    for_each(pods, lambda p: client.pods.Remove(pods_pb2.RemovePodRequest(id=p,
                                                                          force=force)).id)


@click.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
def pod_prune(force: bool) -> None:
    """Remove every pod that has no running container."""
    from servin.api.servin.v1 import pods_pb2

    if not force:
        click.confirm("WARNING! This will remove all stopped/exited pods.\n"
                      "Are you sure you want to continue?", abort=True)
    for pod_id in get_client().pods.Prune(pods_pb2.PrunePodsRequest()).deleted:
        click.echo(pod_id)


@click.command("top", context_settings={"ignore_unknown_options": True})
@click.argument("pod")
@click.argument("ps_args", nargs=-1, type=click.UNPROCESSED)
def pod_top(pod: str, ps_args: tuple[str, ...]) -> None:
    """Display the running processes of every container of a pod (ps options: -ef)."""
    from servin.api.servin.v1 import pods_pb2
    from servin.cli.output import print_rows

    reply = get_client().pods.Top(pods_pb2.PodTopRequest(id=pod, ps_args=list(ps_args)))
    columns = [(title, str(i)) for i, title in enumerate(reply.titles)]
    rows = [{str(i): v for i, v in enumerate(row.fields)} for row in reply.processes]
    print_rows(columns, rows, None)


STATS_COLUMNS = [("POD", "Pod"), ("CID", "CID"), ("NAME", "Name"), ("CPU %", "CPUPerc"),
                 ("MEM USAGE / LIMIT", "MemUsage"), ("MEM %", "MemPerc"), ("NET IO", "NetIO"),
                 ("BLOCK IO", "BlockIO"), ("PIDS", "PIDs")]


def pod_stats_rows(reply: PodStatsResponse) -> list[dict[str, str]]:
    """One row per running container of each pod (podman's ``pod stats``)."""
    from servin.cli.statsview import stats_row

    rows = []
    for p in reply.pods:
        for s in p.containers:
            row = stats_row(s, s.id[:12], False)
            row.update({"Pod": p.id[:12], "PodName": p.name, "CID": s.id[:12]})
            rows.append(row)
    return rows


@click.command("stats")
@click.option("-a", "--all", "all_", is_flag=True, help="Show every pod (the default)")
@click.option("--no-stream", is_flag=True, help="Print one pass and exit")
@format_option
@click.argument("pods", nargs=-1)
def pod_stats(all_: bool, no_stream: bool, fmt: str | None, pods: tuple[str, ...]) -> None:
    """Display the resource usage of the containers of pods."""
    import time

    from servin.api.servin.v1 import pods_pb2
    from servin.cli.commands.stats import LiveScreen
    from servin.cli.output import is_terminal
    from servin.cli.statsview import header
    from servin.cli.tables import align

    client = get_client()
    live = LiveScreen() if is_terminal() and not no_stream else None

    def frame() -> list[str]:
        reply = client.pods.Stats(pods_pb2.PodStatsRequest(ids=list(pods)))
        rows = pod_stats_rows(reply)
        if fmt and not fmt.startswith("table"):
            from servin.cli.statsview import render

            return render(rows, fmt)
        if fmt:
            from servin.cli.gotemplate import Template

            cells = fmt[len("table"):].strip().replace("\\t", "\t").split("\t")
            table = [[header(c) for c in cells]]
            table += [[Template(c).render(r) for c in cells] for r in rows]
            return align(table)
        table = [[h for h, _ in STATS_COLUMNS]]
        table += [[r[f] for _, f in STATS_COLUMNS] for r in rows]
        return align(table)

    try:
        while True:
            lines = frame()
            if live is not None:
                live.draw(lines)
            else:
                click.echo("\n".join(lines))
            if no_stream:
                return
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        if live is not None:
            live.close()


@click.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Follow log output")
@click.option("-n", "--tail", default="all", help="Number of lines to show from each container")
@click.option("--since", default="", help="Show logs since timestamp or relative (e.g. 42m)")
@click.option("--until", default="", help="Show logs before a timestamp or relative time")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps")
@click.option("-c", "--container", "only", default="", help="Only this container's logs")
@click.argument("pod")
def pod_logs(follow: bool, tail: str, since: str, until: str, timestamps: bool, only: str,
             pod: str) -> None:
    """Fetch the logs of a pod's containers, merged in time order, each line tagged with its
    container's name."""
    from servin.api.servin.v1 import containers_pb2, pods_pb2
    from servin.cli.commands.containers import parse_time
    from servin.client.logs import Stamper, records

    try:
        tail_n = -1 if tail == "all" else int(tail)
    except ValueError:
        raise InvalidArgument(f"invalid value for --tail: {tail!r}") from None
    client = get_client()
    found = client.pods.Inspect(pods_pb2.PodRequest(id=pod))
    members = [c for c in found.containers if not c.infra]
    if only:
        members = [c for c in members if c.name == only or c.id.startswith(only)]
        if not members:
            raise InvalidArgument(f"no container {only!r} in pod {found.name}")
    width = max((len(c.name) for c in members), default=0)
    stamp = Stamper() if timestamps else None

    def request(cid: str) -> ContainerLogsRequest:
        # Times are always asked for: they order the merge.
        return containers_pb2.ContainerLogsRequest(
            id=cid, follow=follow, stdout=True, stderr=True, tail=tail_n,
            since=parse_time(since, "--since"), until=parse_time(until, "--until"),
            timestamps=True)

    def line(name: str, stream: int, ns: int, data: bytes) -> tuple[BinaryIO, bytes]:
        prefix = name.ljust(width).encode() + b" "
        if stamp is not None:
            prefix += stamp(ns) + b" "
        return (sys.stderr.buffer if stream == 2 else sys.stdout.buffer), prefix + data

    if not follow:
        merged: list[tuple[int, int, str, int, bytes]] = []
        for order, c in enumerate(members):
            for chunk in client.containers.Logs(request(c.id)):
                merged.extend((ns, order, c.name, stream, data)
                              for stream, ns, data in records(chunk))
        merged.sort(key=lambda item: (item[0], item[1]))
        try:
            for ns, _, name, stream, data in merged:
                out, text = line(name, stream, ns, data)
                out.write(text)
        finally:
            sys.stdout.buffer.flush()
            sys.stderr.buffer.flush()
        return
    lock = threading.Lock()
    errors: list[ServinError] = []
    daemon = target()  # the threads have no click context

    def follow_one(name: str, cid: str) -> None:
        from servin.client.sync import Client

        try:
            with Client(daemon) as own:
                for chunk in own.containers.Logs(request(cid)):
                    with lock:
                        for stream, ns, data in records(chunk):
                            out, text = line(name, stream, ns, data)
                            out.write(text)
                            out.flush()
        except ServinError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=follow_one, args=(c.name, c.id), daemon=True)
               for c in members]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except KeyboardInterrupt:
        return
    if errors:
        raise errors[0]


@click.group(cls=DockerGroup)
def pod() -> None:
    """Manage pods."""


add_commands(
    pod,
    (
        (pod_create, ("create",)),
        (pod_ls, ("ls", "list", "ps")),
        (pod_inspect, ("inspect",)),
        (pod_start, ("start",)),
        (pod_stop, ("stop",)),
        (pod_restart, ("restart",)),
        (pod_kill, ("kill",)),
        (pod_pause, ("pause",)),
        (pod_unpause, ("unpause",)),
        (pod_rm, ("rm", "remove")),
        (pod_prune, ("prune",)),
        (pod_top, ("top",)),
        (pod_stats, ("stats",)),
        (pod_logs, ("logs",)),
    ),
)
