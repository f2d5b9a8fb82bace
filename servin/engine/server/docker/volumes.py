"""Docker API volume endpoints: list, inspect, create, remove, prune, over the core's
``VolumeService`` (the local driver)."""

from __future__ import annotations

from servin.engine.engine import CoreAPI
from servin.engine.semantics.inspect import volume_document
from servin.engine.server.docker import params
from servin.engine.server.docker.http import Request, Response
from servin.engine.server.docker.responses import json_response, no_content
from servin.engine.server.docker.router import Router
from servin.engine.server.docker.versions import compare_versions
from servin.errors import InvalidArgument


class VolumeRoutes:
    """The volume endpoints over the core's API."""

    def __init__(self, core: CoreAPI) -> None:
        self.core = core
        self.volumes = core.volumes

    def register(self, router: Router) -> None:
        """Declare the routes."""
        router.add("GET", "/volumes", self.listing)
        router.add("POST", "/volumes/create", self.create)
        router.add("POST", "/volumes/prune", self.prune)
        router.add("GET", "/volumes/{name}", self.inspect)
        router.add("DELETE", "/volumes/{name}", self.remove)

    async def listing(self, req: Request) -> Response:
        """``GET /volumes``: docker's filters."""
        views = await self.volumes.list(params.filters(req))
        return json_response({"Volumes": [volume_document(v) for v in views],
                              "Warnings": None})

    async def inspect(self, req: Request) -> Response:
        """``GET /volumes/{name}``."""
        doc = volume_document(await self.volumes.inspect(req.params["name"]))
        doc.pop("UsageData", None)  # dockerd gives sizes in system df only
        return json_response(doc)

    async def create(self, req: Request) -> Response:
        """``POST /volumes/create``: 201 with the volume (an existing one of that name and
        options is returned, as docker does)."""
        body = await params.read_json_object(req)
        name = body.get("Name") or ""
        driver = body.get("Driver") or ""
        if not isinstance(name, str) or not isinstance(driver, str):
            raise InvalidArgument("invalid volume config: Name and Driver must be strings")
        if body.get("ClusterVolumeSpec"):
            raise InvalidArgument("cluster volumes need swarm mode, which is not supported")
        view = await self.volumes.create(
            name, driver, options=params.string_map(body, "DriverOpts", "volume config"),
            labels=params.string_map(body, "Labels", "volume config"))
        doc = volume_document(view)
        doc.pop("UsageData", None)
        return json_response(doc, 201)

    async def remove(self, req: Request) -> Response:
        """``DELETE /volumes/{name}?force=``: 204."""
        await self.volumes.remove(req.params["name"], force=params.bool_value(req, "force"))
        return no_content()

    async def prune(self, req: Request) -> Response:
        """``POST /volumes/prune``: unused volumes; from API 1.42 anonymous ones only unless
        ``all=true``, before it every unused one (as dockerd)."""
        filters = params.filters(req)
        every = compare_versions(req.api_version, "1.42") < 0
        deleted, reclaimed = await self.volumes.prune(all_volumes=every, filters=filters)
        return json_response({"VolumesDeleted": deleted or None,
                              "SpaceReclaimed": reclaimed})
