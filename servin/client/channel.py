"""Opening a gRPC channel to a daemon address (unix, tcp, or ssh through a tunnel)."""

from __future__ import annotations

from typing import Any

from servin.client.hosts import HostAddress, parse_host
from servin.client.ssh import SSHTunnel

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.enable_retries", 0),
]


def channel_target(url: str) -> tuple[str, HostAddress, SSHTunnel | None]:
    """The gRPC target for ``url``; for ssh, the started tunnel to close afterwards."""
    address = parse_host(url)
    if address.scheme == "unix":
        return f"unix:{address.path}", address, None
    if address.scheme == "tcp":
        return f"{address.host}:{address.port}", address, None
    tunnel = SSHTunnel(address)
    local = tunnel.start()
    return f"unix:{local}", address, tunnel


def channel_options() -> list[tuple[str, Any]]:
    """Options every client channel uses."""
    return list(CHANNEL_OPTIONS)
