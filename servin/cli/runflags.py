"""``run``/``create`` flags (docker's spelling) and the ContainerSpec they build."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from servin.cli.execout import env_items
from servin.errors import InvalidArgument
from servin.units import parse_bytes
from servin.units import parse_duration_ns as parse_duration

if TYPE_CHECKING:
    from servin.api.servin.v1.common_pb2 import Mount, PortBinding, Resources
    from servin.api.servin.v1.containers_pb2 import ContainerSpec, RestartPolicy


def _opt(*decls: str, **kw: Any) -> Callable[[Any], Any]:
    return click.option(*decls, **kw)


RUN_OPTIONS = [
    _opt("--name", default="", help="Assign a name to the container"),
    _opt(
        "-e", "--env", "env", multiple=True, metavar="KEY=VALUE", help="Set environment variables"
    ),
    _opt(
        "--env-file",
        multiple=True,
        type=click.Path(dir_okay=False),
        help="Read in a file of environment variables",
    ),
    _opt("-w", "--workdir", default="", help="Working directory inside the container"),
    _opt("-u", "--user", default="", help="Username or UID (format: <name|uid>[:<group|gid>])"),
    _opt("--entrypoint", default=None, help="Overwrite the default ENTRYPOINT of the image"),
    _opt("-h", "--hostname", default="", help="Container host name"),
    _opt("--domainname", default="", help="Container NIS domain name"),
    _opt("-l", "--label", "labels", multiple=True, help="Set meta data on a container"),
    _opt("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY"),
    _opt("-i", "--interactive", is_flag=True, help="Keep STDIN open even if not attached"),
    _opt("-m", "--memory", default="", help="Memory limit"),
    _opt("--memory-swap", default="", help="Swap limit equal to memory plus swap: -1 = unlimited"),
    _opt("--memory-reservation", default="", help="Memory soft limit"),
    _opt("--cpus", default="", help="Number of CPUs"),
    _opt("--cpu-shares", "-c", type=int, default=0, help="CPU shares (relative weight)"),
    _opt("--cpu-period", type=int, default=0, help="Limit CPU CFS period"),
    _opt("--cpu-quota", type=int, default=0, help="Limit CPU CFS quota"),
    _opt("--cpuset-cpus", default="", help="CPUs in which to allow execution (0-3, 0,1)"),
    _opt("--cpuset-mems", default="", help="MEMs in which to allow execution (0-3, 0,1)"),
    _opt("--pids-limit", type=int, default=0, help="Tune container pids limit (-1 for unlimited)"),
    _opt("--oom-score-adj", type=int, default=0, help="Tune host's OOM preferences"),
    _opt("--oom-kill-disable", is_flag=True, help="Disable OOM Killer"),
    _opt(
        "--network", "--net", "network", default="",
        help="Connect to a network: bridge (default), host, none, container:NAME, or a name",
    ),
    _opt("--network-alias", multiple=True, help="Add network-scoped alias for the container"),
    _opt("--pod", default="", help="Run in an existing pod (joins its namespaces and cgroup)"),
    _opt("--ip", default="", help="IPv4 address on the network (e.g., 10.89.0.10)"),
    _opt("-p", "--publish", multiple=True, metavar="[IP:][HOST:]CONTAINER[/PROTO]",
         help="Publish a container's port(s) to the host"),
    _opt("-P", "--publish-all", is_flag=True,
         help="Publish all exposed ports to random ports"),
    _opt("--expose", multiple=True, help="Expose a port or a range of ports"),
    _opt("--mac-address", default="", help="Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
    _opt("--ipc", default="", help="IPC mode: private, shareable, host, container:NAME"),
    _opt("--pid", default="", help="PID namespace: host or container:NAME"),
    _opt("--uts", default="", help="UTS namespace: host"),
    _opt("--cgroupns", default="", type=click.Choice(["", "host", "private"]),
         metavar="host|private", help="Cgroup namespace to use (default private)"),
    _opt("--stop-signal", default="", help="Signal to stop the container"),
    _opt("--stop-timeout", type=int, default=None, help="Timeout (in seconds) to stop a container"),
    _opt("--cap-add", multiple=True, help="Add Linux capabilities"),
    _opt("--cap-drop", multiple=True, help="Drop Linux capabilities"),
    _opt("--privileged", is_flag=True,
         help="Give extended privileges (and the host's devices) to this container"),
    _opt("--device", "devices", multiple=True, metavar="HOST[:CONTAINER][:rwm]",
         help="Add a host device to the container"),
    _opt("--device-cgroup-rule", multiple=True, metavar="'c|b|a MAJOR:MINOR rwm'",
         help="Add a rule to the cgroup allowed devices list"),
    _opt("--init", is_flag=True,
         help="Run an init inside the container that forwards signals and reaps processes"),
    _opt(
        "--security-opt",
        multiple=True,
        help="Security options: seccomp=unconfined|PROFILE.json, no-new-privileges[=false]",
    ),
    _opt("--read-only", is_flag=True, help="Mount the container's root filesystem as read only"),
    _opt("--runtime", default="", help="Runtime to use for this container: native, runc, crun"),
    _opt(
        "-v",
        "--volume",
        "volumes",
        multiple=True,
        metavar="SRC:DST[:OPTS]",
        help="Mount a volume (NAME:/path[:ro]) or bind a host path (/host/path:/path[:ro,...])",
    ),
    _opt(
        "--mount",
        "mounts",
        multiple=True,
        help="Attach a filesystem mount (type=volume|bind|tmpfs,source=,target=,readonly,...)",
    ),
    _opt(
        "--volumes-from",
        multiple=True,
        metavar="CONTAINER[:ro|rw]",
        help="Mount the volumes of another container",
    ),
    _opt("--tmpfs", multiple=True, metavar="PATH[:OPTS]", help="Mount a tmpfs directory"),
    _opt("--dns", multiple=True, help="Set custom DNS servers"),
    _opt("--dns-search", multiple=True, help="Set custom DNS search domains"),
    _opt("--dns-option", "--dns-opt", "dns_option", multiple=True, help="Set DNS options"),
    _opt("--add-host", multiple=True, metavar="HOST:IP", help="Add a custom host-to-IP mapping"),
    _opt("--log-driver", default="", help="Logging driver: json-file (default) or cri"),
    _opt(
        "--log-opt",
        multiple=True,
        metavar="KEY=VALUE",
        help="Log driver options (max-size, max-file)",
    ),
    _opt("--sysctl", multiple=True, metavar="KEY=VALUE", help="Sysctl options"),
    _opt("--ulimit", multiple=True, metavar="NAME=SOFT[:HARD]", help="Ulimit options"),
    _opt("--shm-size", default="", help="Size of /dev/shm"),
    _opt("--group-add", multiple=True, help="Add additional groups to join"),
    _opt("--health-cmd", default="", help="Command to run to check health"),
    _opt("--health-interval", default="", help="Time between running the check (ms|s|m|h)"),
    _opt("--health-timeout", default="", help="Maximum time to allow one check to run"),
    _opt("--health-start-period", default="",
         help="Start period for the container to initialize before counting retries"),
    _opt("--health-retries", type=int, default=0,
         help="Consecutive failures needed to report unhealthy"),
    _opt("--no-healthcheck", is_flag=True, help="Disable any container-specified HEALTHCHECK"),
    _opt(
        "--restart",
        default="",
        metavar="POLICY",
        help="Restart policy: no, on-failure[:max-retries], always, unless-stopped",
    ),
    _opt(
        "--annotation", multiple=True, metavar="KEY=VALUE", help="Add an annotation to the OCI spec"
    ),
    _opt("--cidfile", default="", type=click.Path(dir_okay=False),
         help="Write the container ID to the file"),
    _opt("-q", "--quiet", is_flag=True, help="Suppress the pull output"),
    _opt("--rm", "remove", is_flag=True,
         help="Automatically remove the container and its anonymous volumes when it exits"),
]


def run_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a command with every run/create option."""
    for option in reversed(RUN_OPTIONS):
        f = option(f)
    return f


