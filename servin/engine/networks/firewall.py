"""NAT, isolation and published ports in one nftables table owned by this daemon.

The whole table is rendered from the engine's state and replaced in one atomic ``nft -f``
transaction (create-if-missing, delete, create), so there is never a half-applied ruleset,
and removing the table removes every rule Servin ever made. Each daemon has its own table
name, so several daemons on one host never touch each other's rules.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass

from servin.errors import Unavailable

NFT_TIMEOUT = 10


@dataclass(frozen=True)
class BridgeRules:
    """What the firewall needs to know about one bridge network."""

    bridge: str
    subnet: str
    internal: bool


@dataclass(frozen=True)
class PortRule:
    """One published port: host side (``host_ip`` '' = every local address) to container."""

    protocol: str  # tcp or udp
    host_ip: str
    host_port: int
    container_ip: str
    container_port: int


def _q(name: str) -> str:
    return json.dumps(name)  # nft takes double-quoted interface names


def render(table: str, bridges: list[BridgeRules], ports: list[PortRule]) -> str:
    """The nft script that (re)creates the table with exactly these rules."""
    lines = [f"table ip {table} {{}}", f"delete table ip {table}", f"table ip {table} {{"]
    lines.append("  chain ports {")
    for p in ports:
        match = f"ip daddr {p.host_ip} " if p.host_ip and p.host_ip != "0.0.0.0" else ""
        lines.append(
            f"    {match}{p.protocol} dport {p.host_port} "
            f"dnat to {p.container_ip}:{p.container_port}"
        )
    lines.append("  }")
    for chain, hook in (("prerouting", "prerouting"), ("output", "output")):
        lines += [
            f"  chain {chain} {{",
            f"    type nat hook {hook} priority -100; policy accept;",
            "    fib daddr type local jump ports",
            "  }",
        ]
    lines += ["  chain postrouting {", "    type nat hook postrouting priority 100; policy accept;"]
    subnets = ", ".join(b.subnet for b in bridges)
    for b in bridges:
        if not b.internal:
            lines.append(f"    ip saddr {b.subnet} oifname != {_q(b.bridge)} masquerade")
        # Published on 127.0.0.1 (route_localnet) and container-to-published-port traffic:
        # the container must answer through the host, so the source becomes the gateway.
        lines.append(f"    oifname {_q(b.bridge)} ip saddr 127.0.0.0/8 masquerade")
        if subnets:
            lines.append(
                f"    oifname {_q(b.bridge)} ct status dnat ip saddr {{ {subnets} }} masquerade"
            )
    lines += ["  }", "  chain forward {", "    type filter hook forward priority 0; policy accept;",
              # Published ports are reachable from every network (and from outside).
              "    ct status dnat accept"]
    names = [b.bridge for b in bridges]
    for b in bridges:
        others = [n for n in names if n != b.bridge]
        if b.internal:
            lines.append(f"    iifname {_q(b.bridge)} oifname != {_q(b.bridge)} drop")
            lines.append(f"    oifname {_q(b.bridge)} iifname != {_q(b.bridge)} drop")
        elif others:
            # Different networks do not reach each other (published ports still do, DNAT-ed).
            lines.append(
                f"    iifname {_q(b.bridge)} oifname {{ {', '.join(_q(o) for o in others)} }} drop"
            )
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def _nft(script: str) -> None:
    binary = shutil.which("nft")
    if binary is None:
        raise Unavailable("nft (nftables) is not installed: it is needed for container networking")
    proc = subprocess.run([binary, "-f", "-"], input=script.encode(), capture_output=True,
                          timeout=NFT_TIMEOUT)
    if proc.returncode != 0:
        raise Unavailable(f"nft failed: {proc.stderr.decode(errors='replace').strip()}")


def apply(table: str, bridges: list[BridgeRules], ports: list[PortRule]) -> None:
    """Replace the daemon's table with these rules, atomically."""
    _nft(render(table, bridges, ports))


def remove(table: str) -> None:
    """Delete the daemon's table (and so every rule it holds), if it exists."""
    _nft(f"table ip {table} {{}}\ndelete table ip {table}\n")


def ruleset(table: str) -> str:
    """The table as nft lists it ('' if it does not exist)."""
    binary = shutil.which("nft") or "nft"
    proc = subprocess.run([binary, "list", "table", "ip", table], capture_output=True,
                          timeout=NFT_TIMEOUT)
    return proc.stdout.decode() if proc.returncode == 0 else ""
