"""The daemon's configuration: /etc/servin/config.toml overlaid by command-line flags."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from servin.errors import InvalidArgument

DEFAULT_CONFIG_PATH = Path("/etc/servin/config.toml")
DEFAULT_ROOT = Path("/var/lib/servin")
DEFAULT_EXEC_ROOT = Path("/run/servin")


@dataclass(frozen=True)
class RegistryConfig:
    """How to reach registries: mirrors, insecure hosts, the certs directory."""

    mirrors: dict[str, list[str]] = field(default_factory=dict)
    insecure: list[str] = field(default_factory=list)
    certs_dir: Path = Path("/etc/servin/certs.d")


@dataclass(frozen=True)
class DaemonConfig:
    """Everything the daemon needs to know at start. Every path is configurable."""

    root: Path = DEFAULT_ROOT
    exec_root: Path = DEFAULT_EXEC_ROOT
    # Addresses to serve servin.v1 (and CRI) on: unix:///path or tcp://host:port.
    hosts: tuple[str, ...] = ()
    # Address of the Docker Engine API endpoint; "" disables it.
    docker_host: str = ""
    socket_group: str = "servin"
    log_level: str = "info"
    log_format: str = "auto"  # auto (text on a terminal, JSON otherwise), text, json
    default_runtime: str = "native"
    runtimes: dict[str, str] = field(default_factory=dict)  # name -> binary path
    storage_driver: str = "auto"  # overlay where the kernel allows, else copy
    # The init `run --init` bind-mounts read-only as /sbin/docker-init (dockerd's init-path):
    # a static tini (Debian's tini package ships one).
    init_path: str = "/usr/bin/tini-static"
    # Networking. Every host-global name is configurable so several daemons share a host.
    bridge_name: str = "servin0"  # the default network's Linux bridge
    default_network_subnet: str = "10.88.0.0/16"
    # User networks without --subnet get the next free /address_pool_size block of this pool.
    address_pool: str = "10.89.0.0/16"
    address_pool_size: int = 24
    # The daemon's nftables table; "" = "servin_" + a hash of --root (unique per daemon).
    firewall_table: str = ""
    registries: RegistryConfig = field(default_factory=RegistryConfig)
    # TLS for tcp:// hosts (dockerd's --tlscert/--tlskey; --tlscacert with --tlsverify
    # makes clients present a certificate signed by that CA).
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    tls_verify: bool = False

    @property
    def main_socket(self) -> Path:
        """The unix socket path of the first unix host, or the default under exec_root."""
        for host in self.hosts:
            if host.startswith("unix://"):
                return Path(host[len("unix://") :])
        return self.exec_root / "servin.sock"

    def effective_hosts(self) -> tuple[str, ...]:
        """The hosts to listen on: the configured ones, or the default socket."""
        return self.hosts or (f"unix://{self.exec_root / 'servin.sock'}",)


_PATH_KEYS = {"root", "exec_root"}
_LOG_LEVELS = {"debug", "info", "warning", "error", "critical"}
_LOG_FORMATS = {"auto", "text", "json"}


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> DaemonConfig:
    """Read the TOML file (missing default file = defaults) and apply non-None overrides.

    Raises InvalidArgument with the file and key on any bad value.
    """
    data: dict[str, Any] = {}
    explicit = path is not None
    cfg_path = path or DEFAULT_CONFIG_PATH
    if cfg_path.exists():
        try:
            data = tomllib.loads(cfg_path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"config {cfg_path}: {exc}") from exc
    elif explicit:
        raise InvalidArgument(f"config file {cfg_path} does not exist")

    known = {f.name for f in fields(DaemonConfig)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in known:
            raise InvalidArgument(f"config {cfg_path}: unknown key {key!r}")
        kwargs[name] = value
    if "registries" in kwargs:
        reg = kwargs["registries"]
        if not isinstance(reg, dict):
            raise InvalidArgument(f"config {cfg_path}: [registries] must be a table")
        kwargs["registries"] = RegistryConfig(
            mirrors={k: list(v) for k, v in reg.get("mirrors", {}).items()},
            insecure=list(reg.get("insecure", [])),
            certs_dir=Path(reg.get("certs_dir", "/etc/servin/certs.d")),
        )
    for name in _PATH_KEYS & kwargs.keys():
        kwargs[name] = Path(kwargs[name])
    if "hosts" in kwargs:
        kwargs["hosts"] = tuple(kwargs["hosts"])
    try:
        config = DaemonConfig(**kwargs)
    except TypeError as exc:
        raise InvalidArgument(f"config {cfg_path}: {exc}") from exc

    clean = {k: v for k, v in (overrides or {}).items() if v not in (None, ())}
    for name in _PATH_KEYS & clean.keys():
        clean[name] = Path(clean[name]).absolute()
    if "hosts" in clean:
        clean["hosts"] = tuple(clean["hosts"])
    config = replace(config, **clean)
    _validate(config)
    return config


def _validate(config: DaemonConfig) -> None:
    if config.log_level.lower() not in _LOG_LEVELS:
        raise InvalidArgument(f"invalid log level {config.log_level!r}")
    if config.log_format not in _LOG_FORMATS:
        raise InvalidArgument(f"invalid log format {config.log_format!r} (auto, text or json)")
    for host in (*config.hosts, *([config.docker_host] if config.docker_host else [])):
        if not (host.startswith("unix://") or host.startswith("tcp://")):
            raise InvalidArgument(
                f"invalid listen address {host!r}: use unix:///path or tcp://host:port"
            )
    if not 0 < len(config.bridge_name) <= 15 or not config.bridge_name.isprintable() or any(
        ch in config.bridge_name for ch in " /:"
    ):
        raise InvalidArgument(f"invalid bridge name {config.bridge_name!r} (1-15 characters)")
    import ipaddress

    for what, value in (("default network subnet", config.default_network_subnet),
                        ("address pool", config.address_pool)):
        try:
            ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise InvalidArgument(f"invalid {what} {value!r}: {exc}") from None
    if not 8 <= config.address_pool_size <= 30:
        raise InvalidArgument("address_pool_size must be between 8 and 30")
    if config.firewall_table and not config.firewall_table.replace("_", "").isalnum():
        raise InvalidArgument(f"invalid firewall table name {config.firewall_table!r}")
    if bool(config.tls_cert) != bool(config.tls_key):
        raise InvalidArgument("--tlscert and --tlskey must be given together")
    if config.tls_verify and not config.tls_ca:
        raise InvalidArgument("--tlsverify needs --tlscacert (the CA client certificates use)")
    for key in ("tls_cert", "tls_key", "tls_ca"):
        value = getattr(config, key)
        if value and not Path(value).is_file():
            raise InvalidArgument(f"{key.replace('_', '')} {value}: no such file")
    if config.tls_verify and not config.tls_cert:
        raise InvalidArgument("--tlsverify needs --tlscert and --tlskey (the daemon's own)")
    if config.root == config.exec_root:
        raise InvalidArgument("--root and --exec-root must differ")
