"""Address management arithmetic: subnets, gateways, ranges, the next free address.

The records themselves live in the store (``network_endpoints``); this module only decides.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from servin.errors import Conflict, InvalidArgument, ResourceExhausted

IPv4Net = ipaddress.IPv4Network


def parse_subnet(text: str) -> IPv4Net:
    """An IPv4 subnet in CIDR form; InvalidArgument otherwise (host bits must be zero)."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise InvalidArgument(f"invalid subnet {text!r}: {exc}") from None
    if not isinstance(net, IPv4Net):
        raise InvalidArgument(f"invalid subnet {text!r}: only IPv4 networks are supported")
    if net.prefixlen > 30:
        raise InvalidArgument(f"subnet {text} is too small (at most /30)")
    return net


def parse_address(text: str, what: str = "address") -> ipaddress.IPv4Address:
    """An IPv4 address; InvalidArgument otherwise."""
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise InvalidArgument(f"invalid {what} {text!r}: not an IPv4 address") from None


def check_overlap(subnet: IPv4Net, taken: Iterable[tuple[str, str]]) -> None:
    """Conflict if ``subnet`` overlaps any (name, subnet) in ``taken``."""
    for name, other in taken:
        if other and subnet.overlaps(ipaddress.IPv4Network(other)):
            raise Conflict(f"subnet {subnet} overlaps with network {name!r} ({other})")


def validate(subnet: IPv4Net, gateway: str, ip_range: str) -> tuple[str, str]:
    """The gateway (default: first host) and range, checked to lie inside the subnet."""
    if gateway:
        gw = parse_address(gateway, "gateway")
        if gw not in subnet or gw in (subnet.network_address, subnet.broadcast_address):
            raise InvalidArgument(f"gateway {gateway} is not a host address of subnet {subnet}")
    else:
        gw = subnet.network_address + 1
    if ip_range:
        try:
            rng = ipaddress.IPv4Network(ip_range, strict=True)
        except ValueError as exc:
            raise InvalidArgument(f"invalid ip-range {ip_range!r}: {exc}") from None
        if not rng.subnet_of(subnet):
            raise InvalidArgument(f"ip-range {ip_range} is not inside subnet {subnet}")
    return str(gw), ip_range


def pick_subnet(pool: str, size: int, taken: Iterable[str]) -> IPv4Net:
    """The first /size block of ``pool`` that overlaps none of ``taken``."""
    used = [ipaddress.IPv4Network(t) for t in taken if t]
    for candidate in ipaddress.IPv4Network(pool).subnets(new_prefix=size):
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    raise ResourceExhausted(f"the address pool {pool} has no free /{size} subnet left")


def check_static(subnet: IPv4Net, gateway: str, address: str, taken: set[str]) -> str:
    """A requested address, checked: inside the subnet, not the gateway, not taken."""
    addr = parse_address(address, "IP address")
    if addr not in subnet or addr in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"address {address} is not inside subnet {subnet}")
    if str(addr) == gateway:
        raise Conflict(f"address {address} is the network's gateway")
    if str(addr) in taken:
        raise Conflict(f"address {address} is already in use on the network")
    return str(addr)


def next_free(subnet: IPv4Net, gateway: str, ip_range: str, taken: set[str]) -> str:
    """The lowest free host address of the range (or subnet), skipping the gateway."""
    space = ipaddress.IPv4Network(ip_range) if ip_range else subnet
    for addr in space.hosts() if space.prefixlen < 31 else space:
        text = str(addr)
        if addr in (subnet.network_address, subnet.broadcast_address):
            continue
        if text != gateway and text not in taken:
            return text
    raise ResourceExhausted(f"no free address left in {space}")
