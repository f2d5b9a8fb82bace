"""Where a daemon address leads (unix, tcp, or ssh through a tunnel), for both transports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from servin.client.addresses import HostAddress, TLSConfig, parse_host
from servin.client.hosts import Target

if TYPE_CHECKING:
    from servin.client.ssh import SSHTunnel

MAX_MESSAGE = 64 * 1024 * 1024  # the daemon's limit too

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.enable_retries", 0),
]


class Endpoint(NamedTuple):
    """The socket a client connects to: a unix path, or a tcp host and port (maybe TLS)."""

    unix: str = ""
    host: str = ""
    port: int = 0
    tls: TLSConfig | None = None

    @property
    def grpc_target(self) -> str:
        """The target string grpcio takes."""
        return f"unix:{self.unix}" if self.unix else f"{self.host}:{self.port}"


def open_endpoint(target: Target | str) -> tuple[Endpoint, HostAddress, SSHTunnel | None]:
    """The endpoint for ``target``; for ssh, the started tunnel (close it afterwards)."""
    if isinstance(target, str):
        target = Target(target)
    address = parse_host(target.url)
    if address.scheme == "unix":
        return Endpoint(unix=address.path), address, None
    if address.scheme == "tcp":
        return Endpoint(host=address.host, port=address.port, tls=target.tls), address, None
    from servin.client.ssh import SSHTunnel  # only ssh:// pays for subprocess and tempfile

    tunnel = SSHTunnel(address)
    local = tunnel.start()
    return Endpoint(unix=str(local)), address, tunnel


def grpc_credentials(tls: TLSConfig) -> Any:
    """grpcio channel credentials for ``tls`` (grpcio always verifies the daemon's certificate,
    so ``--tls`` without ``--tlsverify`` is refused here rather than silently verifying)."""
    import grpc

    from servin.errors import InvalidArgument

    if not tls.verify:
        raise InvalidArgument(
            "the grpc transport needs --tlsverify (it cannot skip certificate verification)"
        )

    def read(path: str) -> bytes | None:
        if not path:
            return None
        with open(path, "rb") as f:
            return f.read()

    return grpc.ssl_channel_credentials(
        root_certificates=read(tls.ca),
        private_key=read(tls.key),
        certificate_chain=read(tls.cert),
    )


def channel_options() -> list[tuple[str, Any]]:
    """Options every grpcio client channel uses."""
    return list(CHANNEL_OPTIONS)
