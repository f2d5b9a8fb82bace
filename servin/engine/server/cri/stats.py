"""ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats, and the metrics
verbs (no Prometheus-style metric descriptors are offered: empty answers)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from servin.api.cri.runtime.v1 import api_pb2
from servin.engine.containers.model import Container
from servin.engine.containers.stats import ContainerSample, StatsPass
from servin.engine.server.cri import common
from servin.engine.server.cri.base import Verbs
from servin.engine.server.cri.container_status import container_metadata
from servin.engine.server.cri.sandbox_status import sandbox_metadata
from servin.engine.server.grpc.rpc import Context
from servin.errors import NotFound

if TYPE_CHECKING:
    from servin.engine.pods.service import PodView


def _u64(value: int) -> api_pb2.UInt64Value:
    return api_pb2.UInt64Value(value=max(int(value), 0))


def _cpu(sample: ContainerSample | None, ts: int) -> api_pb2.CpuUsage:
    if sample is None:
        return api_pb2.CpuUsage(timestamp=ts, usage_core_nano_seconds=_u64(0),
                                usage_nano_cores=_u64(0))
    return api_pb2.CpuUsage(timestamp=sample.read_ns,
                            usage_core_nano_seconds=_u64(sample.cpu_total_ns),
                            usage_nano_cores=_u64(int(sample.cpu_percent * 10**7)))


def _memory(sample: ContainerSample | None, ts: int) -> api_pb2.MemoryUsage:
    if sample is None:
        return api_pb2.MemoryUsage(timestamp=ts, working_set_bytes=_u64(0), usage_bytes=_u64(0))
    available = sample.memory_limit - sample.memory_usage if sample.memory_limit else 0
    return api_pb2.MemoryUsage(timestamp=sample.read_ns,
                               working_set_bytes=_u64(sample.memory_usage),
                               usage_bytes=_u64(sample.memory_usage),
                               available_bytes=_u64(available))


class StatsVerbs(Verbs):
    """The stats verbs."""

    async def _container_stats(self, c: Container, snapshot: StatsPass
                               ) -> api_pb2.ContainerStats:
        sample = snapshot.samples.get(c.id)
        ts = snapshot.read_ns
        stats = api_pb2.ContainerStats(
            attributes=api_pb2.ContainerAttributes(
                id=c.id, metadata=container_metadata(c), labels=c.config.labels,
                annotations=common.visible(c.host_config.annotations)),
            cpu=_cpu(sample, ts), memory=_memory(sample, ts))
        with contextlib.suppress(NotFound):
            fs = await self.core.containers.writable_layer(c.id)
            stats.writable_layer.CopyFrom(api_pb2.FilesystemUsage(
                timestamp=fs.timestamp_ns,
                fs_id=api_pb2.FilesystemIdentifier(mountpoint=fs.mountpoint),
                used_bytes=_u64(fs.used_bytes), inodes_used=_u64(fs.inodes_used)))
        return stats

    async def ContainerStats(self, request: api_pb2.ContainerStatsRequest,
                             context: Context) -> api_pb2.ContainerStatsResponse:
        c = await self.cri_container(request.container_id)
        snapshot = await self.core.stats.snapshot()
        return api_pb2.ContainerStatsResponse(stats=await self._container_stats(c, snapshot))

    async def ListContainerStats(self, request: api_pb2.ListContainerStatsRequest,
                                 context: Context) -> api_pb2.ListContainerStatsResponse:
        f = request.filter if request.HasField("filter") else None
        snapshot = await self.core.stats.snapshot()
        out = []
        for row in await self.core.containers.list(all=True):
            c = row.container
            if c.host_config.annotations.get(common.KIND) != common.CONTAINER_KIND:
                continue
            if f is not None:
                if f.id and not c.id.startswith(f.id):
                    continue
                if f.pod_sandbox_id and not c.pod_id.startswith(f.pod_sandbox_id):
                    continue
                if not common.labels_match(c.config.labels, f.label_selector):
                    continue
            out.append(await self._container_stats(c, snapshot))
        return api_pb2.ListContainerStatsResponse(stats=out)

    async def _sandbox_stats(self, view: PodView, snapshot: StatsPass
                             ) -> api_pb2.PodSandboxStats:
        ts = snapshot.read_ns
        samples = [snapshot.samples[c.id] for c in view.containers if c.id in snapshot.samples]
        cpu_total = sum(s.cpu_total_ns for s in samples)
        cpu_pct = sum(s.cpu_percent for s in samples)
        memory = sum(s.memory_usage for s in samples)
        linux = api_pb2.LinuxPodSandboxStats(
            cpu=api_pb2.CpuUsage(timestamp=ts, usage_core_nano_seconds=_u64(cpu_total),
                                 usage_nano_cores=_u64(int(cpu_pct * 10**7))),
            memory=api_pb2.MemoryUsage(timestamp=ts, working_set_bytes=_u64(memory),
                                       usage_bytes=_u64(memory)),
            process=api_pb2.ProcessUsage(timestamp=ts,
                                         process_count=_u64(sum(s.pids for s in samples))),
        )
        if samples:
            linux.network.CopyFrom(api_pb2.NetworkUsage(
                timestamp=ts, default_interface=api_pb2.NetworkInterfaceUsage(
                    name="eth0", rx_bytes=_u64(samples[0].net_rx),
                    tx_bytes=_u64(samples[0].net_tx))))
        for c in view.members:
            if c.host_config.annotations.get(common.KIND) == common.CONTAINER_KIND:
                linux.containers.append(await self._container_stats(c, snapshot))
        return api_pb2.PodSandboxStats(
            attributes=api_pb2.PodSandboxAttributes(
                id=view.pod.id, metadata=sandbox_metadata(view), labels=view.pod.config.labels,
                annotations=common.visible(view.pod.config.annotations)),
            linux=linux)

    async def PodSandboxStats(self, request: api_pb2.PodSandboxStatsRequest,
                              context: Context) -> api_pb2.PodSandboxStatsResponse:
        view = await self.cri_sandbox(request.pod_sandbox_id)
        snapshot = await self.core.stats.snapshot()
        return api_pb2.PodSandboxStatsResponse(stats=await self._sandbox_stats(view, snapshot))

    async def ListPodSandboxStats(self, request: api_pb2.ListPodSandboxStatsRequest,
                                  context: Context) -> api_pb2.ListPodSandboxStatsResponse:
        f = request.filter if request.HasField("filter") else None
        snapshot = await self.core.stats.snapshot()
        out = []
        for view in await self.core.pods.list():
            if view.pod.config.annotations.get(common.KIND) != common.SANDBOX_KIND:
                continue
            if f is not None:
                if f.id and not view.pod.id.startswith(f.id):
                    continue
                if not common.labels_match(view.pod.config.labels, f.label_selector):
                    continue
            out.append(await self._sandbox_stats(view, snapshot))
        return api_pb2.ListPodSandboxStatsResponse(stats=out)

    async def ListMetricDescriptors(self, request: api_pb2.ListMetricDescriptorsRequest,
                                    context: Context) -> api_pb2.ListMetricDescriptorsResponse:
        return api_pb2.ListMetricDescriptorsResponse()

    async def ListPodSandboxMetrics(self, request: api_pb2.ListPodSandboxMetricsRequest,
                                    context: Context) -> api_pb2.ListPodSandboxMetricsResponse:
        return api_pb2.ListPodSandboxMetricsResponse()
