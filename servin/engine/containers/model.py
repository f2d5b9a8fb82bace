"""The engine's one Container model; servin.v1, the CRI and the Docker API translate onto it.

The shape follows docker's create body, because that is what two of the three doors speak:
``ContainerConfig`` is docker's ``Config`` (what to run, portable), ``HostConfig`` its
``HostConfig`` (how to run it on this host), ``NetworkingConfig`` its ``NetworkingConfig``
(per-network endpoint settings). ``Container`` adds what the engine decides and records: the
resolved mounts (every volume named), the state, the snapshot and the pod it belongs to.

The types are msgspec Structs, not dataclasses: they decode from the stored JSON in C without
an intermediate dict (``ps -a`` decodes every row; see ``store.py`` and the measurements in
docs/architecture.md), they validate types while decoding, and ``omit_defaults`` keeps the
stored documents small. They behave like mutable dataclasses (keyword construction, typed
attributes, ``msgspec.structs.replace``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

# Docker's container states.
CREATED = "created"
RUNNING = "running"
PAUSED = "paused"
RESTARTING = "restarting"
REMOVING = "removing"
EXITED = "exited"
DEAD = "dead"
ACTIVE = frozenset({RUNNING, PAUSED, RESTARTING})


class _Model(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Common settings of the model's structs (keyword-only, defaults left out when stored)."""


class HealthConfig(_Model):
    """docker's HEALTHCHECK / ``--health-*``: ``test`` is ``["CMD", ...]``,
    ``["CMD-SHELL", "..."]`` or ``["NONE"]`` (checks disabled, the image's too)."""

    test: list[str] = []
    interval_ns: int = 0
    timeout_ns: int = 0
    start_period_ns: int = 0
    retries: int = 0

    @property
    def disabled(self) -> bool:
        """Whether this turns every check off (``--no-healthcheck``)."""
        return self.test[:1] == ["NONE"]


class Resources(_Model):
    """Cgroup limits (docker's HostConfig resource fields)."""

    memory: int = 0  # bytes, 0 = unlimited
    memory_swap: int = 0  # bytes of memory+swap, -1 = unlimited swap, 0 = default (2x memory)
    memory_reservation: int = 0
    nano_cpus: int = 0  # --cpus * 1e9
    cpu_shares: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    pids_limit: int = 0  # 0 = unlimited (negative too)
    blkio_weight: int = 0
    oom_score_adj: int = 0
    oom_kill_disable: bool = False


# The Resources fields ``update`` may change (the names are the attribute names).
RESOURCE_FIELDS = tuple(Resources.__struct_fields__)


class PortBinding(_Model):
    """One published port: container port/protocol bound to a host address and port."""

    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""  # "" = every address
    host_port: int = 0  # 0 = pick a free port
    host_port_end: int = 0  # > host_port: pick one free port of host_port..host_port_end


class Mount(_Model):
    """A mount into a container: a named volume, a bind mount or a tmpfs.

    As requested (``HostConfig.mounts``) ``name`` is empty; resolved at create
    (``Container.mounts``) every volume has its ``name`` (anonymous volumes get one).
    """

    type: str  # "volume", "bind", "tmpfs"
    source: str = ""  # volume name or host path; empty for tmpfs and anonymous volumes
    target: str = ""
    read_only: bool = False
    propagation: str = ""  # rprivate (default), private, rshared, shared, rslave, slave
    options: list[str] = []  # tmpfs size=/mode=, volume nocopy and volume-opt=K=V
    driver: str = ""  # volume driver ("local")
    name: str = ""  # the resolved volume name


class RestartPolicy(_Model):
    """When the engine starts a container again after it exits."""

    name: str = ""  # "" or "no", "on-failure", "always", "unless-stopped"
    maximum_retry_count: int = 0


class LogConfig(_Model):
    """The log driver and its options."""

    type: str = ""  # "json-file" (default), "cri", "none"
    options: dict[str, str] = {}  # max-size, max-file


class Ulimit(_Model):
    """An rlimit for the container's processes."""

    name: str
    soft: int
    hard: int


class DeviceMapping(_Model):
    """A host device made available in the container (``--device``)."""

    path_on_host: str
    path_in_container: str = ""  # "" = the same path
    permissions: str = "rwm"


