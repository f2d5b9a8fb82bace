"""servin.v1.Pods: translates requests onto the core's pod API."""

from __future__ import annotations

from servin.api.servin.v1 import common_pb2, containers_pb2, pods_pb2, pods_pb2_grpc
from servin.engine.containers.model import PortBinding, Resources
from servin.engine.engine import CoreAPI
from servin.engine.pods.model import PodConfig, PodCreateRequest
from servin.engine.pods.service import PodStats, PodView
from servin.engine.semantics.inspect import to_json
from servin.engine.semantics.pods import pod_document, shared_namespaces
from servin.engine.server.grpc import convert
from servin.engine.server.grpc.containers import port_mappings
from servin.engine.server.grpc.rpc import Context
from servin.engine.server.grpc.stats import stats_message
from servin.engine.server.grpc.timestamps import from_ns


def pod_config(spec: pods_pb2.PodSpec) -> PodConfig:
    """The core's PodConfig from servin.v1's PodSpec."""
    return PodConfig(
        labels=dict(spec.labels),
        annotations=dict(spec.annotations),
        hostname=spec.hostname,
        network_mode=spec.network,
        netns_path=spec.netns_path,
        aliases=list(spec.aliases),
        port_bindings=[PortBinding(container_port=p.container_port,
                                   protocol=p.protocol or "tcp", host_ip=p.host_ip,
                                   host_port=p.host_port, host_port_end=p.host_port_end)
                       for p in spec.ports],
        share_pid=spec.share_pid,
        dns=list(spec.dns),
        dns_search=list(spec.dns_search),
        dns_options=list(spec.dns_options),
        extra_hosts=list(spec.extra_hosts),
        sysctls=dict(spec.sysctls),
        cgroup_parent=spec.cgroup_parent,
        resources=Resources(memory=spec.memory, nano_cpus=spec.nano_cpus),
        log_directory=spec.log_directory,
        runtime=spec.runtime,
    )


def pod_spec(config: PodConfig) -> pods_pb2.PodSpec:
    """servin.v1's PodSpec from the core's PodConfig."""
    return pods_pb2.PodSpec(
        hostname=config.hostname,
        labels=config.labels,
        annotations=config.annotations,
        network=config.network_mode,
        ports=[common_pb2.PortBinding(
            container_port=p.container_port, protocol=p.protocol, host_ip=p.host_ip,
            host_port=p.host_port, host_port_end=p.host_port_end) for p in config.port_bindings],
        share_pid=config.share_pid,
        cgroup_parent=config.cgroup_parent,
        dns=config.dns,
        dns_search=config.dns_search,
        extra_hosts=config.extra_hosts,
        dns_options=config.dns_options,
        memory=config.resources.memory,
        nano_cpus=config.resources.nano_cpus,
        netns_path=config.netns_path,
        log_directory=config.log_directory,
        aliases=config.aliases,
        sysctls=config.sysctls,
        runtime=config.runtime,
    )


def pod_message(view: PodView, *, document: bool = False) -> pods_pb2.Pod:
    """A pod as servin.v1 sends it (with podman's document for inspect)."""
    pod, infra = view.pod, view.infra
    return pods_pb2.Pod(
        id=pod.id,
        name=pod.name,
        created=from_ns(pod.created_ns),
        state=view.status,
        spec=pod_spec(pod.config),
        infra_container_id=pod.infra_id,
        container_ids=[c.id for c in view.members],
        ip_address=next(iter(view.addresses.values()), ""),
        containers=[pods_pb2.PodContainer(id=c.id, name=c.name, status=c.state.status,
                                          infra=c.id == pod.infra_id,
                                          created=from_ns(c.created_ns), pid=c.state.pid)
                    for c in view.containers],
        started=from_ns(pod.started_ns),
        cgroup_path=pod.cgroup_path,
        shared_namespaces=shared_namespaces(view),
        infra_pid=infra.state.pid if infra is not None else 0,
        network_mode=infra.network_mode if infra is not None else "",
        networks=sorted(view.addresses),
        published=port_mappings(infra) if infra is not None else [],
        document=to_json(pod_document(view)) if document else "",
    )


