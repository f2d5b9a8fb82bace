"""servin.v1.Networks: translates requests onto the core's network API."""

from __future__ import annotations

from servin.api.servin.v1 import networks_pb2, networks_pb2_grpc
from servin.engine.containers.model import PAUSED, RUNNING
from servin.engine.engine import CoreAPI
from servin.engine.networks.model import NetworkView
from servin.engine.semantics.inspect import network_document, to_json
from servin.engine.server.grpc import convert
from servin.engine.server.grpc.rpc import Context
from servin.engine.server.grpc.timestamps import from_ns
from servin.errors import InvalidArgument


def network_message(view: NetworkView, *, document: bool = False) -> networks_pb2.Network:
    """A network as servin.v1 sends it (with docker's document for inspect)."""
    n = view.network
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
            # As docker: only containers with a live sandbox (running or paused), not ones
            # created and never started or stopped since.
            for ep, c in view.endpoints if c.state.status in (RUNNING, PAUSED)
        ],
        document=to_json(network_document(view)) if document else "",
    )


class NetworksServicer(networks_pb2_grpc.NetworksServicer):
    """The Networks service of servin.v1."""

    def __init__(self, core: CoreAPI) -> None:
        self.networks = core.networks

    async def Create(self, request: networks_pb2.CreateNetworkRequest,
                     context: Context) -> networks_pb2.Network:
        if len(request.ipam) > 1:
            raise InvalidArgument("only one IPv4 subnet per network is supported")
        ipam = request.ipam[0] if request.ipam else networks_pb2.IPAMConfig()
        n = await self.networks.create(
            request.name, driver=request.driver, subnet=ipam.subnet, gateway=ipam.gateway,
            ip_range=ipam.ip_range, internal=request.internal, labels=dict(request.labels),
            options=dict(request.options),
        )
        return network_message(await self.networks.inspect(n.id))

    async def List(self, request: networks_pb2.ListNetworksRequest,
                   context: Context) -> networks_pb2.ListNetworksResponse:
        views = await self.networks.list(convert.filters(list(request.filters)))
        return networks_pb2.ListNetworksResponse(networks=[network_message(v) for v in views])

    async def Inspect(self, request: networks_pb2.InspectNetworkRequest,
                      context: Context) -> networks_pb2.Network:
        return network_message(await self.networks.inspect(request.id), document=True)

    async def Remove(self, request: networks_pb2.RemoveNetworkRequest,
                     context: Context) -> networks_pb2.RemoveNetworkResponse:
        await self.networks.remove(request.id)
        return networks_pb2.RemoveNetworkResponse()

    async def Prune(self, request: networks_pb2.PruneNetworksRequest,
                    context: Context) -> networks_pb2.PruneNetworksResponse:
        deleted = await self.networks.prune(convert.filters(list(request.filters)))
        return networks_pb2.PruneNetworksResponse(deleted=deleted)

    async def Connect(self, request: networks_pb2.ConnectNetworkRequest,
                      context: Context) -> networks_pb2.ConnectNetworkResponse:
        await self.networks.connect(request.network, request.container,
                                    aliases=list(request.aliases),
                                    address=request.ipv4_address)
        return networks_pb2.ConnectNetworkResponse()

    async def Disconnect(
        self, request: networks_pb2.DisconnectNetworkRequest, context: Context
    ) -> networks_pb2.DisconnectNetworkResponse:
        await self.networks.disconnect(request.network, request.container)
        return networks_pb2.DisconnectNetworkResponse()
