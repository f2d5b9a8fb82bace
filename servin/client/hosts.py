"""Which daemon to talk to, and how its address is spelled."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
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


CONTEXT_ENV = "SERVIN_CONTEXT"


def contexts_path() -> Path:
    """Where named contexts live: $XDG_CONFIG_HOME/servin/contexts.json (~/.config/...)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "servin" / "contexts.json"


def _load_contexts(path: Path) -> tuple[dict[str, str], str]:
    """(name -> host URL, current context name) from the contexts file; empty when absent.

    Reads ``{"current": NAME, "contexts": {NAME: {"host": URL, ...}}}``; a list of
    ``{"name": NAME, "host": URL}`` objects is accepted for ``contexts`` too.
    """
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return {}, ""
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"cannot read {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{path}: expected a JSON object")
    raw = doc.get("contexts") or {}
    items = raw.items() if isinstance(raw, dict) else ((c.get("name"), c) for c in raw)
    hosts: dict[str, str] = {}
    for name, entry in items:
        url = entry.get("host") if isinstance(entry, dict) else entry
        if isinstance(name, str) and isinstance(url, str) and url:
            hosts[name] = url
    current = doc.get("current") or doc.get("current_context") or ""
    return hosts, current if isinstance(current, str) else ""


def resolve_target(host: str | None = None, context: str | None = None) -> tuple[str, str]:
    """The daemon address and the context it came from (``""`` when none), in order of
    precedence: ``host`` (-H/--host), ``context`` (--context), $SERVIN_HOST,
    $SERVIN_CONTEXT, the contexts file's current context, the default socket.

    A named context that does not exist is an InvalidArgument (no silent fallback).
    """
    if host:
        return host, ""
    if context:
        return _context_host(context), context
    if os.environ.get(HOST_ENV):
        return os.environ[HOST_ENV], ""
    if os.environ.get(CONTEXT_ENV):
        name = os.environ[CONTEXT_ENV]
        return _context_host(name), name
    hosts, current = _load_contexts(contexts_path())
    if current and current != "default" and current in hosts:
        return hosts[current], current
    return DEFAULT_HOST, ""


def _context_host(name: str) -> str:
    if name == "default":
        return DEFAULT_HOST
    path = contexts_path()
    hosts, _ = _load_contexts(path)
    if name not in hosts:
        known = ", ".join(["default", *sorted(hosts)])
        raise InvalidArgument(f"no context {name!r} (known: {known}; see {path})")
    return hosts[name]
