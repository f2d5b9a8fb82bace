"""The Docker API's container endpoints: create, list, inspect, the lifecycle verbs, wait,
update, rename, prune.

Attach, logs and resize are in ``attach.py``, exec in ``exec.py``, archive/export/changes in
``archive.py``, stats and top in ``stats.py``; ``register_container_routes`` declares them all.
Every handler translates docker's parameters onto ``CoreAPI`` and the core's answer back into
docker's JSON; errors are the core's typed errors, mapped by the router.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from servin.engine.containers.model import PAUSED, RESTARTING, RUNNING, RestartPolicy
from servin.engine.containers.views import ContainerListing
from servin.engine.engine import CoreAPI
from servin.engine.semantics import create as docker_create
from servin.engine.semantics.inspect import container_document
from servin.engine.semantics.status import command_text, status_text
from servin.engine.server.docker import params
from servin.engine.server.docker.http import Request, Response
from servin.engine.server.docker.responses import JSON, dump_json, json_response, no_content
from servin.engine.server.docker.router import Router
from servin.errors import InvalidArgument, NotFound

# docker's update body keys -> the core's Resources fields.
_RESOURCE_KEYS = {
    "Memory": "memory", "MemorySwap": "memory_swap", "MemoryReservation": "memory_reservation",
    "NanoCpus": "nano_cpus", "CpuShares": "cpu_shares", "CpuPeriod": "cpu_period",
    "CpuQuota": "cpu_quota", "CpusetCpus": "cpuset_cpus", "CpusetMems": "cpuset_mems",
    "PidsLimit": "pids_limit", "BlkioWeight": "blkio_weight",
}

_ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "armhf": "arm", "i386": "386"}


def container_summary(row: ContainerListing, network_ids: dict[str, str]) -> dict[str, Any]:
    """One entry of ``GET /containers/json`` (docker's ContainerSummary)."""
    c = row.container
    ports: list[dict[str, Any]] = []
    published = set()
    for p in c.state.ports:
        published.add((p.container_port, p.protocol))
        ports.append({"IP": p.host_ip or "0.0.0.0", "PrivatePort": p.container_port,
                      "PublicPort": p.host_port, "Type": p.protocol})
    for key in c.config.exposed_ports:
        port, _, proto = key.partition("/")
        if port.isdigit() and (int(port), proto or "tcp") not in published:
            ports.append({"PrivatePort": int(port), "Type": proto or "tcp"})
    out: dict[str, Any] = {
        "Id": c.id,
        "Names": [f"/{c.name}"],
        "Image": c.image_ref,
        "ImageID": c.image_id,
        "Command": command_text(row.command),
        "Created": c.created_ns // 1_000_000_000,
        "Ports": ports,
        "Labels": dict(c.config.labels),
        "State": c.state.status,
        "Status": status_text(c),
        "HostConfig": {"NetworkMode": c.network_mode},
        "NetworkSettings": {"Networks": {
            name: {"NetworkID": network_ids.get(name, "")} for name in row.networks}},
        "Mounts": [{"Type": m.type, "Name": m.name, "Source": m.source,
                    "Destination": m.target, "Driver": m.driver if m.type == "volume" else "",
                    "Mode": "ro" if m.read_only else "", "RW": not m.read_only,
                    "Propagation": m.propagation} for m in c.mounts],
    }
    if row.size_rw is not None:
        out["SizeRw"] = row.size_rw
        out["SizeRootFs"] = row.size_root_fs or 0
    return out


def optional_int(req: Request, key: str) -> int | None:
    """An integer query value, None when absent or empty."""
    if req.query_value(key) == "":
        return None
    return params.int_value(req, key, 0)


class ContainerRoutes:
    """The container lifecycle and queries."""

    def __init__(self, core: CoreAPI) -> None:
        self.core = core
        self.containers = core.containers

    def register(self, router: Router) -> None:
        """Declare the routes."""
        add = router.add
        add("POST", "/containers/create", self.create)
        add("GET", "/containers/json", self.list)
        add("POST", "/containers/prune", self.prune)
        add("GET", "/containers/{name}/json", self.inspect)
        add("POST", "/containers/{name}/start", self.start)
        add("POST", "/containers/{name}/stop", self.stop)
        add("POST", "/containers/{name}/restart", self.restart)
        add("POST", "/containers/{name}/kill", self.kill)
        add("POST", "/containers/{name}/wait", self.wait)
        add("DELETE", "/containers/{name}", self.remove)
        add("POST", "/containers/{name}/pause", self.pause)
        add("POST", "/containers/{name}/unpause", self.unpause)
        add("POST", "/containers/{name}/rename", self.rename)
        add("POST", "/containers/{name}/update", self.update)

    # -- create, list, inspect -----------------------------------------------------------

    async def create(self, req: Request) -> Response:
        """POST /containers/create?name=&platform= with docker's Config/HostConfig body."""
        body = await params.read_json_object(req)
        name = req.query_value("name")
        request = docker_create.from_docker(name, body)
        platform = req.query_value("platform")
        if platform:
            await self._check_platform(request.config.image, platform)
        created = await self.containers.create(request)
        return json_response({"Id": created.container.id,
                              "Warnings": list(created.warnings)}, 201)

    async def _check_platform(self, image: str, platform: str) -> None:
        """dockerd (API >= 1.41): an image of another platform is not found."""
        os_name, _, rest = platform.partition("/")
        arch = rest.partition("/")[0]  # a variant (arm/v7) is not told apart
        if os_name != "linux":
            raise InvalidArgument(f"unsupported platform {platform!r}: Servin runs linux "
                                  "containers")
        if not image:
            return
        details = await self.core.images.inspect(image)
        have = str(details.config.get("architecture") or "")
        have = _ARCHES.get(have, have)
        if arch and have and arch != have:
            raise NotFound(f"image with reference {image} was found but its platform "
                           f"(linux/{have}) does not match the specified platform ({platform})")

    async def list(self, req: Request) -> Response:
        """GET /containers/json?all=&limit=&size=&filters="""
        rows = await self.containers.list(
            all=params.bool_value(req, "all"), filters=params.filters(req),
            limit=params.int_value(req, "limit", 0), size=params.bool_value(req, "size"))
        ids = await asyncio.to_thread(self.core.networks.network_ids) if rows else {}
        return json_response([container_summary(r, ids) for r in rows])

    async def inspect(self, req: Request) -> Response:
        """GET /containers/{name}/json?size="""
        size = params.bool_value(req, "size")
        details = await self.containers.inspect(req.params["name"], size=size)
        return json_response(container_document(details, size=size))

    # -- the lifecycle -------------------------------------------------------------------

    async def start(self, req: Request) -> Response:
        """POST /containers/{name}/start: 304 when it already runs."""
        if req.query_value("checkpoint"):
            raise InvalidArgument("checkpoints are not supported by Servin")
        await params.read_json(req)  # API < 1.24 sent a HostConfig here; nothing now
        c = await self.containers.get(req.params["name"])
        if c.state.status in (RUNNING, PAUSED):
            return Response(304)
        await self.containers.start(c.id)
        return no_content()

    async def stop(self, req: Request) -> Response:
        """POST /containers/{name}/stop?t=&signal=: 304 when it is not running."""
        timeout = optional_int(req, "t")
        c = await self.containers.get(req.params["name"])
        if c.state.status not in (RUNNING, PAUSED, RESTARTING):
            return Response(304)
        await self.containers.stop(c.id, timeout, req.query_value("signal"))
        return no_content()

    async def restart(self, req: Request) -> Response:
        """POST /containers/{name}/restart?t=&signal="""
        await self.containers.restart(req.params["name"], optional_int(req, "t"),
                                      req.query_value("signal"))
        return no_content()

    async def kill(self, req: Request) -> Response:
        """POST /containers/{name}/kill?signal="""
        await self.containers.kill(req.params["name"], req.query_value("signal") or "KILL")
        return no_content()

    async def wait(self, req: Request) -> Response | None:
        """POST /containers/{name}/wait?condition=: the headers go out at once (the CLI
        starts the container only once it has them), the result when it stops."""
        condition = req.query_value("condition") or "not-running"
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid condition: {condition!r}")
        waiting = await self.containers.waiter(req.params["name"], condition)
        try:
            out = await req.stream(200, JSON)
            try:
                state = await waiting
                body: dict[str, Any] = {"Error": None, "StatusCode": state.exit_code}
                if state.error:
                    body["Error"] = {"Message": state.error}
            except NotFound:
                body = {"Error": None, "StatusCode": 0}  # removed meanwhile (--rm)
        finally:
            if inspect.iscoroutine(waiting):
                waiting.close()  # not awaited when the client left first
        await out.write(dump_json(body))
        return None

    async def remove(self, req: Request) -> Response:
        """DELETE /containers/{name}?v=&force=&link="""
        if params.bool_value(req, "link"):
            raise InvalidArgument("container links are not supported by Servin")
        await self.containers.remove(req.params["name"], force=params.bool_value(req, "force"),
                                     volumes=params.bool_value(req, "v"))
        return no_content()

    async def pause(self, req: Request) -> Response:
        """POST /containers/{name}/pause"""
        await self.containers.pause(req.params["name"])
        return no_content()

    async def unpause(self, req: Request) -> Response:
        """POST /containers/{name}/unpause"""
        await self.containers.unpause(req.params["name"])
        return no_content()

    async def rename(self, req: Request) -> Response:
        """POST /containers/{name}/rename?name="""
        new_name = req.query_value("name")
        if not new_name:
            raise InvalidArgument("the new name is missing")
        await self.containers.rename(req.params["name"], new_name)
        return no_content()

    async def update(self, req: Request) -> Response:
        """POST /containers/{name}/update: the resources given (docker's zero = unchanged)
        and the restart policy."""
        body = await params.read_json_object(req)
        given = {k: v for k, v in body.items() if k in _RESOURCE_KEYS and v not in (None, 0, "")}
        resources = docker_create.resources(
            {k: given.get(k) for k in _RESOURCE_KEYS} | {"MemorySwappiness": None})
        fields = [_RESOURCE_KEYS[k] for k in given]
        for key in ("KernelMemory", "BlkioWeightDevice", "DeviceRequests", "Devices"):
            if body.get(key) not in (None, 0, [], {}):
                raise InvalidArgument(f"updating {key} is not supported by Servin")
        policy = None
        raw_policy = body.get("RestartPolicy")
        if isinstance(raw_policy, dict) and raw_policy.get("Name"):
            count = raw_policy.get("MaximumRetryCount") or 0
            if isinstance(count, bool) or not isinstance(count, int):
                raise InvalidArgument("invalid RestartPolicy.MaximumRetryCount")
            policy = RestartPolicy(name=str(raw_policy["Name"]), maximum_retry_count=count)
        await self.containers.update(req.params["name"], resources, fields, policy)
        return json_response({"Warnings": []})

    async def prune(self, req: Request) -> Response:
        """POST /containers/prune?filters="""
        deleted, reclaimed = await self.containers.prune(params.filters(req))
        return json_response({"ContainersDeleted": deleted or None,
                              "SpaceReclaimed": reclaimed})


def register_container_routes(router: Router, core: CoreAPI) -> None:
    """Every container, exec and archive route (one call from ``door.build_router``)."""
    from servin.engine.server.docker.archive import ArchiveRoutes
    from servin.engine.server.docker.attach import AttachRoutes
    from servin.engine.server.docker.attachws import AttachWebSocketRoutes
    from servin.engine.server.docker.exec import ExecRoutes
    from servin.engine.server.docker.stats import StatsRoutes

    ContainerRoutes(core).register(router)
    AttachRoutes(core).register(router)
    AttachWebSocketRoutes(core).register(router)
    ExecRoutes(core).register(router)
    ArchiveRoutes(core).register(router)
    StatsRoutes(core).register(router)

