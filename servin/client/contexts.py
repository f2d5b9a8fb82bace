"""Named daemon endpoints (``servin context ...``), kept in one JSON file.

The file is ``$SERVIN_CONFIG/contexts.json`` (default ``~/.config/servin/contexts.json``),
mode 0600 since it names client keys, replaced atomically on every change:

    {"current": "prod", "contexts": {"prod": {"host": "ssh://root@prod", "description": "",
                                              "tls": null}}}

``default`` is built in (the default socket), cannot be changed or removed, and is the
current context when none was chosen.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servin.client.addresses import DEFAULT_HOST, TLSConfig, parse_host
from servin.errors import Conflict, InvalidArgument, NotFound

CONFIG_ENV = "SERVIN_CONFIG"
DEFAULT_NAME = "default"
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.+-]*$")


def config_dir() -> Path:
    """The CLI's configuration directory: ``$SERVIN_CONFIG``, else ``~/.config/servin``."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "servin"


@dataclass(frozen=True)
class Context:
    """One named endpoint."""

    name: str
    host: str
    description: str = ""
    tls: TLSConfig | None = None

    def to_dict(self, current: bool = False) -> dict[str, Any]:
        """The object ``context inspect`` and ``context ls --format json`` print."""
        return {
            "Name": self.name,
            "Description": self.description,
            "Current": current,
            "Endpoints": {
                "servin": {
                    "Host": self.host,
                    "TLS": self.tls is not None,
                    "SkipTLSVerify": bool(self.tls and not self.tls.verify),
                    "TLSMaterial": {
                        k: v for k, v in (self.tls.to_dict() if self.tls else {}).items()
                        if k in ("ca", "cert", "key") and v
                    },
                }
            },
        }


def check_name(name: str) -> str:
    """Raise InvalidArgument unless ``name`` is a valid context name."""
    if not _NAME_RE.match(name):
        raise InvalidArgument(
            f"context name {name!r} is invalid: use letters, digits and _.+- "
            "(starting with a letter or digit)"
        )
    return name


class ContextStore:
    """The contexts file: read on every call (it is small), written atomically."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or config_dir()
        self.path = self.directory / "contexts.json"

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"current": DEFAULT_NAME, "contexts": {}}
        except (OSError, ValueError) as exc:
            raise InvalidArgument(f"cannot read {self.path}: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("contexts", {}), dict):
            raise InvalidArgument(f"cannot read {self.path}: not a contexts file")
        data.setdefault("contexts", {})
        data.setdefault("current", DEFAULT_NAME)
        return data

    def _save(self, data: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".contexts-", dir=self.directory)
        try:
            with os.fdopen(fd, "w") as f:
                os.fchmod(f.fileno(), 0o600)
                json.dump(data, f, indent=2, sort_keys=True)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    @staticmethod
    def _context(name: str, raw: dict[str, Any]) -> Context:
        tls = raw.get("tls")
        return Context(
            name=name,
            host=str(raw.get("host", "")),
            description=str(raw.get("description", "")),
            tls=TLSConfig.from_dict(tls) if isinstance(tls, dict) else None,
        )

    def current(self) -> str:
        """The name of the current context (``default`` when none was chosen)."""
        return str(self._load().get("current") or DEFAULT_NAME)

    def list(self) -> list[Context]:
        """Every context, ``default`` first, then by name."""
        data = self._load()
        named = [self._context(n, raw) for n, raw in sorted(data["contexts"].items())]
        return [Context(DEFAULT_NAME, DEFAULT_HOST, "Local Servin daemon"), *named]

    def get(self, name: str) -> Context:
        """One context by name (NotFound if there is none)."""
        if name == DEFAULT_NAME:
            return Context(DEFAULT_NAME, DEFAULT_HOST, "Local Servin daemon")
        raw = self._load()["contexts"].get(name)
        if raw is None:
            raise NotFound(f"context {name!r} does not exist")
        return self._context(name, raw)

    def create(self, context: Context) -> None:
        """Add a new context (Conflict if the name is taken)."""
        check_name(context.name)
        _check_endpoint(context)
        data = self._load()
        if context.name == DEFAULT_NAME or context.name in data["contexts"]:
            raise Conflict(f"context {context.name!r} already exists")
        data["contexts"][context.name] = _raw(context)
        self._save(data)

    def update(self, context: Context) -> None:
        """Replace an existing context's settings."""
        if context.name == DEFAULT_NAME:
            raise InvalidArgument("the default context cannot be changed")
        _check_endpoint(context)
        data = self._load()
        if context.name not in data["contexts"]:
            raise NotFound(f"context {context.name!r} does not exist")
        data["contexts"][context.name] = _raw(context)
        self._save(data)

    def remove(self, name: str, force: bool = False) -> None:
        """Remove a context; the current one only with ``force`` (then default is current)."""
        if name == DEFAULT_NAME:
            raise InvalidArgument("the default context cannot be removed")
        data = self._load()
        if name not in data["contexts"]:
            raise NotFound(f"context {name!r} does not exist")
        if data.get("current") == name:
            if not force:
                raise Conflict(
                    f"context {name!r} is in use: switch with 'servin context use default' "
                    "or remove it with --force"
                )
            data["current"] = DEFAULT_NAME
        del data["contexts"][name]
        self._save(data)

    def use(self, name: str) -> None:
        """Make ``name`` the current context."""
        data = self._load()
        if name != DEFAULT_NAME and name not in data["contexts"]:
            raise NotFound(f"context {name!r} does not exist")
        data["current"] = name
        self._save(data)


def _raw(context: Context) -> dict[str, Any]:
    return {
        "host": context.host,
        "description": context.description,
        "tls": context.tls.to_dict() if context.tls else None,
    }


def _check_endpoint(context: Context) -> None:
    address = parse_host(context.host)
    if context.tls is not None:
        if address.scheme != "tcp":
            raise InvalidArgument(f"TLS applies to tcp:// hosts only, not {context.host}")
        context.tls.check()
