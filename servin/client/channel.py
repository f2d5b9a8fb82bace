"""Where a daemon address leads (unix, tcp, or ssh through a tunnel), for both transports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from servin.client.hosts import HostAddress, parse_host

if TYPE_CHECKING:
    from servin.client.ssh import SSHTunnel

MAX_MESSAGE = 64 * 1024 * 1024  # the daemon's limit too

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.enable_retries", 0),
]


@dataclass(frozen=True)
class Endpoint:
    """The socket a client connects to: a unix path, or a tcp host and port."""

    unix: str = ""
    host: str = ""
    port: int = 0

    @property
    def grpc_target(self) -> str:
        """The target string grpcio takes."""
        return f"unix:{self.unix}" if self.unix else f"{self.host}:{self.port}"


def open_endpoint(url: str) -> tuple[Endpoint, HostAddress, SSHTunnel | None]:
    """The endpoint for ``url``; for ssh, the started tunnel (close it afterwards)."""
    address = parse_host(url)
    if address.scheme == "unix":
        return Endpoint(unix=address.path), address, None
    if address.scheme == "tcp":
        return Endpoint(host=address.host, port=address.port), address, None
    from servin.client.ssh import SSHTunnel  # only ssh:// pays for subprocess and tempfile

    tunnel = SSHTunnel(address)
    local = tunnel.start()
    return Endpoint(unix=str(local)), address, tunnel


def channel_target(url: str) -> tuple[str, HostAddress, SSHTunnel | None]:
    """The grpcio target for ``url``; for ssh, the started tunnel to close afterwards."""
    endpoint, address, tunnel = open_endpoint(url)
    return endpoint.grpc_target, address, tunnel


def channel_options() -> list[tuple[str, Any]]:
    """Options every grpcio client channel uses."""
    return list(CHANNEL_OPTIONS)
