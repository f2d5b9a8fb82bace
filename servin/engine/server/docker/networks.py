"""Docker API network endpoints: list, inspect, create, connect, disconnect, remove, prune,
over the core's ``NetworkService``.

Bridge networks only (the core's one driver), one IPv4 subnet each; what a request asks that
the core cannot do (IPv6, another driver or IPAM driver, several subnets, swarm's ingress)
is refused with 400 before anything is made.
"""

from __future__ import annotations

from typing import Any

from servin.engine.engine import CoreAPI
from servin.engine.networks.model import NetworkView
from servin.engine.semantics.inspect import network_document
from servin.engine.server.docker import params
from servin.engine.server.docker.http import Request, Response
from servin.engine.server.docker.responses import json_response, no_content
from servin.engine.server.docker.router import Router
from servin.errors import InvalidArgument, NotFound


def _object(body: dict[str, Any], key: str, what: str) -> dict[str, Any]:
    value = body.get(key) or {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid {what}: {key} must be an object")
    return value


def _text(body: dict[str, Any], key: str, what: str) -> str:
    value = body.get(key) or ""
    if not isinstance(value, str):
        raise InvalidArgument(f"invalid {what}: {key} must be a string")
    return value


_BRIDGE_NAME = "com.docker.network.bridge.name"


def document(view: NetworkView) -> dict[str, Any]:
    """docker's network document as dockerd gives it: a user network's Options are those it
    was created with (compose compares them to its file's and would recreate the network
    over the bridge name Servin's own inspect adds)."""
    doc = network_document(view)
    n = view.network
    if not n.builtin and _BRIDGE_NAME not in n.options:
        doc["Options"].pop(_BRIDGE_NAME, None)
    return doc


def _ipam(body: dict[str, Any]) -> tuple[str, str, str]:
    """(subnet, gateway, ip_range) of the one IPv4 pool a create may ask for."""
    ipam = _object(body, "IPAM", "network config")
    driver = _text(ipam, "Driver", "IPAM config")
    if driver not in ("", "default"):
        raise InvalidArgument(f"IPAM driver {driver!r} is not supported (only default)")
    configs = ipam.get("Config") or []
    if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
        raise InvalidArgument("invalid IPAM config: Config must be a list of objects")
    v4 = []
    for c in configs:
        subnet = _text(c, "Subnet", "IPAM config")
        if ":" in subnet or ":" in _text(c, "Gateway", "IPAM config"):
            raise InvalidArgument("IPv6 networks are not supported")
        if c.get("AuxiliaryAddresses"):
            raise InvalidArgument("auxiliary addresses are not supported")
        v4.append(c)
    if len(v4) > 1:
        raise InvalidArgument("only one IPv4 subnet per network is supported")
    if not v4:
        return "", "", ""
    c = v4[0]
    return (_text(c, "Subnet", "IPAM config"), _text(c, "Gateway", "IPAM config"),
            _text(c, "IPRange", "IPAM config"))


class NetworkRoutes:
    """The network endpoints over the core's API."""

    def __init__(self, core: CoreAPI) -> None:
        self.core = core
        self.networks = core.networks

    def register(self, router: Router) -> None:
        """Declare the routes."""
        router.add("GET", "/networks", self.listing)
        router.add("POST", "/networks/create", self.create)
        router.add("POST", "/networks/prune", self.prune)
        router.add("GET", "/networks/{id}", self.inspect)
        router.add("POST", "/networks/{id}/connect", self.connect)
        router.add("POST", "/networks/{id}/disconnect", self.disconnect)
        router.add("DELETE", "/networks/{id}", self.remove)

    async def listing(self, req: Request) -> Response:
        """``GET /networks``: docker's filters; containers are listed by inspect only."""
        views = await self.networks.list(params.filters(req))
        out = []
        for view in views:
            doc = document(view)
            doc["Containers"] = {}
            out.append(doc)
        return json_response(out)

    async def inspect(self, req: Request) -> Response:
        """``GET /networks/{id}``: by ID, name or unique ID prefix."""
        scope = req.query_value("scope")
        if scope and scope != "local":
            raise NotFound(f"network {req.params['id']} not found")
        return json_response(document(await self.networks.inspect(req.params["id"])))

    async def create(self, req: Request) -> Response:
        """``POST /networks/create``: 201 with the new network's ``Id``."""
        body = await params.read_json_object(req)
        name = _text(body, "Name", "network config")
        if not name:
            raise InvalidArgument("network name is required")
        if body.get("EnableIPv6"):
            raise InvalidArgument("IPv6 networks are not supported")
        if body.get("Ingress"):
            raise InvalidArgument("ingress networks need swarm mode, which is not supported")
        if body.get("ConfigOnly") or body.get("ConfigFrom"):
            raise InvalidArgument("config-only networks are not supported")
        scope = _text(body, "Scope", "network config")
        if scope not in ("", "local"):
            raise InvalidArgument(f"scope {scope!r} is not supported (only local)")
        subnet, gateway, ip_range = _ipam(body)
        n = await self.networks.create(
            name, driver=_text(body, "Driver", "network config"), subnet=subnet,
            gateway=gateway, ip_range=ip_range, internal=bool(body.get("Internal")),
            labels=params.string_map(body, "Labels", "network config"),
            options=params.string_map(body, "Options", "network config"))
        return json_response({"Id": n.id, "Warning": ""}, 201)

    async def connect(self, req: Request) -> Response:
        """``POST /networks/{id}/connect``: a container (with aliases and an IPv4 address)."""
        body = await params.read_json_object(req)
        container = _text(body, "Container", "connect request")
        if not container:
            raise InvalidArgument("no container given")
        endpoint = _object(body, "EndpointConfig", "connect request")
        aliases = endpoint.get("Aliases") or []
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise InvalidArgument("invalid endpoint config: Aliases must be a list of strings")
        ipam = _object(endpoint, "IPAMConfig", "endpoint config")
        if _text(ipam, "IPv6Address", "endpoint config"):
            raise InvalidArgument("IPv6 addresses are not supported")
        await self.networks.connect(req.params["id"], container, aliases=list(aliases),
                                    address=_text(ipam, "IPv4Address", "endpoint config"))
        return Response(200)

    async def disconnect(self, req: Request) -> Response:
        """``POST /networks/{id}/disconnect``."""
        body = await params.read_json_object(req)
        container = _text(body, "Container", "disconnect request")
        if not container:
            raise InvalidArgument("no container given")
        await self.networks.disconnect(req.params["id"], container)
        return Response(200)

    async def remove(self, req: Request) -> Response:
        """``DELETE /networks/{id}``: 204."""
        await self.networks.remove(req.params["id"])
        return no_content()

    async def prune(self, req: Request) -> Response:
        """``POST /networks/prune``: unused user networks (until=, label=, label!=)."""
        deleted = await self.networks.prune(params.filters(req))
        return json_response({"NetworksDeleted": deleted or None})
