"""How a container joins a pod: the pod's side of ``ContainerService`` (``PodMembership``).

A member's create request gets the infra's namespaces (``container:<infra>`` for network,
IPC and UTS, and PID when the pod shares it), the pod's cgroup as its cgroup parent, the
pod's hostname and DNS settings. Options that would contradict the pod are refused at
create with one line saying which.
"""

from __future__ import annotations

import contextlib

import msgspec

from servin.engine.containers.model import Container, CreateRequest
from servin.engine.containers.store import ContainerStore
from servin.engine.pods.cgroups import PodCgroups
from servin.engine.pods.store import PodStore
from servin.errors import Conflict, Internal, InvalidArgument, NotFound, ServinError


class PodMembers:
    """The ``PodMembership`` the container services use (blocking calls)."""

    def __init__(self, pods: PodStore, containers: ContainerStore, cgroups: PodCgroups) -> None:
        self.pods = pods
        self.containers = containers
        self.cgroups = cgroups

    def member_request(self, request: CreateRequest) -> CreateRequest:
        """The request with the pod's settings filled in (see the module's docstring)."""
        pod = self.pods.resolve(request.pod_id)
        if pod.creating or pod.removing or not pod.infra_id:
            raise Conflict(f"pod {pod.name} is being created or removed")
        config = msgspec.structs.replace(request.config)
        host = msgspec.structs.replace(request.host_config)
        if host.network_mode not in ("", "default") or request.networking.endpoints:
            raise InvalidArgument("--network cannot be used with --pod: pod members use the "
                                  "pod's network")
        if host.port_bindings or host.publish_all_ports:
            raise InvalidArgument("-p/-P cannot be used with --pod: publish ports on the pod "
                                  "(servin pod create -p)")
        for flag, value in (("--ipc", host.ipc_mode), ("--uts", host.uts_mode),
                            ("--cgroup-parent", host.cgroup_parent)):
            if value:
                raise InvalidArgument(f"{flag} cannot be used with --pod: the pod sets it")
        if host.pid_mode and pod.config.share_pid:
            raise InvalidArgument("--pid cannot be used with --pod: the pod shares its PID "
                                  "namespace")
        if config.hostname and config.hostname != pod.hostname:
            raise InvalidArgument("--hostname cannot be used with --pod: members have the "
                                  "pod's hostname")
        if host.dns or host.dns_search or host.dns_options or host.extra_hosts:
            raise InvalidArgument("--dns/--dns-search/--dns-option/--add-host cannot be used "
                                  "with --pod: set them on the pod")
        infra = f"container:{pod.infra_id}"
        host.network_mode = infra
        host.ipc_mode = infra
        host.uts_mode = infra
        if pod.config.share_pid:
            host.pid_mode = infra
        host.cgroup_parent = pod.cgroup_path
        host.dns = list(pod.config.dns)
        host.dns_search = list(pod.config.dns_search)
        host.dns_options = list(pod.config.dns_options)
        host.extra_hosts = list(pod.config.extra_hosts)
        config.hostname = pod.hostname
        return msgspec.structs.replace(request, config=config, host_config=host, pod_id=pod.id)

    def infra_of(self, pod_id: str) -> str:
        """The pod's infra container ID ('' for none or no such pod)."""
        pod = self.pods.find(pod_id)
        return pod.infra_id if pod is not None else ""

    def check_remove(self, c: Container) -> None:
        """Conflict if ``c`` is the infra of a pod that is not being removed."""
        if not c.pod_id:
            return
        pod = self.pods.find(c.pod_id)
        if pod is not None and pod.infra_id == c.id and not (pod.removing or pod.creating):
            raise Conflict(f"container {c.name} is the infra container of pod {pod.name}: "
                           "remove the pod instead")

    def ensure_cgroup(self, pod_id: str) -> None:
        """Make the pod's cgroup (with its limits) if it is missing (after a reboot)."""
        pod = self.pods.find(pod_id)
        if pod is None or not pod.cgroup_path:
            return
        with contextlib.suppress(NotFound):
            self.cgroups.driver.open(pod.cgroup_path)
            return
        try:
            self.cgroups.ensure(pod)
        except ServinError as exc:
            raise Internal(f"cannot make the cgroup of pod {pod.name}: {exc}") from exc
