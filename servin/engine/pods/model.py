"""The core's Pod model: a group of containers sharing namespaces around an infra process.

A pod is what ``servin pod`` and the CRI's pod sandbox both are. Its infra container runs
``catatonit -P`` (a static pause process, about 0.25 MB PSS) from an empty root filesystem:
it holds the pod's network, IPC and UTS namespaces (and the PID namespace with
``share_pid``), carries the pod's network endpoints and published ports, and sits in the
pod's cgroup like every member. Members join the infra's namespaces through the containers'
``container:ID`` modes and get the pod's cgroup as their cgroup parent.
"""

from __future__ import annotations

import msgspec

from servin.engine.containers.model import (
    ACTIVE,
    CREATED,
    EXITED,
    PAUSED,
    RUNNING,
    Container,
    PortBinding,
    Resources,
)

# The pod statuses (podman's): computed from the containers, infra included.
POD_CREATED = "Created"
POD_RUNNING = "Running"
POD_PAUSED = "Paused"
POD_EXITED = "Exited"
POD_DEGRADED = "Degraded"
POD_STOPPED = "Stopped"
POD_STATUSES = (POD_CREATED, POD_RUNNING, POD_PAUSED, POD_EXITED, POD_DEGRADED, POD_STOPPED)

# What the infra container's labels carry: the pod it serves.
INFRA_LABEL = "io.servin.pod.infra"
INFRA_TARGET = "/catatonit"  # where the infra's binary is bind-mounted in its empty rootfs


class _Model(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Common settings of the model's structs (keyword-only, defaults left out when stored)."""


class PodConfig(_Model):
    """What a pod was created with (stored as its ``spec`` document)."""

    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    hostname: str = ""  # "" = the pod's name
    # The infra's network: "" / "bridge" (the default bridge), a network's name, "host",
    # "none". With ``netns_path`` (mode "" or "none") the infra joins that pinned network
    # namespace instead (the CRI makes it and calls CNI on it).
    network_mode: str = ""
    netns_path: str = ""
    aliases: list[str] = []  # network-scoped aliases on a user network
    port_bindings: list[PortBinding] = []
    share_pid: bool = False  # net, ipc and uts are always shared
    dns: list[str] = []
    dns_search: list[str] = []
    dns_options: list[str] = []
    extra_hosts: list[str] = []
    sysctls: dict[str, str] = {}  # namespaced sysctls of the infra (net.*, kernel.shm*)
    cgroup_parent: str = ""  # "" = /servin; the pod's cgroup is <parent>/pod-<id>
    resources: Resources = msgspec.field(default_factory=Resources)  # memory, nano_cpus
    log_directory: str = ""  # the CRI's per-pod log directory (recorded, made by the door)
    runtime: str = ""  # the OCI runtime of the infra ("" = the daemon's default)


class Pod(msgspec.Struct, kw_only=True):
    """One pod: its identity, configuration and infra container."""

    id: str
    name: str
    created_ns: int
    config: PodConfig = msgspec.field(default_factory=PodConfig)
    infra_id: str = ""
    cgroup_path: str = ""  # the pod's cgroup (an OCI cgroupsPath): <parent>/pod-<id>
    started_ns: int = 0  # the last pod start
    stopped_ns: int = 0  # the last pod stop
    # Durable intents: a create not yet whole, a removal under way (finished after a crash).
    creating: bool = False
    removing: bool = False

    @property
    def short_id(self) -> str:
        """The 12-digit form podman prints."""
        return self.id[:12]

    @property
    def hostname(self) -> str:
        """The hostname every member sees (the pod's name unless one was given)."""
        return self.config.hostname or self.name


class PodCreateRequest(_Model):
    """What a door hands ``PodService.create``."""

    name: str = ""  # "" = a generated one
    config: PodConfig = msgspec.field(default_factory=PodConfig)


def pod_status(containers: list[Container]) -> str:
    """The pod's status from its containers' (podman's rule)."""
    if not containers:
        return POD_CREATED
    statuses = [c.state.status for c in containers]
    total = len(statuses)
    if statuses.count(CREATED) == total:
        return POD_CREATED
    if statuses.count(RUNNING) == total:
        return POD_RUNNING
    if statuses.count(PAUSED) == total:
        return POD_PAUSED
    if all(s not in ACTIVE and s != CREATED for s in statuses) or \
            statuses.count(EXITED) == total:
        return POD_EXITED
    if any(s in ACTIVE for s in statuses):
        return POD_DEGRADED
    return POD_STOPPED
