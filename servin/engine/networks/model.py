"""The engine's Network and Endpoint model (servin.v1 and the Docker API translate onto it)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from servin.engine.containers.model import Container
from servin.errors import InvalidArgument

BRIDGE = "bridge"
HOST = "host"
NULL = "null"
# The networks every daemon has; they cannot be created or removed by name.
BUILTIN_NAMES = ("bridge", "host", "none")


@dataclass
class Network:
    """One network: a Linux bridge with a subnet, or the host/none pseudo networks."""

    id: str
    name: str
    driver: str
    subnet: str = ""  # CIDR
    gateway: str = ""
    ip_range: str = ""  # CIDR inside subnet: where dynamic addresses come from
    internal: bool = False
    bridge: str = ""  # Linux interface name
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    builtin: bool = False
    created_ns: int = 0

    @property
    def is_bridge(self) -> bool:
        """Whether containers on it get a veth on a Linux bridge."""
        return self.driver == BRIDGE

    @property
    def user_defined(self) -> bool:
        """User networks have the embedded DNS (the default bridge has not, as on Docker)."""
        return self.is_bridge and not self.builtin

    @property
    def prefixlen(self) -> int:
        """The subnet's prefix length."""
        return ipaddress.IPv4Network(self.subnet).prefixlen


@dataclass
class Endpoint:
    """A container's attachment to a network: its address is the IPAM record."""

    network_id: str
    container_id: str
    address: str
    mac: str
    aliases: list[str] = field(default_factory=list)
    static: bool = False


def mac_for(address: str) -> str:
    """A locally administered MAC derived from the IPv4 address (as Docker does)."""
    octets = ipaddress.IPv4Address(address).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in octets)


@dataclass(frozen=True)
class NetworkView:
    """A network with the containers that have an endpoint on it (list and inspect)."""

    network: Network
    endpoints: list[tuple[Endpoint, Container]]


def check_mac(text: str) -> str:
    """A unicast Ethernet address ``xx:xx:xx:xx:xx:xx`` (``--mac-address``), normalised."""
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p)
                                  for p in parts):
        raise InvalidArgument(f"invalid MAC address: {text}")
    if int(parts[0], 16) & 1:
        raise InvalidArgument(f"invalid MAC address: {text} is a multicast address")
    return text.lower()
