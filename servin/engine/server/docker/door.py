"""The daemon's Docker API door: its routes, its addresses and its listeners' life.

The daemon makes one ``DockerDoor``, calls ``bind()`` with its other sockets (a taken
address fails the start before anything else is touched), ``start()`` once the engine is
ready, and ``stop()`` at shutdown.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

from servin import __version__
from servin.engine.config import DaemonConfig
from servin.engine.engine import CoreAPI
from servin.engine.server.docker.build import BuildRoutes
from servin.engine.server.docker.containers import register_container_routes
from servin.engine.server.docker.http import HTTPServer
from servin.engine.server.docker.images import ImageRoutes
from servin.engine.server.docker.networks import NetworkRoutes
from servin.engine.server.docker.router import Router
from servin.engine.server.docker.system import SystemRoutes
from servin.engine.server.docker.versions import API_VERSION
from servin.engine.server.docker.volumes import VolumeRoutes
from servin.engine.server.sockets import prepare_unix_socket, secure_unix_socket
from servin.errors import Conflict, InvalidArgument

log = logging.getLogger(__name__)

# dockerd's conventional ports: 2375 plain, 2376 with TLS.
PLAIN_PORT, TLS_PORT = 2375, 2376


def default_headers() -> list[tuple[str, str]]:
    """What every response carries (dockerd's version and experimental middlewares)."""
    return [
        ("Server", f"Servin/{__version__} (linux)"),
        ("Api-Version", API_VERSION),
        ("Docker-Experimental", "false"),
        ("Ostype", "linux"),
    ]


def build_router(core: CoreAPI, config: DaemonConfig) -> Router:
    """Every Docker API route this daemon serves."""
    router = Router()
    SystemRoutes(core, docker_hosts=config.effective_docker_hosts()).register(router)
    ImageRoutes(core).register(router)
    NetworkRoutes(core).register(router)
    VolumeRoutes(core).register(router)
    BuildRoutes(core).register(router)
    register_container_routes(router, core)
    return router


def parse_tcp_address(host: str, tls: bool) -> tuple[str, int]:
    """``tcp://HOST:PORT`` -> (host, port); the port defaults to 2375 (2376 with TLS)."""
    address = host[len("tcp://"):].rstrip("/")
    name, port = address, TLS_PORT if tls else PLAIN_PORT
    if address.startswith("["):
        name, _, rest = address[1:].partition("]")
        if rest.startswith(":"):
            port = _port(host, rest[1:])
    elif ":" in address:
        name, text = address.rsplit(":", 1)
        port = _port(host, text)
    return name or "0.0.0.0", port


def _port(host: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InvalidArgument(f"invalid listen address {host!r}: bad port {text!r}")
    return int(text)


def server_tls_context(config: DaemonConfig) -> ssl.SSLContext:
    """TLS for tcp:// listeners from the daemon's --tlscert/--tlskey (and --tlscacert with
    --tlsverify: clients must present a certificate that CA signed), as the gRPC door uses."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(config.tls_cert, config.tls_key)
        if config.tls_verify:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(config.tls_ca)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgument(f"cannot load the TLS certificate and key: {exc}") from None
    return ctx


class DockerDoor:
    """The Docker Engine API server of one daemon."""

    def __init__(self, core: CoreAPI, config: DaemonConfig) -> None:
        self.config = config
        self.hosts = config.effective_docker_hosts()
        self.server = HTTPServer(build_router(core, config), default_headers=default_headers())
        self.sockets: list[Path] = []

    async def bind(self) -> None:
        """Create every listener (not serving yet); Conflict when an address is taken."""
        for host in self.hosts:
            if host.startswith("unix://"):
                path = Path(host[len("unix://"):])
                prepare_unix_socket(path)
                try:
                    await self.server.listen_unix(str(path), start=False)
                except OSError as exc:
                    raise Conflict(f"cannot listen on {host}: {exc.strerror or exc}") from None
                self.sockets.append(path)
                secure_unix_socket(path, self.config.socket_group)
                continue
            tls = bool(self.config.tls_cert)
            name, port = parse_tcp_address(host, tls)
            context = server_tls_context(self.config) if tls else None
            if context is None:
                log.warning("docker api listening on %s without TLS: anyone who reaches it is "
                            "root", host)
            try:
                await self.server.listen_tcp(name, port, ssl=context, start=False)
            except OSError as exc:
                raise Conflict(f"cannot listen on {host}: {exc.strerror or exc}") from None

    async def start(self) -> None:
        """Start answering requests."""
        await self.server.start_serving()

    async def stop(self, grace: float = 3.0) -> None:
        """Stop listening, end every connection, remove the sockets."""
        await self.server.close(grace)
        for path in self.sockets:
            path.unlink(missing_ok=True)
        self.sockets.clear()