def _kv(items: tuple[str, ...], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid {flag} {item!r}: expected KEY=VALUE")
        out[key] = value if sep else ""
    return out


def _bind_spec(spec: str) -> str:
    """A ``-v`` spec for the daemon (which parses it); a ``./relative`` host path is made
    absolute here, where it means something."""
    source, sep, rest = spec.partition(":")
    if sep and source.startswith("."):
        return f"{Path(source).absolute()}:{rest}"
    return spec


_MOUNT_KEYS = {
    "type", "source", "src", "target", "destination", "dst", "readonly", "ro",
    "bind-propagation", "volume-opt", "volume-nocopy", "volume-driver", "tmpfs-size",
    "tmpfs-mode", "consistency", "bind-nonrecursive",
}


def _mount_flag(spec: str) -> Mount:
    """A ``--mount`` spec (``type=…,source=…,target=…,readonly,…``) as a servin.v1 Mount."""
    from servin.api.servin.v1 import common_pb2

    fields: dict[str, str] = {}
    flags: set[str] = set()
    volume_opts: list[str] = []
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not key:
            raise InvalidArgument(f"invalid --mount {spec!r}: empty field")
        if key not in _MOUNT_KEYS:
            raise InvalidArgument(f"invalid --mount {spec!r}: unexpected key {key!r}")
        if key == "volume-opt":
            if "=" not in value:
                raise InvalidArgument(f"invalid --mount {spec!r}: volume-opt needs KEY=VALUE")
            volume_opts.append(f"volume-opt={value}")
        elif sep:
            fields[key] = value.strip()
        else:
            flags.add(key)
    kind = fields.pop("type", "volume")
    source = fields.pop("source", "") or fields.pop("src", "")
    target = fields.pop("target", "") or fields.pop("destination", "") or fields.pop("dst", "")
    if not target:
        raise InvalidArgument(f"invalid --mount {spec!r}: target is required")
    read_only = bool(flags & {"readonly", "ro"})
    for key in ("readonly", "ro"):
        if key in fields:
            value = fields.pop(key).lower()
            if value not in ("true", "1", "false", "0"):
                raise InvalidArgument(f"invalid --mount {spec!r}: {key}={value}")
            read_only = value in ("true", "1")
    propagation = fields.pop("bind-propagation", "")
    options: list[str] = []
    if "tmpfs-size" in fields:
        options.append(f"size={parse_bytes(fields.pop('tmpfs-size'), '--mount tmpfs-size')}")
    if "tmpfs-mode" in fields:
        options.append(f"mode={fields.pop('tmpfs-mode')}")
    nocopy = fields.pop("volume-nocopy", "true" if "volume-nocopy" in flags else "false")
    if nocopy.lower() in ("true", "1"):
        options.append("nocopy")
    options += volume_opts
    driver = fields.pop("volume-driver", "")
    fields.pop("consistency", None)
    if fields:
        raise InvalidArgument(f"invalid --mount {spec!r}: unexpected key {next(iter(fields))!r}")
    if kind not in ("bind", "volume", "tmpfs"):
        raise InvalidArgument(f"invalid --mount {spec!r}: type must be bind, volume or tmpfs")
    if kind == "bind" and not source:
        raise InvalidArgument(f"invalid --mount {spec!r}: a bind mount needs a source")
    if kind == "bind":
        source = str(Path(source).absolute())
    if kind != "volume" and (volume_opts or "nocopy" in options):
        raise InvalidArgument(f"invalid --mount {spec!r}: volume options need type=volume")
    if kind != "tmpfs" and any(o.startswith(("size=", "mode=")) for o in options):
        raise InvalidArgument(f"invalid --mount {spec!r}: tmpfs options need type=tmpfs")
    return common_pb2.Mount(type=kind, source=source, target=target, read_only=read_only,
                            propagation=propagation, options=options, driver=driver)


def build_spec(image: str, command: tuple[str, ...], o: dict[str, Any]) -> ContainerSpec:
    """A servin.v1 ContainerSpec from parsed run/create options."""
    from servin.api.servin.v1 import common_pb2, containers_pb2

    spec = containers_pb2.ContainerSpec(image=image, cmd=list(command))
    if o["entrypoint"] is not None:
        spec.entrypoint_set = True
        spec.entrypoint.extend([o["entrypoint"]] if o["entrypoint"] else [])
    spec.env.extend(env_items(o["env"], o["env_file"]))
    spec.working_dir = o["workdir"]
    spec.user = o["user"]
    spec.hostname = o["hostname"]
    spec.domainname = o["domainname"]
    spec.labels.update(_kv(o["labels"], "--label"))
    spec.tty = o["tty"]
    spec.open_stdin = o["interactive"]
    spec.stdin_once = o["interactive"]
    r = spec.resources
    if o["memory"]:
        r.memory = parse_bytes(o["memory"], "--memory")
    if o["memory_swap"]:
        r.memory_swap = parse_bytes(o["memory_swap"], "--memory-swap")
    if o["memory_reservation"]:
        r.memory_reservation = parse_bytes(o["memory_reservation"], "--memory-reservation")
    if o["cpus"]:
        try:
            r.nano_cpus = round(float(o["cpus"]) * 1e9)
        except ValueError:
            raise InvalidArgument(f"invalid argument {o['cpus']!r} for --cpus") from None
    r.cpu_shares = o["cpu_shares"]
    r.cpu_period = o["cpu_period"]
    r.cpu_quota = o["cpu_quota"]
    r.cpuset_cpus = o["cpuset_cpus"]
    r.cpuset_mems = o["cpuset_mems"]
    r.pids_limit = o["pids_limit"]
    r.oom_score_adj = o["oom_score_adj"]
    r.oom_kill_disable = o["oom_kill_disable"]
    spec.network_mode = o["network"]
    spec.pod_id = o["pod"]
    if o["network_alias"] or o["ip"] or o["mac_address"]:
        net = o["network"] or "bridge"
        spec.networks[net].aliases.extend(o["network_alias"])
        spec.networks[net].ipv4_address = o["ip"]
        spec.networks[net].mac_address = o["mac_address"]
    for item in o["publish"]:
        spec.ports.extend(parse_publish(item))
    spec.publish_all = o["publish_all"]
    for item in o["expose"]:
        port, _, proto = item.partition("/")
        spec.exposed_ports.append(f"{port}/{proto or 'tcp'}")
    spec.ipc_mode = o["ipc"]
    spec.pid_mode = o["pid"]
    spec.uts_mode = o["uts"]
    spec.cgroupns_mode = o["cgroupns"]
    spec.stop_signal = o["stop_signal"]
    spec.stop_timeout = o["stop_timeout"] if o["stop_timeout"] is not None else -1
    spec.cap_add.extend(o["cap_add"])
    spec.cap_drop.extend(o["cap_drop"])
    spec.privileged = o["privileged"]
    spec.devices.extend(o["devices"])
    spec.device_cgroup_rules.extend(o["device_cgroup_rule"])
    spec.init = o["init"]
    spec.auto_remove = o["remove"]
    for opt in o["security_opt"]:
        key, sep, value = opt.partition("=")
        if key == "seccomp" and sep and value != "unconfined":
            try:
                value = Path(value).read_text()
            except OSError as exc:
                why = (exc.strerror or str(exc)).lower()
                raise InvalidArgument(f"opening seccomp profile ({value}) failed: {why}") from None
            opt = f"seccomp={value}"
        spec.security_opt.append(opt)
    spec.read_only = o["read_only"]
    spec.runtime = o["runtime"]
    spec.binds.extend(_bind_spec(v) for v in o["volumes"])
    spec.mounts.extend(_mount_flag(m) for m in o["mounts"])
    spec.volumes_from.extend(o["volumes_from"])
    for item in o["tmpfs"]:
        target, _, opts = item.partition(":")
        spec.mounts.append(
            common_pb2.Mount(type="tmpfs", target=target, options=[x for x in opts.split(",") if x])
        )
    spec.dns.extend(o["dns"])
    spec.dns_search.extend(o["dns_search"])
    spec.dns_options.extend(o["dns_option"])
    spec.extra_hosts.extend(o["add_host"])
    if o["log_driver"] or o["log_opt"]:
        spec.log_config.type = o["log_driver"] or "json-file"
        spec.log_config.options.update(_kv(o["log_opt"], "--log-opt"))
    spec.sysctls.update(_kv(o["sysctl"], "--sysctl"))
    for item in o["ulimit"]:
        name, sep, limits = item.partition("=")
        soft, _, hard = limits.partition(":")
        try:
            spec.ulimits.append(
                containers_pb2.Ulimit(name=name, soft=int(soft), hard=int(hard or soft))
            )
        except ValueError:
            raise InvalidArgument(f"invalid ulimit argument: {item!r}") from None
        if not sep:
            raise InvalidArgument(f"invalid ulimit argument: {item!r}")
    if o["shm_size"]:
        spec.shm_size = parse_bytes(o["shm_size"], "--shm-size")
    spec.group_add.extend(o["group_add"])
    spec.annotations.extend(o["annotation"])
    if o["restart"]:
        spec.restart_policy.CopyFrom(parse_restart(o["restart"]))
    _health(spec, o)
    return spec


def _health(spec: ContainerSpec, o: dict[str, Any]) -> None:
    h = spec.healthcheck
    if o["no_healthcheck"]:
        if o["health_cmd"]:
            raise InvalidArgument("--no-healthcheck conflicts with --health-* options")
        h.disabled = True
        h.test[:] = ["NONE"]
        return
    if o["health_cmd"]:
        h.test[:] = ["CMD-SHELL", o["health_cmd"]]
    for flag in ("health_interval", "health_timeout", "health_start_period"):
        if o[flag]:
            setattr(h, flag.removeprefix("health_") + "_ns",
                    parse_duration(o[flag], "--" + flag.replace("_", "-")))
    if o["health_retries"] < 0:
        raise InvalidArgument("--health-retries cannot be negative")
    h.retries = o["health_retries"]
    if not (h.test or h.interval_ns or h.timeout_ns or h.start_period_ns or h.retries):
        spec.ClearField("healthcheck")


def parse_restart(text: str) -> RestartPolicy:
    """``on-failure:3`` -> RestartPolicy(name="on-failure", maximum_retry_count=3)."""
    from servin.api.servin.v1 import containers_pb2

    name, sep, count = text.partition(":")
    if sep and not count.isdigit():
        raise InvalidArgument(f"invalid restart policy {text!r}: maximum retry count must be "
                              "a number")
    return containers_pb2.RestartPolicy(name=name, maximum_retry_count=int(count or 0))


UPDATE_FIELDS = {
    # flag name -> (Resources field, parser)
    "memory": ("memory", "bytes"),
    "memory_swap": ("memory_swap", "bytes"),
    "memory_reservation": ("memory_reservation", "bytes"),
    "cpus": ("nano_cpus", "cpus"),
    "cpu_shares": ("cpu_shares", "int"),
    "cpu_period": ("cpu_period", "int"),
    "cpu_quota": ("cpu_quota", "int"),
    "cpuset_cpus": ("cpuset_cpus", "str"),
    "cpuset_mems": ("cpuset_mems", "str"),
    "pids_limit": ("pids_limit", "int"),
}


def build_update(values: dict[str, Any]) -> tuple[Resources, list[str]]:
    """The Resources message and the names of the fields ``update`` was given."""
    from servin.api.servin.v1 import common_pb2

    resources = common_pb2.Resources()
    fields = []
    for flag, (field, kind) in UPDATE_FIELDS.items():
        value = values.get(flag)
        if value in (None, ""):
            continue
        if kind == "bytes":
            value = parse_bytes(str(value), f"--{flag.replace('_', '-')}")
        elif kind == "cpus":
            try:
                value = round(float(value) * 1e9)
            except ValueError:
                raise InvalidArgument(f"invalid argument {value!r} for --cpus") from None
        setattr(resources, field, value)
        fields.append(field)
    return resources, fields


def _port_range(text: str, spec: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    try:
        first, last = int(low), int(high) if sep else int(low)
    except ValueError:
        raise InvalidArgument(f"invalid port specification: {spec!r}") from None
    if not 0 < first <= last < 65536:
        raise InvalidArgument(f"invalid port specification: {spec!r}")
    return first, last


def parse_publish(text: str) -> list[PortBinding]:
    """``-p [IP:][HOST[-HOST]:]CONTAINER[-CONTAINER][/tcp|udp]`` as PortBindings: ranges of the
    same length pair up port by port; a host range for one container port means any free port
    of the range (docker picks one); no host port means any free port."""
    from servin.api.servin.v1 import common_pb2

    body, _, proto = text.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise InvalidArgument(f"invalid protocol {proto!r} in -p {text} (tcp or udp)")
    parts = body.rsplit(":", 2)
    host_ip, host_port, container_port = "", "", parts[-1]
    if len(parts) == 2:
        host_port = parts[0]
    elif len(parts) == 3:
        host_ip, host_port = parts[0].strip("[]"), parts[1]
    if host_ip:
        import ipaddress

        try:
            ipaddress.IPv4Address(host_ip)
        except ValueError:
            raise InvalidArgument(f"invalid IP address {host_ip!r} in -p {text}") from None
    cfirst, clast = _port_range(container_port, text)
    count = clast - cfirst + 1
    if not host_port:
        return [common_pb2.PortBinding(container_port=p, protocol=proto, host_ip=host_ip)
                for p in range(cfirst, clast + 1)]
    hfirst, hlast = _port_range(host_port, text)
    if hlast - hfirst + 1 == count:
        return [common_pb2.PortBinding(container_port=cfirst + i, protocol=proto,
                                       host_ip=host_ip, host_port=hfirst + i)
                for i in range(count)]
    if count == 1:
        return [common_pb2.PortBinding(container_port=cfirst, protocol=proto, host_ip=host_ip,
                                       host_port=hfirst, host_port_end=hlast)]
    raise InvalidArgument(f"invalid ranges specified for container and host ports: {text!r}")
