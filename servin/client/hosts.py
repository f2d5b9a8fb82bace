"""Which daemon to talk to, and how its address is spelled."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from servin.errors import InvalidArgument

DEFAULT_SOCKET = "/run/servin/servin.sock"
DEFAULT_HOST = f"unix://{DEFAULT_SOCKET}"
HOST_ENV = "SERVIN_HOST"


@dataclass(frozen=True)
class HostAddress:
    """A parsed daemon address."""

    url: str
    scheme: str  # unix, tcp, ssh
    path: str = ""  # unix: the socket; ssh: the remote socket
    host: str = ""
    port: int = 0
    user: str = ""


def resolve_host(flag: str | None = None) -> str:
    """The address to use: the -H flag, else $SERVIN_HOST, else the default socket."""
    return flag or os.environ.get(HOST_ENV) or DEFAULT_HOST


def parse_host(url: str) -> HostAddress:
    """Parse ``unix:///path``, ``tcp://host:port`` or ``ssh://[user@]host[:port][/socket]``."""
    if url.startswith("/"):
        url = f"unix://{url}"
    parts = urlsplit(url)
    if parts.scheme == "unix":
        path = parts.netloc + parts.path if parts.netloc else parts.path
        if not path:
            raise InvalidArgument(f"invalid host {url!r}: unix:// needs a socket path")
        return HostAddress(url, "unix", path=path)
    if parts.scheme in ("tcp", "ssh"):
        try:
            port = parts.port or 0
        except ValueError:
            raise InvalidArgument(f"invalid host {url!r}: bad port") from None
        if not parts.hostname:
            raise InvalidArgument(f"invalid host {url!r}: no host name")
        if parts.scheme == "tcp":
            if not port:
                raise InvalidArgument(f"invalid host {url!r}: tcp:// needs a port")
            return HostAddress(url, "tcp", host=parts.hostname, port=port)
        return HostAddress(
            url,
            "ssh",
            path=parts.path or DEFAULT_SOCKET,
            host=parts.hostname,
            port=port,
            user=parts.username or "",
        )
    raise InvalidArgument(f"invalid host {url!r}: use unix://, tcp:// or ssh://")
