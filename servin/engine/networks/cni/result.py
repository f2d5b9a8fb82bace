"""CNI results (spec section 5, "ADD Success", versions 0.3.0 to 1.1.0) as typed values.

The JSON a plugin printed is kept as ``raw``: it is what the next plugin gets as
``prevResult`` and what DEL and CHECK get later, unchanged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ResultError(ValueError):
    """A plugin's output is not a valid result."""


@dataclass(frozen=True)
class Interface:
    """An interface the attachment made; ``sandbox`` is the netns path ('' on the host)."""

    name: str
    mac: str = ""
    sandbox: str = ""
    mtu: int | None = None


@dataclass(frozen=True)
class IPConfig:
    """An address (with its prefix) and, when known, its gateway and interface index."""

    address: IPInterface
    gateway: IPAddress | None = None
    interface: int | None = None


@dataclass(frozen=True)
class Route:
    """A route the attachment made (``gw`` None: through the address's gateway)."""

    dst: IPNetwork
    gw: IPAddress | None = None


@dataclass(frozen=True)
class DNS:
    """DNS settings a plugin reported."""

    nameservers: tuple[str, ...] = ()
    domain: str = ""
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Result:
    """The final result of an ADD."""

    cni_version: str
    interfaces: tuple[Interface, ...]
    ips: tuple[IPConfig, ...]
    routes: tuple[Route, ...]
    dns: DNS
    raw: Mapping[str, Any]

    def addresses(self, ifname: str) -> list[IPInterface]:
        """The addresses on the sandbox interface ``ifname`` (the pod's IPs), in order.

        Addresses without an interface index count too when the result names no sandbox
        interface at all (a plugin chain that only reports IPAM's answer).
        """
        inside = {i for i, itf in enumerate(self.interfaces) if itf.sandbox and itf.name == ifname}
        return [ip.address for ip in self.ips
                if ip.interface in inside or (ip.interface is None and not inside)]


def _str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key, "")
    if not isinstance(value, str):
        raise ResultError(f"{where}.{key} is not a string")
    return value


def _strs(obj: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ResultError(f"{where}.{key} is not a list of strings")
    return tuple(value)


def _uint(obj: Mapping[str, Any], key: str, where: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ResultError(f"{where}.{key} is not an unsigned integer")
    return value


def _objects(doc: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ResultError(f"{key} is not a list of objects")
    return value


def parse_result(doc: Any) -> Result:
    """Check and type a result object. Raises ResultError saying what is wrong."""
    if not isinstance(doc, dict):
        raise ResultError("not a JSON object")
    version = doc.get("cniVersion")
    if not isinstance(version, str):
        raise ResultError("missing cniVersion")
    try:
        interfaces = tuple(
            Interface(name=_str(i, "name", f"interfaces[{n}]"), mac=_str(i, "mac", "interface"),
                      sandbox=_str(i, "sandbox", "interface"), mtu=_uint(i, "mtu", "interface"))
            for n, i in enumerate(_objects(doc, "interfaces"))
        )
        ips = []
        for n, ip in enumerate(_objects(doc, "ips")):
            where = f"ips[{n}]"
            gateway = _str(ip, "gateway", where)
            index = _uint(ip, "interface", where)
            if index is not None and index >= len(interfaces):
                raise ResultError(f"{where}.interface {index} names no interface")
            ips.append(IPConfig(address=ipaddress.ip_interface(_str(ip, "address", where)),
                                gateway=ipaddress.ip_address(gateway) if gateway else None,
                                interface=index))
        routes = []
        for n, route in enumerate(_objects(doc, "routes")):
            gw = _str(route, "gw", f"routes[{n}]")
            routes.append(Route(dst=ipaddress.ip_network(_str(route, "dst", f"routes[{n}]"),
                                                         strict=False),
                                gw=ipaddress.ip_address(gw) if gw else None))
        dns_doc = {} if doc.get("dns") is None else doc["dns"]
        if not isinstance(dns_doc, dict):
            raise ResultError("dns is not an object")
        dns = DNS(nameservers=_strs(dns_doc, "nameservers", "dns"),
                  domain=_str(dns_doc, "domain", "dns"),
                  search=_strs(dns_doc, "search", "dns"), options=_strs(dns_doc, "options", "dns"))
    except ValueError as exc:  # ipaddress's errors, and ResultError itself
        raise ResultError(str(exc)) from None
    return Result(cni_version=version, interfaces=interfaces, ips=tuple(ips),
                  routes=tuple(routes), dns=dns, raw=doc)
