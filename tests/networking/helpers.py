"""What networking tests look at on the host: links, netns, the daemon's nftables table."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.daemon import DaemonProcess

HTTPD = "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && httpd -f -p 80 -h /www"


def table_name(d: DaemonProcess) -> str:
    """The daemon's nftables table (derived from its root, as the daemon does)."""
    return "servin_" + hashlib.sha256(str(d.root).encode()).hexdigest()[:8]


def ruleset(d: DaemonProcess) -> str:
    """The daemon's table as nft lists it ('' when absent)."""
    proc = subprocess.run(["nft", "list", "table", "ip", table_name(d)], capture_output=True,
                          text=True)
    return proc.stdout if proc.returncode == 0 else ""


def host_links() -> set[str]:
    """Names of the host's network links."""
    return {p.name for p in Path("/sys/class/net").iterdir()}


def veth_names(container_ids: list[str], network_ids: list[str]) -> set[str]:
    """The host-side veths these containers have (or had) on these networks.

    (Other daemons on the host, e.g. parallel tests, make links of their own: tests look for
    their own links by name rather than compare the host's whole list.)
    """
    return {
        "sv" + hashlib.sha256(f"{c}/{n}".encode()).hexdigest()[:10]
        for c in container_ids for n in network_ids
    }


def network_id(d: DaemonProcess, name: str) -> str:
    """A network's full ID."""
    return json.loads(d.cli("network", "inspect", name, check=True).stdout)[0]["Id"]


def netns_list(d: DaemonProcess) -> list[str]:
    """The network namespace files bind-mounted below the daemon's own directories.

    (The host's other namespaces and mounts belong to other daemons and tests running at the
    same time: they come and go.)
    """
    base = str(d.base)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[fields.index("-") + 1] == "nsfs" and fields[4].startswith(f"{base}/"):
            points.append(fields[4])
    return sorted(points)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A host port nothing is bound to right now."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(url: str, timeout: float = 15.0) -> str:
    """GET a page, retrying while the server in the container comes up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as reply:
                return reply.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def inspect(d: DaemonProcess, name: str) -> dict:
    """A container's inspect object."""
    return json.loads(d.cli("inspect", name, check=True).stdout)[0]
