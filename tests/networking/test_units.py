"""Address arithmetic, -p parsing and the rendered firewall table (no daemon needed)."""

from __future__ import annotations

import ipaddress

import pytest

from servin.cli.runflags import parse_publish
from servin.engine.networks import firewall, ipam
from servin.errors import Conflict, InvalidArgument, ResourceExhausted

NET = ipaddress.IPv4Network("10.99.0.0/29")


def test_next_free_skips_gateway_and_taken_and_honours_the_range() -> None:
    assert ipam.next_free(NET, "10.99.0.1", "", set()) == "10.99.0.2"
    assert ipam.next_free(NET, "10.99.0.1", "", {"10.99.0.2", "10.99.0.3"}) == "10.99.0.4"
    assert ipam.next_free(NET, "10.99.0.1", "10.99.0.4/30", set()) == "10.99.0.5"
    with pytest.raises(ResourceExhausted):
        ipam.next_free(NET, "10.99.0.1", "", {f"10.99.0.{i}" for i in range(2, 7)})


def test_static_addresses_are_checked() -> None:
    assert ipam.check_static(NET, "10.99.0.1", "10.99.0.5", set()) == "10.99.0.5"
    with pytest.raises(InvalidArgument, match="not inside subnet"):
        ipam.check_static(NET, "10.99.0.1", "10.99.1.5", set())
    with pytest.raises(Conflict, match="gateway"):
        ipam.check_static(NET, "10.99.0.1", "10.99.0.1", set())
    with pytest.raises(Conflict, match="already in use"):
        ipam.check_static(NET, "10.99.0.1", "10.99.0.5", {"10.99.0.5"})


def test_subnets_gateways_pools() -> None:
    with pytest.raises(Conflict, match="overlaps with network 'a'"):
        ipam.check_overlap(ipaddress.IPv4Network("10.99.0.0/16"), [("a", "10.99.3.0/24")])
    with pytest.raises(InvalidArgument, match="not a host address"):
        ipam.validate(NET, "10.99.0.7", "")  # the broadcast address
    with pytest.raises(InvalidArgument, match="not inside subnet"):
        ipam.validate(NET, "", "10.98.0.0/30")
    assert ipam.validate(NET, "", "") == ("10.99.0.1", "")
    assert str(ipam.pick_subnet("10.99.0.0/16", 24, ["10.99.0.0/24", "10.99.1.128/25"])) == \
        "10.99.2.0/24"


@pytest.mark.parametrize(("text", "expected"), [
    ("80", [(80, "tcp", "", 0, 0)]),
    ("8080:80", [(80, "tcp", "", 8080, 0)]),
    ("127.0.0.1:8080:80/udp", [(80, "udp", "127.0.0.1", 8080, 0)]),
    ("127.0.0.1::80", [(80, "tcp", "127.0.0.1", 0, 0)]),
    # Ranges: pairwise when the lengths match, docker's pick-one for a single container port.
    ("5622-5624:5622-5624", [(5622, "tcp", "", 5622, 0), (5623, "tcp", "", 5623, 0),
                             (5624, "tcp", "", 5624, 0)]),
    ("127.0.0.1:8000-8010:80", [(80, "tcp", "127.0.0.1", 8000, 8010)]),
    ("7000-7001/udp", [(7000, "udp", "", 0, 0), (7001, "udp", "", 0, 0)]),
])
def test_publish_flag(text: str, expected: list[tuple[int, str, str, int, int]]) -> None:
    got = [(p.container_port, p.protocol, p.host_ip, p.host_port, p.host_port_end)
           for p in parse_publish(text)]
    assert got == expected


@pytest.mark.parametrize("text", ["abc", "70000:80", "80/sctp", "1:2:3:4", "8000-8001:80-82",
                                  "90-80"])
def test_bad_publish_flag(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_publish(text)


def test_rendered_table() -> None:
    script = firewall.render(
        "servin_t",
        [firewall.BridgeRules("br-a", "10.1.0.0/24", False),
         firewall.BridgeRules("br-b", "10.2.0.0/24", True)],
        [firewall.PortRule("tcp", "127.0.0.1", 8080, "10.1.0.2", 80)],
    )
    # Replaced atomically: created if missing, deleted, created again in one transaction.
    assert script.startswith("table ip servin_t {}\ndelete table ip servin_t\n")
    assert "ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.1.0.2:80" in script
    assert 'ip saddr 10.1.0.0/24 oifname != "br-a" masquerade' in script
    assert "ip saddr 10.2.0.0/24 oifname" not in script  # internal: no masquerade
    assert 'iifname "br-a" oifname { "br-b" } drop' in script  # isolation between networks
    assert 'iifname "br-b" oifname != "br-b" drop' in script
    assert 'oifname "br-b" iifname != "br-b" drop' in script
    assert script.index("ct status dnat accept") < script.index("drop")