class EndpointConfig(_Model):
    """Settings of the container's endpoint on one network."""

    aliases: list[str] = []
    ipv4_address: str = ""
    mac_address: str = ""  # "" = derived from the address


class ContainerConfig(_Model):
    """What to run (docker's ``Config``); empty fields take the image's values at start."""

    image: str = ""  # as the user named it
    cmd: list[str] = []
    entrypoint: list[str] | None = None  # None: the image's; [] with cmd: no entrypoint
    env: list[str] = []  # KEY=VALUE (a bare KEY takes the daemon's value, as docker's CLI)
    working_dir: str = ""
    user: str = ""  # user[:group], names or ids
    hostname: str = ""
    domainname: str = ""
    labels: dict[str, str] = {}
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    # Streams a client attaches (docker's AttachStdin/-out/-err): None is docker's default,
    # stdout and stderr (and stdin with open_stdin); [] for a detached run.
    attach: list[str] | None = None
    stop_signal: str = ""
    stop_timeout: int | None = None  # seconds; None: the engine's default
    healthcheck: HealthConfig | None = None  # None: the image's
    exposed_ports: list[str] = []  # "80/tcp"

    def attached_streams(self) -> list[str]:
        """The streams a client attaches: ``attach`` as given, else docker's default."""
        if self.attach is not None:
            return list(self.attach)
        return ["stdin", "stdout", "stderr"] if self.open_stdin else ["stdout", "stderr"]


class HostConfig(_Model):
    """How to run it on this host (docker's ``HostConfig``)."""

    binds: list[str] = []  # "-v" specs as given: NAME:/path[:opts], /host:/path[:opts], /path
    mounts: list[Mount] = []  # structured mounts as given (--mount, --tmpfs)
    volumes_from: list[str] = []  # CONTAINER[:ro|rw]
    # docker's legacy links, CONTAINER[:ALIAS]: on a user network, names only this container
    # resolves (to the linked container's address there); refused on other networks.
    links: list[str] = []
    network_mode: str = ""  # "bridge" (default), "host", "none", "container:ID", a network
    port_bindings: list[PortBinding] = []
    publish_all_ports: bool = False
    restart_policy: RestartPolicy = msgspec.field(default_factory=RestartPolicy)
    auto_remove: bool = False
    privileged: bool = False
    cap_add: list[str] = []
    cap_drop: list[str] = []
    security_opt: list[str] = []  # seccomp=unconfined|JSON, no-new-privileges[=false], ...
    readonly_rootfs: bool = False
    runtime: str = ""  # "native" (default), "runc", "crun"
    # Namespace modes: "" (private), "host", "container:ID" (join another container's),
    # "ns:/path" (join the namespace file at /path, as pods' and CNI's netns files);
    # ipc also "private" and "shareable".
    ipc_mode: str = ""
    pid_mode: str = ""
    uts_mode: str = ""
    cgroupns_mode: str = ""  # "", "private", "host"
    cgroup_parent: str = ""  # "" = /servin; a pod puts its members under its own
    dns: list[str] = []
    dns_search: list[str] = []
    dns_options: list[str] = []
    extra_hosts: list[str] = []  # "host:ip"
    log_config: LogConfig = msgspec.field(default_factory=LogConfig)
    sysctls: dict[str, str] = {}
    ulimits: list[Ulimit] = []
    init: bool = False
    shm_size: int = 0  # bytes, 0 = 64 MiB
    devices: list[DeviceMapping] = []
    device_cgroup_rules: list[str] = []  # "c 1:3 rwm", "b 8:* r", "a *:* rwm"
    group_add: list[str] = []
    annotations: dict[str, str] = {}  # passed into the OCI spec
    resources: Resources = msgspec.field(default_factory=Resources)


class NetworkingConfig(_Model):
    """Per-network endpoint settings (docker's ``NetworkingConfig.EndpointsConfig``)."""

    endpoints: dict[str, EndpointConfig] = {}


