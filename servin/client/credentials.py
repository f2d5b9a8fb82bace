"""Registry credentials stored for the user, as docker's ``config.json`` stores them.

The file is ``$SERVIN_CONFIG/auth.json`` (default ``~/.config/servin/auth.json``), mode 0600,
``{"auths": {"HOST": {"auth": base64("user:password")}}}`` (``identitytoken`` when the
registry handed out a refresh token). The daemon never keeps credentials: the client sends
them with each pull and push that needs them.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servin.errors import InvalidArgument

CONFIG_ENV = "SERVIN_CONFIG"
FILE_NAME = "auth.json"
DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"", "docker.io", "index.docker.io", "registry-1.docker.io",
                "https://index.docker.io/v1/"}


@dataclass(frozen=True)
class StoredAuth:
    """One registry's stored credentials."""

    username: str = ""
    password: str = ""
    identity_token: str = ""


def config_dir() -> Path:
    """Where the client's settings live."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "servin"


def auth_path() -> Path:
    """The credentials file."""
    return config_dir() / FILE_NAME


def server_key(server: str) -> str:
    """The key a registry is stored under: its host[:port] (docker.io for Docker Hub)."""
    text = server.strip()
    if text in _HUB_ALIASES:
        return DOCKER_HUB
    for prefix in ("https://", "http://"):
        text = text.removeprefix(prefix)
    host = text.split("/", 1)[0]
    return DOCKER_HUB if host in _HUB_ALIASES else host


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidArgument(f"{path}: not a JSON object")
    return data


def _save(path: Path, data: dict[str, Any]) -> None:
    """Write the file atomically, created 0600 (it holds secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def get(server: str) -> StoredAuth:
    """The stored credentials for ``server`` (empty when there are none)."""
    entry = (_load(auth_path()).get("auths") or {}).get(server_key(server)) or {}
    user = password = ""
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"{auth_path()}: bad auth entry for {server}") from exc
    return StoredAuth(user, password, str(entry.get("identitytoken") or ""))


def store(server: str, username: str, password: str, identity_token: str = "") -> Path:
    """Remember credentials for ``server``; return the file written."""
    path = auth_path()
    data = _load(path)
    auths = data.setdefault("auths", {})
    entry: dict[str, str] = {}
    if identity_token:
        entry["auth"] = base64.b64encode(f"{username}:".encode()).decode()
        entry["identitytoken"] = identity_token
    else:
        entry["auth"] = base64.b64encode(f"{username}:{password}".encode()).decode()
    auths[server_key(server)] = entry
    _save(path, data)
    return path


def remove(server: str) -> bool:
    """Forget the credentials for ``server``; return whether there were any."""
    path = auth_path()
    data = _load(path)
    auths = data.get("auths") or {}
    if auths.pop(server_key(server), None) is None:
        return False
    _save(path, data)
    return True
