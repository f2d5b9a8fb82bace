"""Daemon addresses (``unix://``, ``tcp://``, ``ssh://``) and the TLS settings towards them.

The leaf of the client's host handling: ``hosts`` (which daemon to use) and ``contexts``
(named endpoints) both build on it.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from servin.errors import InvalidArgument

DEFAULT_SOCKET = "/run/servin/servin.sock"
DEFAULT_HOST = f"unix://{DEFAULT_SOCKET}"


class HostAddress(NamedTuple):
    """A parsed daemon address."""

    url: str
    scheme: str  # unix, tcp, ssh
    path: str = ""  # unix: the socket; ssh: the remote socket
    host: str = ""
    port: int = 0
    user: str = ""


class TLSConfig(NamedTuple):
    """TLS towards a ``tcp://`` daemon: docker's ``--tls/--tlsverify/--tlscacert/...``.

    ``verify`` checks the daemon's certificate against ``ca`` (the system's CAs when empty);
    ``cert``/``key`` are the client certificate the daemon may require.
    """

    ca: str = ""
    cert: str = ""
    key: str = ""
    verify: bool = True

    def check(self) -> TLSConfig:
        """Raise InvalidArgument for a missing file or a cert without its key."""
        if bool(self.cert) != bool(self.key):
            raise InvalidArgument("--tlscert and --tlskey must be given together")
        for flag, path in (("--tlscacert", self.ca), ("--tlscert", self.cert),
                           ("--tlskey", self.key)):
            if path and not os.path.isfile(path):
                raise InvalidArgument(f"{flag} {path}: no such file")
        return self

    def to_dict(self) -> dict[str, object]:
        """The JSON form kept in a context."""
        return {"ca": self.ca, "cert": self.cert, "key": self.key, "verify": self.verify}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> TLSConfig:
        """The inverse of ``to_dict``."""
        return cls(
            ca=str(data.get("ca") or ""),
            cert=str(data.get("cert") or ""),
            key=str(data.get("key") or ""),
            verify=bool(data.get("verify", True)),
        )


def parse_host(url: str) -> HostAddress:
    """Parse ``unix:///path``, ``tcp://host:port`` or ``ssh://[user@]host[:port][/socket]``."""
    if url.startswith("/"):
        url = f"unix://{url}"
    if url.startswith("unix://") and not any(c in url for c in "?#"):
        # what urlsplit makes of it (netloc + path), without importing urllib (the CLI's
        # start-up budget: urllib.parse pulls ipaddress)
        path = url[len("unix://") :]
        if not path:
            raise InvalidArgument(f"invalid host {url!r}: unix:// needs a socket path")
        return HostAddress(url, "unix", path=path)
    from urllib.parse import urlsplit

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
