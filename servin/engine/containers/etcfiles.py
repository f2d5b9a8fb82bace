"""The per-container /etc/hostname, /etc/hosts and /etc/resolv.conf."""

from __future__ import annotations

import os
import re
from pathlib import Path

from servin.engine.containers.model import ContainerPaths, HostConfig
from servin.errors import InvalidArgument

HOST_RESOLV_CONF = Path("/etc/resolv.conf")
_LOOPBACK_NS = re.compile(r"^\s*nameserver\s+(127\.\S+|::1)\s*$", re.M)

HOSTS_BASE = """\
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def resolv_conf(settings: HostConfig, host_network: bool,
                embedded_dns: str = "") -> str:
    """The container's resolv.conf: --dns/--dns-search/--dns-option, else the host's.

    On a user-defined network the only nameserver is the network's embedded DNS
    (``embedded_dns``), which forwards what it does not know to --dns or the host's servers.
    """
    try:
        host = HOST_RESOLV_CONF.read_text()
    except OSError:
        host = ""
    if embedded_dns:
        lines = [f"nameserver {embedded_dns}"]
        search = list(settings.dns_search) or [
            word for line in host.splitlines() if line.strip().startswith("search")
            for word in line.split()[1:]
        ]
        if search:
            lines.append("search " + " ".join(search))
        if settings.dns_options:
            lines.append("options " + " ".join(settings.dns_options))
        return "\n".join(lines) + "\n"
    if not settings.dns and not settings.dns_search and not settings.dns_options:
        if host_network:
            return host
        # A loopback resolver of the host cannot be reached from the container's netns.
        return _LOOPBACK_NS.sub("", host).strip() + "\n"
    lines = [f"nameserver {ns}" for ns in settings.dns]
    if not settings.dns:
        lines += [
            line
            for line in host.splitlines()
            if line.strip().startswith("nameserver") and not _LOOPBACK_NS.match(line)
        ]
    if settings.dns_search:
        lines.append("search " + " ".join(settings.dns_search))
    if settings.dns_options:
        lines.append("options " + " ".join(settings.dns_options))
    return "\n".join(lines) + "\n"


def hosts_file(settings: HostConfig, hostname: str, address: str = "") -> str:
    """/etc/hosts: localhost entries, --add-host entries, and the container's own name.

    The name maps to the container's address on its first network (127.0.1.1 without one).
    """
    lines = [HOSTS_BASE.rstrip("\n")]
    for entry in settings.extra_hosts:
        name, sep, ip = entry.partition(":")
        if not sep or not name or not ip:
            raise InvalidArgument(f"invalid --add-host {entry!r}: expected host:ip")
        lines.append(f"{ip}\t{name}")
    lines.append(f"{address or '127.0.1.1'}\t{hostname}")
    return "\n".join(lines) + "\n"


def write_etc_files(
    paths: ContainerPaths, settings: HostConfig, hostname: str, *,
    host_network: bool, address: str = "", embedded_dns: str = "",
) -> None:
    """Write the three files into the container's directory."""
    files = paths.etc_files
    _write(files["/etc/hostname"], hostname + "\n")
    _write(files["/etc/hosts"], hosts_file(settings, hostname, address))
    _write(files["/etc/resolv.conf"], resolv_conf(settings, host_network, embedded_dns))
