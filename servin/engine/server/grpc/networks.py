"""servin.v1.Networks: translates requests onto the engine's NetworkService."""

from __future__ import annotations

import asyncio

import grpc

from servin.api.servin.v1 import networks_pb2, networks_pb2_grpc
from servin.engine.containers.model import PAUSED, RUNNING
from servin.engine.engine import Engine
from servin.engine.networks.model import Network
from servin.engine.server.grpc.filters import filter_map, label_matches
from servin.engine.server.grpc.timestamps import from_ns
from servin.errors import InvalidArgument, ServinError

_LIST_FILTERS = {"id", "name", "driver", "label", "type", "dangling"}
_PRUNE_FILTERS = {"label"}


def _matches(n: Network, filters: dict[str, list[str]], in_use: bool) -> bool:
    if "id" in filters and not any(n.id.startswith(v) for v in filters["id"]):
        return False
    if "name" in filters and not any(v in n.name for v in filters["name"]):
        return False
    if "driver" in filters and n.driver not in filters["driver"]:
        return False
    if "label" in filters and not label_matches(n.labels, filters["label"]):
        return False
    if "type" in filters and ("builtin" if n.builtin else "custom") not in filters["type"]:
        return False
    if "dangling" in filters:
        wanted = filters["dangling"][-1].lower() in ("true", "1")
        return (not in_use and not n.builtin) == wanted
    return True


class NetworksServicer(networks_pb2_grpc.NetworksServicer):
    """The Networks service of servin.v1."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.networks = engine.networks

    def _message(self, n: Network) -> networks_pb2.Network:
        endpoints = self.networks.endpoints(n.id)
        return networks_pb2.Network(
            id=n.id,
            name=n.name,
            driver=n.driver,
            created=from_ns(n.created_ns),
            ipam=[networks_pb2.IPAMConfig(subnet=n.subnet, gateway=n.gateway,
                                          ip_range=n.ip_range)] if n.subnet else [],
            internal=n.internal,
            labels=n.labels,
            options=n.options,
            bridge=n.bridge,
            scope="local",
            endpoints=[
                networks_pb2.NetworkEndpoint(
                    container_id=c.id, container_name=c.name,
                    ipv4_address=f"{ep.address}/{n.prefixlen}", mac_address=ep.mac,
                    aliases=ep.aliases,
                )
                # As docker: only containers with a live sandbox (running or paused), not
                # ones created and never started or stopped since.
                for ep, c in endpoints if c.state.status in (RUNNING, PAUSED)
            ],
        )

    async def Create(self, request: networks_pb2.CreateNetworkRequest,
                     context: grpc.aio.ServicerContext) -> networks_pb2.Network:
        if len(request.ipam) > 1:
            raise InvalidArgument("only one IPv4 subnet per network is supported")
        ipam = request.ipam[0] if request.ipam else networks_pb2.IPAMConfig()
        n = await self.networks.create(
            request.name, driver=request.driver, subnet=ipam.subnet, gateway=ipam.gateway,
            ip_range=ipam.ip_range, internal=request.internal, labels=dict(request.labels),
            options=dict(request.options),
        )
        return await asyncio.to_thread(self._message, n)

    async def List(self, request: networks_pb2.ListNetworksRequest,
                   context: grpc.aio.ServicerContext) -> networks_pb2.ListNetworksResponse:
        filters = filter_map(request.filters, _LIST_FILTERS)

        def build() -> list[networks_pb2.Network]:
            out = []
            for n in self.networks.store.list():
                message = self._message(n)
                if _matches(n, filters, bool(message.endpoints)):
                    out.append(message)
            return out

        return networks_pb2.ListNetworksResponse(networks=await asyncio.to_thread(build))

    async def Inspect(self, request: networks_pb2.InspectNetworkRequest,
                      context: grpc.aio.ServicerContext) -> networks_pb2.Network:
        n = await self.networks.resolve(request.id)
        return await asyncio.to_thread(self._message, n)

    async def Remove(self, request: networks_pb2.RemoveNetworkRequest,
                     context: grpc.aio.ServicerContext) -> networks_pb2.RemoveNetworkResponse:
        await self.networks.remove(request.id)
        return networks_pb2.RemoveNetworkResponse()

    async def Prune(self, request: networks_pb2.PruneNetworksRequest,
                    context: grpc.aio.ServicerContext) -> networks_pb2.PruneNetworksResponse:
        filters = filter_map(request.filters, _PRUNE_FILTERS)
        deleted = []
        for n in await self.networks.list():
            if n.builtin or not _matches(n, {k: v for k, v in filters.items() if k == "label"},
                                         False):
                continue
            if await asyncio.to_thread(self.networks.endpoints, n.id):
                continue
            try:
                await self.networks.remove(n.id)
            except ServinError:
                continue  # taken by a container meanwhile
            deleted.append(n.name)
        return networks_pb2.PruneNetworksResponse(deleted=deleted)

    async def Connect(self, request: networks_pb2.ConnectNetworkRequest,
                      context: grpc.aio.ServicerContext) -> networks_pb2.ConnectNetworkResponse:
        c = await self.engine.containers.resolve(request.container)
        await self.networks.connect(request.network, c, aliases=list(request.aliases),
                                    address=request.ipv4_address)
        return networks_pb2.ConnectNetworkResponse()

    async def Disconnect(
        self, request: networks_pb2.DisconnectNetworkRequest, context: grpc.aio.ServicerContext
    ) -> networks_pb2.DisconnectNetworkResponse:
        c = await self.engine.containers.resolve(request.container)
        await self.networks.disconnect(request.network, c)
        return networks_pb2.DisconnectNetworkResponse()

