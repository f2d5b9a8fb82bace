"""servin.v1 Containers.Stats and Containers.Top, translated onto the engine's sampler."""

from __future__ import annotations

from collections.abc import AsyncIterator

from servin.api.servin.v1 import containers_pb2
from servin.engine.containers.model import Container
from servin.engine.containers.stats import DEFAULT_INTERVAL, ContainerSample, StatsPass
from servin.engine.engine import CoreAPI
from servin.engine.server.grpc.timestamps import from_ns


def stats_message(s: ContainerSample) -> containers_pb2.ContainerStats:
    """One container's sample as servin.v1 sends it."""
    return containers_pb2.ContainerStats(
        id=s.id,
        name=s.name,
        read=from_ns(s.read_ns),
        cpu_percent=s.cpu_percent,
        cpu_total_ns=s.cpu_total_ns,
        memory_usage=s.memory_usage,
        memory_limit=s.memory_limit,
        memory_percent=s.memory_percent,
        net_rx=s.net_rx,
        net_tx=s.net_tx,
        block_read=s.block_read,
        block_write=s.block_write,
        pids=s.pids,
        online_cpus=s.online_cpus,
    )


def _select(
    batch: StatsPass, wanted: list[Container] | None
) -> tuple[list[containers_pb2.ContainerStats], bool]:
    """The batch's rows for the request and whether all of them have a CPU baseline.

    With no containers named: every running one, by name. Named ones that are not running
    get a row of zeros (as ``docker stats NAME`` shows a stopped container).
    """
    if wanted is None:
        samples = sorted(batch.samples.values(), key=lambda s: s.name)
        return [stats_message(s) for s in samples], all(s.has_baseline for s in samples)
    rows = []
    complete = True
    for c in wanted:
        sample = batch.samples.get(c.id)
        if sample is None:
            rows.append(containers_pb2.ContainerStats(id=c.id, name=c.name))
        else:
            complete = complete and sample.has_baseline
            rows.append(stats_message(sample))
    return rows, complete


async def stats_stream(
    core: CoreAPI, request: containers_pb2.StatsRequest
) -> AsyncIterator[containers_pb2.StatsBatch]:
    """Containers.Stats: one batch per interval (or a single one without ``stream``)."""
    wanted: list[Container] | None = None
    if request.ids:
        wanted = []
        seen: set[str] = set()
        for text in request.ids:
            c = await core.containers.get(text)
            if c.id not in seen:
                seen.add(c.id)
                wanted.append(c)
    if not request.stream:
        rows, _ = _select(await core.stats.snapshot(), wanted)
        yield containers_pb2.StatsBatch(stats=rows)
        return
    interval = request.interval_ms / 1000 if request.interval_ms else DEFAULT_INTERVAL
    async for batch in core.stats.subscribe(interval):
        rows, _ = _select(batch, wanted)
        yield containers_pb2.StatsBatch(stats=rows)


async def top_response(
    core: CoreAPI, request: containers_pb2.TopRequest
) -> containers_pb2.TopResponse:
    """Containers.Top: the container's processes as the host's ps shows them."""
    result = await core.containers.top(request.id, list(request.ps_args))
    return containers_pb2.TopResponse(
        titles=result.titles,
        processes=[containers_pb2.TopRow(fields=row) for row in result.processes],
    )