def stats_entry(s: PodStats) -> pods_pb2.PodStats:
    """One pod's figures."""
    return pods_pb2.PodStats(
        id=s.pod.id, name=s.pod.name, cpu_percent=s.cpu_percent,
        memory_usage=s.memory_usage, memory_limit=s.memory_limit, net_rx=s.net_rx,
        net_tx=s.net_tx, block_read=s.block_read, block_write=s.block_write, pids=s.pids,
        containers=[stats_message(x) for x in s.samples],
    )


class PodsServicer(pods_pb2_grpc.PodsServicer):
    """Create, start, stop, restart, kill, pause, unpause, remove, list, inspect, prune, top
    and stats of pods."""

    def __init__(self, core: CoreAPI) -> None:
        self.pods = core.pods

    async def Create(self, request: pods_pb2.CreatePodRequest, context: Context) -> pods_pb2.Pod:
        view = await self.pods.create(PodCreateRequest(name=request.name,
                                                       config=pod_config(request.spec)))
        return pod_message(view)

    async def Start(self, request: pods_pb2.PodRequest, context: Context) -> pods_pb2.Pod:
        return pod_message(await self.pods.start(request.id))

    async def Stop(self, request: pods_pb2.StopPodRequest, context: Context) -> pods_pb2.Pod:
        timeout = request.timeout if request.has_timeout else None
        return pod_message(await self.pods.stop(request.id, timeout))

    async def Restart(self, request: pods_pb2.StopPodRequest, context: Context
                      ) -> pods_pb2.Pod:
        timeout = request.timeout if request.has_timeout else None
        return pod_message(await self.pods.restart(request.id, timeout))

    async def Kill(self, request: pods_pb2.KillPodRequest, context: Context) -> pods_pb2.Pod:
        return pod_message(await self.pods.kill(request.id, request.signal or "KILL"))

    async def Pause(self, request: pods_pb2.PodRequest, context: Context) -> pods_pb2.Pod:
        return pod_message(await self.pods.pause(request.id))

    async def Unpause(self, request: pods_pb2.PodRequest, context: Context) -> pods_pb2.Pod:
        return pod_message(await self.pods.unpause(request.id))

    async def Remove(self, request: pods_pb2.RemovePodRequest, context: Context
                     ) -> pods_pb2.RemovePodResponse:
        return pods_pb2.RemovePodResponse(
            id=await self.pods.remove(request.id, force=request.force))

    async def List(self, request: pods_pb2.ListPodsRequest, context: Context
                   ) -> pods_pb2.ListPodsResponse:
        views = await self.pods.list(convert.filters(list(request.filters)))
        return pods_pb2.ListPodsResponse(pods=[pod_message(v) for v in views])

    async def Inspect(self, request: pods_pb2.PodRequest, context: Context) -> pods_pb2.Pod:
        return pod_message(await self.pods.inspect(request.id), document=True)

    async def Prune(self, request: pods_pb2.PrunePodsRequest, context: Context
                    ) -> pods_pb2.PrunePodsResponse:
        return pods_pb2.PrunePodsResponse(deleted=await self.pods.prune())

    async def Top(self, request: pods_pb2.PodTopRequest, context: Context
                  ) -> containers_pb2.TopResponse:
        result = await self.pods.top(request.id, list(request.ps_args))
        return containers_pb2.TopResponse(
            titles=result.titles,
            processes=[containers_pb2.TopRow(fields=row) for row in result.processes])

    async def Stats(self, request: pods_pb2.PodStatsRequest, context: Context
                    ) -> pods_pb2.PodStatsResponse:
        stats = await self.pods.stats(list(request.ids))
        return pods_pb2.PodStatsResponse(pods=[stats_entry(s) for s in stats])
