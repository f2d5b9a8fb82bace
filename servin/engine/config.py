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
    # Addresses of the Docker Engine API (unix:///path or tcp://host:port); None = the
    # default <exec_root>/docker.sock, () = no Docker API at all.
    docker_hosts: tuple[str, ...] | None = None
    socket_group: str = "servin"
    log_level: str = "info"
    log_format: str = "auto"  # auto (text on a terminal, JSON otherwise), text, json
    default_runtime: str = "native"
    runtimes: dict[str, str] = field(default_factory=dict)  # name -> binary path
    storage_driver: str = "auto"  # overlay where the kernel allows, else copy
    # The init `run --init` bind-mounts read-only as /sbin/docker-init (dockerd's init-path):
    # a static tini (Debian's tini package ships one).
    init_path: str = "/usr/bin/tini-static"
    # The most bytes of file content one image layer may unpack to (holes of sparse files
    # count at their length); a larger layer (a decompression bomb) is refused. 0: no cap.
    max_layer_size: int = 64 * 1024**3
    # Networking. Every host-global name is configurable so several daemons share a host.
    bridge_name: str = "servin0"  # the default network's Linux bridge
    default_network_subnet: str = "10.88.0.0/16"
    # User networks without --subnet get the next free /address_pool_size block of this pool.
    address_pool: str = "10.89.0.0/16"
    address_pool_size: int = 24
    # The daemon's nftables table; "" = "servin_" + a hash of --root (unique per daemon).
    firewall_table: str = ""
    registries: RegistryConfig = field(default_factory=RegistryConfig)
    # CNI, for pod networks (the CRI): the network configurations (the first valid file in
    # lexical order is the default network) and the plugin directories, searched in order
    # (upstream's /opt/cni/bin, then Debian's containernetworking-plugins).
    cni_conf_dir: Path = Path("/etc/cni/net.d")
    cni_bin_dirs: tuple[Path, ...] = (Path("/opt/cni/bin"), Path("/usr/lib/cni"))
    # A unix socket serving only the Kubernetes CRI (the CRI is on every servin.v1 socket
    # anyway): "" = none.
    cri_socket: str = ""
    # TLS for tcp:// hosts (dockerd's --tlscert/--tlskey; --tlscacert with --tlsverify
    # makes clients present a certificate signed by that CA).
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    tls_verify: bool = False
    # The CRI streaming server (exec, attach, port-forward URLs; docs/cri-streaming.md):
    # where it listens (port 0: any free port), HTTPS when both files are given, and the
    # URLs' scheme://host:port when clients reach it by another name ("" = from the address).
    streaming_address: str = "127.0.0.1"
    streaming_port: int = 10010
    streaming_tls_cert: str = ""
    streaming_tls_key: str = ""
    streaming_base_url: str = ""

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

    def effective_docker_hosts(self) -> tuple[str, ...]:
        """The Docker API's addresses: the configured ones, or ``<exec_root>/docker.sock``."""
        if self.docker_hosts is None:
            return (f"unix://{self.exec_root / 'docker.sock'}",)
        return self.docker_hosts


_PATH_KEYS = {"root", "exec_root", "cni_conf_dir"}
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
    if "cni_bin_dirs" in kwargs:
        dirs = kwargs["cni_bin_dirs"]
        if not isinstance(dirs, list) or not all(isinstance(d, str) and d for d in dirs):
            raise InvalidArgument(f"config {cfg_path}: cni_bin_dirs must be a list of paths")
        kwargs["cni_bin_dirs"] = tuple(Path(d) for d in dirs)
    for key in ("hosts", "docker_hosts"):
        if key in kwargs:
            if not isinstance(kwargs[key], list):
                raise InvalidArgument(f"config {cfg_path}: {key} must be a list of addresses")
            kwargs[key] = tuple(kwargs[key])
    try:
        config = DaemonConfig(**kwargs)
    except TypeError as exc:
        raise InvalidArgument(f"config {cfg_path}: {exc}") from exc

    clean = {k: v for k, v in (overrides or {}).items() if v not in (None, ())}
    for name in _PATH_KEYS & clean.keys():
        clean[name] = Path(clean[name]).absolute()
    for key in ("hosts", "docker_hosts"):
        if key in clean:
            clean[key] = tuple(clean[key])
    config = replace(config, **clean)
    _validate(config)
    return config


def _validate(config: DaemonConfig) -> None:
    if config.log_level.lower() not in _LOG_LEVELS:
        raise InvalidArgument(f"invalid log level {config.log_level!r}")
    if config.log_format not in _LOG_FORMATS:
        raise InvalidArgument(f"invalid log format {config.log_format!r} (auto, text or json)")
    for host in (*config.hosts, *(config.docker_hosts or ())):
        if not isinstance(host, str) or not (
                host.startswith("unix://") or host.startswith("tcp://")):
            raise InvalidArgument(
                f"invalid listen address {host!r}: use unix:///path or tcp://host:port"
            )
    if config.cri_socket and (not config.cri_socket.startswith("/")
                              or f"unix://{config.cri_socket}" in config.effective_hosts()):
        raise InvalidArgument(f"invalid cri_socket {config.cri_socket!r}: an absolute path "
                              "that is not a servin.v1 socket")
    overlap = set(config.effective_hosts()) & set(config.effective_docker_hosts())
    if overlap:
        raise InvalidArgument(
            f"{', '.join(sorted(overlap))} cannot serve both the servin API and the Docker API")
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
    _validate_streaming(config)
    if not isinstance(config.max_layer_size, int) or config.max_layer_size < 0:
        raise InvalidArgument("max_layer_size must be a number of bytes (0: no cap)")
    if config.root == config.exec_root:
        raise InvalidArgument("--root and --exec-root must differ")


def _validate_streaming(config: DaemonConfig) -> None:
    import ipaddress

    try:
        ipaddress.ip_address(config.streaming_address)
    except ValueError:
        raise InvalidArgument(
            f"invalid streaming_address {config.streaming_address!r}: an IP address") from None
    port = config.streaming_port
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise InvalidArgument(f"invalid streaming_port {port!r} (0-65535; 0: any free port)")
    if bool(config.streaming_tls_cert) != bool(config.streaming_tls_key):
        raise InvalidArgument("streaming_tls_cert and streaming_tls_key must be given together")
    for key in ("streaming_tls_cert", "streaming_tls_key"):
        value = getattr(config, key)
        if value and not Path(value).is_file():
            raise InvalidArgument(f"{key} {value}: no such file")
    base = config.streaming_base_url
    if base and not (base.startswith("http://") or base.startswith("https://")):
        raise InvalidArgument(f"invalid streaming_base_url {base!r}: http(s)://host:port")
