"""The runtime.v1 RuntimeService, assembled from the verb modules, and the registration of
both CRI services on the daemon's grpc server (the same socket as servin.v1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from servin.api.cri.runtime.v1 import api_pb2, api_pb2_grpc
from servin.engine.engine import CoreAPI
from servin.engine.server.cri.container_create import ContainerCreateVerbs
from servin.engine.server.cri.container_lifecycle import ContainerLifecycleVerbs
from servin.engine.server.cri.container_status import ContainerStatusVerbs, list_element
from servin.engine.server.cri.container_update import ContainerUpdateVerbs
from servin.engine.server.cri.events import EventVerbs
from servin.engine.server.cri.exec_sync import ExecSyncVerbs
from servin.engine.server.cri.images import ImageServicer
from servin.engine.server.cri.runtime_info import RuntimeInfoVerbs
from servin.engine.server.cri.sandbox_run import SandboxRunVerbs
from servin.engine.server.cri.sandbox_status import SandboxStatusVerbs
from servin.engine.server.cri.sandbox_stop import SandboxStopVerbs
from servin.engine.server.cri.stats import StatsVerbs
from servin.engine.server.cri.streaming.server import StreamingServer
from servin.engine.server.cri.streaming_verbs import StreamingVerbs
from servin.engine.server.grpc.errors import ErrorMappingInterceptor
from servin.engine.server.grpc.rpc import Context
from servin.engine.server.grpc.server import MAX_MESSAGE
from servin.engine.server.grpc.wirecache import WireCache, add_servicer
from servin.errors import Unavailable


class RuntimeServicer(
    RuntimeInfoVerbs,
    SandboxRunVerbs,
    SandboxStopVerbs,
    SandboxStatusVerbs,
    ContainerCreateVerbs,
    ContainerLifecycleVerbs,
    ContainerStatusVerbs,
    ContainerUpdateVerbs,
    ExecSyncVerbs,
    StreamingVerbs,
    StatsVerbs,
    EventVerbs,
    api_pb2_grpc.RuntimeServiceServicer,
):
    """runtime.v1.RuntimeService over the core's API."""

    def __init__(self, core: CoreAPI, streaming: StreamingServer | None = None) -> None:
        self.core = core
        self.streaming = streaming
        self._listed = WireCache(list_element)

    async def CheckpointContainer(self, request: api_pb2.CheckpointContainerRequest,
                                  context: Context) -> api_pb2.CheckpointContainerResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED,
                            "CheckpointContainer is not supported by Servin")
        raise Unavailable("unreachable")  # abort raises


def build_cri_server(core: CoreAPI, streaming: StreamingServer | None = None
                     ) -> grpc.aio.Server:
    """A server with only the CRI's two services (for ``cri_socket``), not yet bound."""
    server = grpc.aio.server(interceptors=[ErrorMappingInterceptor()],
                             options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                      ("grpc.max_send_message_length", MAX_MESSAGE),
                                      ("grpc.so_reuseport", 0)])
    register(server, core, streaming)
    return server


def register(server: grpc.aio.Server, core: CoreAPI,
             streaming: StreamingServer | None = None) -> None:
    """Add runtime.v1's RuntimeService and ImageService to ``server``."""
    # The generated registration functions carry no annotations: typed here.
    registrations: list[tuple[Callable[[Any, Any], None], object]] = [
        (api_pb2_grpc.add_RuntimeServiceServicer_to_server, RuntimeServicer(core, streaming)),
        (api_pb2_grpc.add_ImageServiceServicer_to_server, ImageServicer(core)),
    ]
    for add, servicer in registrations:
        add_servicer(add, servicer, server)
