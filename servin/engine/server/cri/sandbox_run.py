"""RunPodSandbox: a CRI pod sandbox is a core pod (``servin pod ls`` shows it).

The order, so that a failure at any step leaves nothing: the pod's network (a pinned netns
attached through CNI, unless the pod uses the node's network), then the core pod whose infra
joins that netns, then its start. What was made is undone in reverse on failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket

from servin.api.cri.runtime.v1 import api_pb2
from servin.engine.containers.model import Resources
from servin.engine.networks.cni.caller import PortMapping
from servin.engine.networks.cni.podnet import PodIdentity
from servin.engine.pods.model import PodConfig, PodCreateRequest
from servin.engine.server.cri import common
from servin.engine.server.cri.base import Verbs
from servin.engine.server.grpc.rpc import Context
from servin.errors import InvalidArgument, ServinError

_PROTOCOLS = {api_pb2.TCP: "tcp", api_pb2.UDP: "udp", api_pb2.SCTP: "sctp"}


def _ports(config: api_pb2.PodSandboxConfig) -> list[PortMapping]:
    out = []
    for m in config.port_mappings:
        if m.host_port <= 0:
            continue  # only host ports need the portmap plugin (the kubelet sends both)
        if not 0 < m.container_port < 65536 or m.host_port > 65535:
            raise InvalidArgument(f"invalid port mapping {m.host_port}:{m.container_port}")
        out.append(PortMapping(host_port=m.host_port, container_port=m.container_port,
                               protocol=_PROTOCOLS.get(m.protocol, "tcp"), host_ip=m.host_ip))
    return out


def _resources(linux: api_pb2.LinuxPodSandboxConfig) -> Resources:
    """The pod-level limits: its resources plus the runtime class's overhead."""
    memory = linux.resources.memory_limit_in_bytes
    quota, period = linux.resources.cpu_quota, linux.resources.cpu_period
    if memory and linux.overhead.memory_limit_in_bytes:
        memory += linux.overhead.memory_limit_in_bytes
    nano = quota * 10**9 // period if quota > 0 and period > 0 else 0
    return Resources(memory=max(memory, 0), nano_cpus=nano)


class SandboxRunVerbs(Verbs):
    """RunPodSandbox."""

    async def RunPodSandbox(self, request: api_pb2.RunPodSandboxRequest,
                            context: Context) -> api_pb2.RunPodSandboxResponse:
        config = request.config
        meta = config.metadata
        common.check_name("sandbox", meta.name)
        common.check_user_annotations(config.annotations)
        handler = request.runtime_handler
        if handler not in self.handlers():
            raise InvalidArgument(f"unknown runtime handler {handler!r} "
                                  f"(known: {', '.join(repr(h) for h in self.handlers())})")
        linux = config.linux
        options = linux.security_context.namespace_options
        if options.network == api_pb2.TARGET or options.ipc == api_pb2.TARGET:
            raise InvalidArgument("a sandbox cannot target another container's namespaces")
        host_network = options.network == api_pb2.NODE
        ports = [] if host_network else _ports(config)
        sysctls = common.key_values(linux.sysctls)
        if host_network and any(k.startswith("net.") for k in sysctls):
            raise InvalidArgument("net.* sysctls cannot be set on a pod using the node's "
                                  "network")
        annotations = {
            **common.key_values(config.annotations),
            common.KIND: common.SANDBOX_KIND,
            common.SANDBOX_METADATA: common.dump({
                "name": meta.name, "uid": meta.uid, "namespace": meta.namespace,
                "attempt": meta.attempt}),
            common.RUNTIME_HANDLER: handler,
            common.SANDBOX_CONFIG: common.dump({
                "network": options.network, "pid": options.pid, "ipc": options.ipc,
                "privileged": linux.security_context.privileged,
                "log_directory": config.log_directory,
            }),
        }
        dns = config.dns_config
        pod_config = PodConfig(
            labels=common.key_values(config.labels), annotations=annotations,
            hostname=config.hostname or socket.gethostname(),
            network_mode="host" if host_network else "none",
            share_pid=options.pid == api_pb2.POD,
            ipc_mode="host" if options.ipc == api_pb2.NODE else "",
            dns=list(dns.servers), dns_search=list(dns.searches), dns_options=list(dns.options),
            sysctls=sysctls, cgroup_parent=linux.cgroup_parent,
            resources=_resources(linux), log_directory=config.log_directory,
            runtime=handler,
        )
        network = None
        if not host_network:
            identity = PodIdentity(namespace=meta.namespace, name=meta.name, uid=meta.uid)
            network = await self.core.pod_networks.setup(secrets.token_hex(32), identity,
                                                         ports)
            pod_config.netns_path = network.netns
        pod_id = ""
        try:
            view = await self.core.pods.create(PodCreateRequest(
                name=common.core_name(meta.name, meta.namespace, meta.uid, meta.attempt),
                config=pod_config))
            pod_id = view.pod.id
            await self.core.pods.start(pod_id)
        except BaseException:
            await asyncio.shield(self._undo_run(pod_id, network.pod_id if network else ""))
            raise
        return api_pb2.RunPodSandboxResponse(pod_sandbox_id=pod_id)

    async def _undo_run(self, pod_id: str, network_id: str) -> None:
        if pod_id:
            with contextlib.suppress(ServinError):
                await self.core.pods.remove(pod_id, force=True)
        if network_id:
            with contextlib.suppress(ServinError):
                await self.core.pod_networks.teardown(network_id)
