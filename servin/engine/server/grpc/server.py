"""Builds the grpc.aio server with every servin.v1 servicer registered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from servin.api.servin.v1 import (
    containers_pb2_grpc,
    images_pb2_grpc,
    networks_pb2_grpc,
    pods_pb2_grpc,
    system_pb2_grpc,
    volumes_pb2_grpc,
)
from servin.engine.engine import CoreAPI
from servin.engine.server.grpc.containers import ContainersServicer
from servin.engine.server.grpc.errors import ErrorMappingInterceptor
from servin.engine.server.grpc.images import ImagesServicer
from servin.engine.server.grpc.networks import NetworksServicer
from servin.engine.server.grpc.pods import PodsServicer
from servin.engine.server.grpc.system import SystemServicer
from servin.engine.server.grpc.volumes import VolumesServicer
from servin.engine.server.grpc.wirecache import add_servicer

MAX_MESSAGE = 64 * 1024 * 1024


def build_server(core: CoreAPI) -> grpc.aio.Server:
    """A server with the servin.v1 services over the core's API, not yet bound or started."""
    server = grpc.aio.server(
        interceptors=[ErrorMappingInterceptor()],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.so_reuseport", 0),
        ],
    )
    # The generated registration functions carry no annotations: typed here.
    registrations: list[tuple[Callable[[Any, Any], None], object]] = [
        (system_pb2_grpc.add_SystemServicer_to_server, SystemServicer(core)),
        (images_pb2_grpc.add_ImagesServicer_to_server, ImagesServicer(core)),
        (containers_pb2_grpc.add_ContainersServicer_to_server, ContainersServicer(core)),
        (volumes_pb2_grpc.add_VolumesServicer_to_server, VolumesServicer(core)),
        (networks_pb2_grpc.add_NetworksServicer_to_server, NetworksServicer(core)),
        (pods_pb2_grpc.add_PodsServicer_to_server, PodsServicer(core)),
    ]
    for register, servicer in registrations:
        add_servicer(register, servicer, server)
    return server
