"""Published ports: which host ports a container takes, and holding them while it runs.

The DNAT rules do the forwarding (no userland proxy); the daemon also keeps a bound socket on
every published host port, so the port is really taken: another program (or another daemon)
cannot bind it, and ``-p HOST:...`` on a port in use fails with a clear error up front.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
from dataclasses import asdict, dataclass

from servin.errors import Conflict, InvalidArgument

PROTOCOLS = ("tcp", "udp")


@dataclass(frozen=True)
class Binding:
    """One published port as taken: a host port (never 0 here) to a container port."""

    container_port: int
    protocol: str
    host_ip: str  # "" = every address
    host_port: int
    host_port_end: int = 0  # requested only: pick one free port of host_port..host_port_end

    def to_dict(self) -> dict[str, object]:
        """As stored in the container's state."""
        return asdict(self)


def check_request(container_port: int, protocol: str, host_ip: str, host_port: int,
                  host_port_end: int = 0) -> None:
    """InvalidArgument for a malformed publish request."""
    if not 0 < container_port < 65536:
        raise InvalidArgument(f"invalid container port {container_port}")
    if protocol not in PROTOCOLS:
        raise InvalidArgument(f"invalid protocol {protocol!r} (tcp or udp)")
    if not 0 <= host_port < 65536:
        raise InvalidArgument(f"invalid host port {host_port}")
    if host_port_end and not 0 < host_port < host_port_end < 65536:
        raise InvalidArgument(f"invalid host port range {host_port}-{host_port_end}")
    if host_ip:
        try:
            ipaddress.IPv4Address(host_ip)
        except ValueError:
            raise InvalidArgument(f"invalid host IP {host_ip!r} (IPv4 only)") from None


def exposed_ports(values: list[str]) -> list[tuple[int, str]]:
    """``80/tcp``-style EXPOSE entries as (port, protocol); ranges are expanded."""
    out = []
    for value in values:
        port, _, proto = value.partition("/")
        proto = proto or "tcp"
        low, _, high = port.partition("-")
        try:
            for number in range(int(low), int(high or low) + 1):
                out.append((number, proto))
        except ValueError:
            raise InvalidArgument(f"invalid exposed port {value!r}") from None
    return out


def _bind(b: Binding) -> socket.socket:
    """A socket bound to the binding's host port (0: any free one; a range: the first free
    one of it, as docker picks one)."""
    kind = socket.SOCK_STREAM if b.protocol == "tcp" else socket.SOCK_DGRAM
    candidates = range(b.host_port, max(b.host_port, b.host_port_end) + 1)
    where = f"{b.host_ip or '0.0.0.0'}:{b.host_port}" + (
        f"-{b.host_port_end}" if b.host_port_end else "") + f"/{b.protocol}"
    for port in candidates:
        s = socket.socket(socket.AF_INET, kind)
        s.set_inheritable(False)
        try:
            s.bind((b.host_ip or "0.0.0.0", port))
            return s
        except OSError as exc:
            s.close()
            if exc.errno != errno.EADDRINUSE:
                raise InvalidArgument(f"cannot publish on {where}: {exc.strerror}") from None
    if b.host_port_end:
        raise Conflict(f"every host port of {where} is already in use")
    raise Conflict(f"host port {where} is already in use")


class Reservations:
    """Bound sockets that hold the host ports of running containers."""

    def __init__(self) -> None:
        self._held: dict[str, list[socket.socket]] = {}

    def take(self, owner: str, wanted: list[Binding]) -> list[Binding]:
        """Bind every host port (0 = a free one); all or none. Returns the bindings taken."""
        sockets: list[socket.socket] = []
        taken: list[Binding] = []
        try:
            for b in wanted:
                s = _bind(b)
                sockets.append(s)
                taken.append(Binding(b.container_port, b.protocol, b.host_ip,
                                     s.getsockname()[1]))
        except BaseException:
            for s in sockets:
                s.close()
            raise
        self.release(owner)
        self._held[owner] = sockets
        return taken

    def release(self, owner: str) -> None:
        """Let the owner's host ports go."""
        for s in self._held.pop(owner, []):
            with contextlib.suppress(OSError):
                s.close()

    def close(self) -> None:
        """Let every port go (daemon shutdown; the DNAT rules stay for live containers)."""
        for owner in list(self._held):
            self.release(owner)
