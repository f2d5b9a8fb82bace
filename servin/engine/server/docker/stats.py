"""Container stats and top on the Docker API.

``GET /containers/{name}/stats`` sends docker's StatsJSON: ``cpu_stats`` and ``precpu_stats``
(the container's CPU time and the host's, from this pass and the one before, from which
clients compute the CPU %), ``memory_stats`` (usage with cache, memory.stat, limit),
``blkio_stats``, ``pids_stats`` and ``networks`` per interface. Streaming sends one document
per sampler pass (about a second); ``stream=false`` waits for a second pass so the CPU figures
have a baseline, as dockerd does; ``one-shot=true`` answers at once without one.
"""

from __future__ import annotations

from typing import Any

from servin.engine.containers.model import Container
from servin.engine.containers.stats import DEFAULT_INTERVAL, ContainerSample, StatsPass
from servin.engine.engine import CoreAPI
from servin.engine.server.docker import params
from servin.engine.server.docker.http import Request, Response
from servin.engine.server.docker.responses import JSON, dump_json, json_response
from servin.engine.server.docker.router import Router
from servin.engine.timefmt import ZERO, format_ns
from servin.errors import InvalidArgument


def _cpu(sample: ContainerSample | None, system_ns: int) -> dict[str, Any]:
    if sample is None:
        return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                              "usage_in_usermode": 0},
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    return {
        "cpu_usage": {"total_usage": sample.cpu_total_ns,
                      "usage_in_kernelmode": sample.cpu_system_ns,
                      "usage_in_usermode": sample.cpu_user_ns},
        "system_cpu_usage": system_ns,
        "online_cpus": sample.online_cpus,
        "throttling_data": dict(zip(("periods", "throttled_periods", "throttled_time"),
                                    sample.cpu_throttling, strict=True)),
    }


def stats_document(c: Container, sample: ContainerSample | None, system_ns: int,
                   previous: tuple[ContainerSample, int] | None) -> dict[str, Any]:
    """docker's StatsJSON for one container from a pass (zeros when it does not run) and,
    for ``precpu_stats``, the sample and host CPU time of the pass before."""
    pids_limit = c.host_config.resources.pids_limit
    if sample is None:
        return {
            "read": ZERO, "preread": ZERO, "pids_stats": {}, "blkio_stats": {
                "io_service_bytes_recursive": None},
            "num_procs": 0, "storage_stats": {}, "cpu_stats": _cpu(None, 0),
            "precpu_stats": _cpu(None, 0), "memory_stats": {},
            "name": f"/{c.name}", "id": c.id,
        }
    pids: dict[str, int] = {"current": sample.pids}
    if pids_limit > 0:
        pids["limit"] = pids_limit
    return {
        "read": format_ns(sample.read_ns),
        "preread": format_ns(previous[0].read_ns) if previous else ZERO,
        "pids_stats": pids,
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": major, "minor": minor, "op": op, "value": value}
            for major, minor, op, value in sample.blkio] or None},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu(sample, system_ns),
        "precpu_stats": _cpu(*previous) if previous else _cpu(None, 0),
        "memory_stats": {"usage": sample.memory_raw, "stats": dict(sample.memory_stat),
                         "limit": sample.memory_limit},
        "name": f"/{c.name}",
        "id": c.id,
        "networks": {name: {
            "rx_bytes": i.rx_bytes, "rx_packets": i.rx_packets, "rx_errors": i.rx_errors,
            "rx_dropped": i.rx_dropped, "tx_bytes": i.tx_bytes, "tx_packets": i.tx_packets,
            "tx_errors": i.tx_errors, "tx_dropped": i.tx_dropped,
        } for name, i in sample.interfaces.items()},
    }


class StatsRoutes:
    """GET /containers/{name}/stats and /top."""

    def __init__(self, core: CoreAPI) -> None:
        self.core = core

    def register(self, router: Router) -> None:
        """Declare the routes."""
        router.add("GET", "/containers/{name}/stats", self.stats)
        router.add("GET", "/containers/{name}/top", self.top)

    async def stats(self, req: Request) -> Response | None:
        """GET /containers/{name}/stats?stream=&one-shot="""
        stream = params.bool_value(req, "stream", True)
        one_shot = params.bool_value(req, "one-shot")
        if one_shot and stream:
            raise InvalidArgument("cannot have stream=true and one-shot=true")
        c = await self.core.containers.get(req.params["name"])
        if not c.state.running:
            return json_response(stats_document(c, None, 0, None))
        if one_shot:
            snap = await self.core.stats.snapshot()
            return json_response(stats_document(c, snap.samples.get(c.id),
                                                snap.system_cpu_ns, None))
        out = None
        previous: tuple[ContainerSample, int] | None = None
        passes = self.core.stats.subscribe(DEFAULT_INTERVAL)
        try:
            async for batch in passes:
                sample = _sample(batch, c.id)
                if not stream:
                    if previous is None and sample is not None:
                        previous = (sample, batch.system_cpu_ns)
                        continue
                    return json_response(stats_document(c, sample, batch.system_cpu_ns,
                                                        previous))
                if out is None:
                    out = await req.stream(200, JSON)
                if sample is None:
                    break  # it stopped
                await out.write(dump_json(stats_document(c, sample, batch.system_cpu_ns,
                                                         previous)))
                previous = (sample, batch.system_cpu_ns)
        finally:
            await passes.aclose()  # type: ignore[attr-defined]  # an async generator
        if out is None:
            return json_response(stats_document(c, None, 0, None))
        return None

    async def top(self, req: Request) -> Response:
        """GET /containers/{name}/top?ps_args="""
        args = req.query_value("ps_args", "-ef").split() or ["-ef"]
        result = await self.core.containers.top(req.params["name"], args)
        return json_response({"Titles": result.titles, "Processes": result.processes})


def _sample(batch: StatsPass, container_id: str) -> ContainerSample | None:
    return batch.samples.get(container_id)