class CreateRequest(_Model):
    """What every door hands ``ContainerService.create``."""

    name: str = ""  # "" = a generated one
    config: ContainerConfig = msgspec.field(default_factory=ContainerConfig)
    host_config: HostConfig = msgspec.field(default_factory=HostConfig)
    networking: NetworkingConfig = msgspec.field(default_factory=NetworkingConfig)
    pod_id: str = ""  # a member of this pod (ID, name or prefix; pods/members.py fills in
    # its namespaces, cgroup parent, hostname and DNS)


class HealthResult(_Model):
    """One health probe's outcome."""

    start_ns: int
    end_ns: int
    exit_code: int
    output: str


class PublishedPort(_Model):
    """A host port a running container holds."""

    container_port: int
    protocol: str
    host_ip: str
    host_port: int


class ContainerState(msgspec.Struct, kw_only=True):
    """What the container is doing now (stored as its own JSON column: it changes often)."""

    status: str = CREATED
    pid: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    error: str = ""
    started_at_ns: int = 0
    finished_at_ns: int = 0
    restart_count: int = 0
    monitor_pid: int = 0
    rootfs_mounted: bool = False
    # Set by a user's stop or kill, cleared by start: restart policies hold off meanwhile.
    manually_stopped: bool = False
    health_status: str = ""  # "", starting, healthy, unhealthy
    failing_streak: int = 0
    health_log: list[HealthResult] = []  # the last probes, oldest first
    ports: list[PublishedPort] = []  # host ports published while running
    # Durable intents, so the start after a crash knows what was half done: a create not yet
    # whole (removed), a freeze made by commit (thawed).
    creating: bool = False
    frozen_by_commit: bool = False

    @property
    def running(self) -> bool:
        """Whether a process is alive (running or paused) or about to be (restarting)."""
        return self.status in ACTIVE

    def copy(self) -> ContainerState:
        """An independent copy."""
        return msgspec.json.decode(msgspec.json.encode(self), type=ContainerState)


class Container(msgspec.Struct, kw_only=True):
    """One container: what was asked for, what the engine resolved, and its state."""

    id: str
    name: str
    image_ref: str  # the image as the user named it
    image_id: str
    created_ns: int
    config: ContainerConfig = msgspec.field(default_factory=ContainerConfig)
    host_config: HostConfig = msgspec.field(default_factory=HostConfig)
    networking: NetworkingConfig = msgspec.field(default_factory=NetworkingConfig)
    # Every mount resolved at create: binds parsed, --volumes-from copied, the image's VOLUMEs
    # added, each volume named (docker's MountPoints).
    mounts: list[Mount] = []
    state: ContainerState = msgspec.field(default_factory=ContainerState)
    snapshot_chain: str = ""
    pod_id: str = ""

    @property
    def short_id(self) -> str:
        """The 12-digit form docker prints."""
        return self.id[:12]

    @property
    def runtime(self) -> str:
        """The OCI runtime that runs it."""
        return self.host_config.runtime or "native"

    @property
    def network_mode(self) -> str:
        """The network mode with docker's default spelled out."""
        return self.host_config.network_mode or "bridge"


class ContainerPaths(msgspec.Struct, frozen=True):
    """Where a container's files live."""

    dir: Path  # persistent: bundle (config.json), etc files, logs
    state_dir: Path  # volatile: the monitor's socket, pid and exit record
    rootfs: Path  # the mounted root filesystem

    @classmethod
    def of(cls, root: Path, exec_root: Path, container_id: str) -> ContainerPaths:
        """The paths of a container under the daemon's roots."""
        state_dir = exec_root / "containers" / container_id
        return cls(root / "containers" / container_id, state_dir, state_dir / "rootfs")

    @property
    def log_path(self) -> Path:
        """The json-file log (Docker's name for it)."""
        return self.dir / f"{self.dir.name}-json.log"

    @property
    def bundle_config(self) -> Path:
        """The OCI bundle's config.json."""
        return self.dir / "config.json"

    @property
    def etc_files(self) -> dict[str, Path]:
        """The per-container /etc files bind-mounted into the rootfs."""
        return {
            "/etc/hostname": self.dir / "hostname",
            "/etc/hosts": self.dir / "hosts",
            "/etc/resolv.conf": self.dir / "resolv.conf",
        }


def to_builtins(value: Any) -> Any:
    """A model value as plain JSON-able Python (dicts, lists, scalars)."""
    return msgspec.to_builtins(value)
