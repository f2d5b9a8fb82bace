"""Linux bridges and veth pairs through netlink (pyroute2); no ``ip`` commands.

Each operation opens one netlink socket on the host (and, for a container, one inside its
network namespace from a short-lived thread) and does all its work there, so starting a
container costs a handful of netlink round-trips.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from servin.engine.linux.netdev import run_in_netns
from servin.errors import Conflict

SYS_NET = Path("/proc/sys/net")
SYS_CLASS_NET = Path("/sys/class/net")


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def enable_forwarding() -> None:
    """Turn on IPv4 forwarding (needed for NAT out of the bridges, as Docker does)."""
    path = SYS_NET / "ipv4" / "ip_forward"
    if path.read_text().strip() != "1":
        _write(path, "1")


def veth_name(container_id: str, network_id: str) -> str:
    """The host-side veth of a container on a network (stable, 12 characters)."""
    return "sv" + hashlib.sha256(f"{container_id}/{network_id}".encode()).hexdigest()[:10]


def ensure_bridge(name: str, gateway: str, prefixlen: int, owner: str) -> None:
    """The bridge exists, is up and carries the gateway address (idempotent).

    Bridges are marked with ``owner`` (their interface alias): a bridge of that name that
    another daemon (or anything else) owns is refused, never taken over. So is a subnet that
    another interface of the host already has an address in.
    """
    subnet = ipaddress.IPv4Network(f"{gateway}/{prefixlen}", strict=False)
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if found and _alias(ipr, found[0]) != owner:
            raise Conflict(
                f"a network interface named {name} already exists and is not this daemon's"
            )
        for other, address in _addresses(ipr):
            if other != name and address.network.overlaps(subnet):
                raise Conflict(f"subnet {subnet} overlaps address {address} of interface "
                               f"{other} on this host")
        if not found:
            ipr.link("add", ifname=name, kind="bridge")
            found = ipr.link_lookup(ifname=name)
            ipr.link("set", index=found[0], ifalias=owner)
        index = found[0]
        have = {
            (a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index, family=2)
        }
        for address, plen in have - {(gateway, prefixlen)}:
            ipr.addr("del", index=index, address=address, prefixlen=plen)
        if (gateway, prefixlen) not in have:
            ipr.addr("add", index=index, address=gateway, prefixlen=prefixlen)
        ipr.link("set", index=index, state="up")
    # Published ports on 127.0.0.1 are DNAT-ed to the container: the kernel must route
    # loopback-sourced packets out of this bridge (they are masqueraded on the way).
    _write(SYS_NET / "ipv4" / "conf" / name / "route_localnet", "1")


def _alias(ipr: IPRoute, index: int) -> str:
    return ipr.get_links(index)[0].get_attr("IFLA_IFALIAS") or ""


def _addresses(ipr: IPRoute) -> list[tuple[str, ipaddress.IPv4Interface]]:
    names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
    return [
        (names.get(a["index"], ""),
         ipaddress.IPv4Interface(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"))
        for a in ipr.get_addr(family=2)
    ]


def host_subnets() -> list[tuple[str, ipaddress.IPv4Network]]:
    """The IPv4 networks of the host's interfaces (interface name, network)."""
    with IPRoute() as ipr:
        return [(name, address.network) for name, address in _addresses(ipr)]


def delete_bridges(names: list[str], owner: str) -> None:
    """Delete the bridges among ``names`` that ``owner`` made; others are left alone."""
    with IPRoute() as ipr:
        for name in names:
            found = ipr.link_lookup(ifname=name)
            if found and _alias(ipr, found[0]) == owner:
                with contextlib.suppress(NetlinkError):
                    ipr.link("del", index=found[0])


def owned_bridges(owner: str) -> list[str]:
    """Names of the bridges ``owner`` made (its interface alias marks them)."""
    with IPRoute() as ipr:
        return [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()
                if link.get_attr("IFLA_IFALIAS") == owner]


def link_exists(name: str) -> bool:
    """Whether a network interface of this name exists (in the host's namespace)."""
    return (SYS_CLASS_NET / name).exists()


def delete_links(names: list[str]) -> None:
    """Delete links by name; missing ones are fine."""
    if not names:
        return
    with IPRoute() as ipr:
        for name in names:
            found = ipr.link_lookup(ifname=name)
            if found:
                with contextlib.suppress(NetlinkError):
                    ipr.link("del", index=found[0])


def bridge_ports(bridge: str) -> list[str]:
    """Names of the links enslaved to a bridge."""
    brif = SYS_CLASS_NET / bridge / "brif"
    try:
        return sorted(p.name for p in brif.iterdir())
    except FileNotFoundError:
        return []


@dataclass(frozen=True)
class Link:
    """One container interface to make: a veth from ``bridge`` into the container."""

    host_name: str  # the host side, enslaved to the bridge
    bridge: str
    ifname: str  # the name inside the container: eth0, eth1, ...
    address: str
    prefixlen: int
    mac: str
    gateway: str  # default route through it ('' for secondary networks)


def attach(pid: int, wanted: list[Link]) -> None:
    """Make the container's interfaces in the network namespace of ``pid``.

    On failure, every host-side veth made so far is deleted before the error propagates.
    """
    made: list[str] = []
    try:
        with open(f"/proc/{pid}/ns/net", "rb") as ns, IPRoute() as ipr:
            for link in wanted:
                bridge = ipr.link_lookup(ifname=link.bridge)
                if not bridge:
                    raise OSError(errno.ENODEV, f"bridge {link.bridge} is missing")
                # One request: the pair, its host side enslaved and up, its peer already in
                # the container's namespace (the peer's flags are not applied by the kernel,
                # so it is set up from inside).
                ipr.link(
                    "add", ifname=link.host_name, kind="veth", master=bridge[0], state="up",
                    peer={"ifname": link.ifname, "address": link.mac,
                          "net_ns_fd": ns.fileno()},
                )
                made.append(link.host_name)
                # A container can reach its own published ports through the host address.
                with contextlib.suppress(OSError):
                    _write(SYS_CLASS_NET / link.host_name / "brport" / "hairpin_mode", "1")
        run_in_netns(pid, lambda: _configure_inside(wanted))
    except BaseException:
        delete_links(made)
        raise


def _configure_inside(wanted: list[Link]) -> None:
    with IPRoute() as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        for link in wanted:
            index = ipr.link_lookup(ifname=link.ifname)[0]
            ipr.addr("add", index=index, address=link.address, prefixlen=link.prefixlen)
            ipr.link("set", index=index, state="up")
            if link.gateway:
                ipr.route("add", dst="0.0.0.0/0", gateway=link.gateway)


def free_ifname(pid: int) -> str:
    """The first ``ethN`` not in use in the network namespace of ``pid``."""

    def names() -> set[str]:
        with IPRoute() as ipr:
            return {link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}

    taken = run_in_netns(pid, names)
    return next(f"eth{i}" for i in range(len(taken) + 1) if f"eth{i}" not in taken)
