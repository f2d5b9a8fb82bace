"""CNI network configurations: loading a conf dir and deriving each plugin's request config.

The conf dir (``/etc/cni/net.d`` by default) holds network configuration lists
(``*.conflist``) and single plugin configurations (``*.conf``, ``*.json``), which are wrapped
into a list of one as libcni does. Files are read in lexical order and the first valid one is
the default network, as containerd and CRI-O choose it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servin.errors import InvalidArgument

CONF_EXTENSIONS = (".conflist", ".conf", ".json")
# The spec versions this caller speaks. Before 0.3.0 results had another shape (ip4/ip6).
SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
MAX_CONF_SIZE = 1 << 20

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_RESERVED_KEYS = ("runtimeConfig", "capabilities", "prevResult")


def version_key(version: str) -> tuple[int, int, int]:
    """A semantic version as a sortable tuple (``"0.3.1"`` -> ``(0, 3, 1)``)."""
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"invalid CNI version {version!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def at_least(version: str, minimum: str) -> bool:
    """Whether ``version`` is ``minimum`` or newer."""
    return version_key(version) >= version_key(minimum)


@dataclass(frozen=True, eq=False)
class NetworkConfigList:
    """One network: its name, the spec version to speak, and its plugins in order.

    ``versions`` are every version the configuration says it conforms to that this caller
    also speaks, newest first; ``cni_version`` is the newest. ``document`` is the
    configuration as loaded (kept with each attachment, so DEL uses the very configuration
    ADD used even if the file changed or went away).
    """

    name: str
    cni_version: str
    versions: tuple[str, ...]
    plugins: tuple[Mapping[str, Any], ...]
    disable_check: bool
    disable_gc: bool
    document: Mapping[str, Any]
    source: str = ""

    def with_version(self, version: str) -> NetworkConfigList:
        """The same network speaking ``version`` (one of ``versions``)."""
        return NetworkConfigList(self.name, version, self.versions, self.plugins,
                                 self.disable_check, self.disable_gc, self.document, self.source)

    def request(self, plugin: Mapping[str, Any], *, prev_result: Mapping[str, Any] | None,
                capability_args: Mapping[str, Any],
                extra: Mapping[str, Any] | None = None) -> bytes:
        """The request configuration of one plugin (spec section 3, "Deriving request
        configuration"): the plugin's object with the network's name and version, the
        runtime's capability arguments the plugin declared (``runtimeConfig``) and the
        previous result; unknown keys pass through unchanged. ``extra`` adds the runtime's
        own keys (GC's ``cni.dev/valid-attachments``)."""
        conf = {k: v for k, v in plugin.items()
                if k not in _RESERVED_KEYS and not k.startswith("cni.dev/")}
        conf["cniVersion"] = self.cni_version
        conf["name"] = self.name
        declared = plugin.get("capabilities") or {}
        runtime_config = {k: v for k, v in capability_args.items() if declared.get(k) is True}
        if runtime_config:
            conf["runtimeConfig"] = runtime_config
        if prev_result is not None:
            conf["prevResult"] = prev_result
        conf.update(extra or {})
        return json.dumps(conf).encode()


def _where(source: str) -> str:
    return f"CNI config {source}" if source else "CNI config"


def _bool(value: Any, key: str, source: str) -> bool:
    # Older libcni accepted "true"/"false" strings here; configurations in the wild use both.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidArgument(f"{_where(source)}: {key} must be true or false, not {value!r}")


def _select_versions(doc: Mapping[str, Any], source: str) -> tuple[str, ...]:
    declared = doc.get("cniVersion")
    if not isinstance(declared, str) or not declared:
        raise InvalidArgument(f"{_where(source)}: missing cniVersion")
    others = doc.get("cniVersions", [])
    if not isinstance(others, list) or not all(isinstance(v, str) for v in others):
        raise InvalidArgument(f"{_where(source)}: cniVersions must be a list of strings")
    candidates = {declared, *others}
    for version in candidates:
        try:
            version_key(version)
        except ValueError as exc:
            raise InvalidArgument(f"{_where(source)}: {exc}") from None
    usable = sorted(candidates & set(SUPPORTED_VERSIONS), key=version_key, reverse=True)
    if not usable:
        raise InvalidArgument(
            f"{_where(source)}: CNI version {declared} is not supported "
            f"(this runtime speaks {', '.join(SUPPORTED_VERSIONS)})"
        )
    return tuple(usable)


def parse_config_list(doc: Any, source: str = "") -> NetworkConfigList:
    """Validate a network configuration list (a decoded JSON object)."""
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{_where(source)}: not a JSON object")
    name = doc.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidArgument(
            f"{_where(source)}: invalid or missing network name {name!r} (letters, digits, "
            "'_', '.' and '-', starting with a letter or digit)"
        )
    versions = _select_versions(doc, source)
    plugins = doc.get("plugins")
    if not isinstance(plugins, list) or not plugins:
        raise InvalidArgument(f"{_where(source)}: network {name!r} has no plugins")
    for i, plugin in enumerate(plugins):
        if not isinstance(plugin, dict):
            raise InvalidArgument(f"{_where(source)}: plugins[{i}] is not a JSON object")
        kind = plugin.get("type")
        if not isinstance(kind, str) or not kind or "/" in kind or kind in (".", ".."):
            raise InvalidArgument(f"{_where(source)}: plugins[{i}] has no valid \"type\"")
        caps = plugin.get("capabilities", {})
        if not isinstance(caps, dict):
            raise InvalidArgument(f"{_where(source)}: plugins[{i}].capabilities is not an object")
    return NetworkConfigList(
        name=name,
        cni_version=versions[0],
        versions=versions,
        plugins=tuple(plugins),
        disable_check=_bool(doc.get("disableCheck", False), "disableCheck", source),
        disable_gc=_bool(doc.get("disableGC", False), "disableGC", source),
        document=doc,
        source=source,
    )


def parse_single_config(doc: Any, source: str = "") -> NetworkConfigList:
    """A single plugin configuration (``*.conf``) as a list of one, as libcni wraps it."""
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{_where(source)}: not a JSON object")
    if "plugins" in doc:
        raise InvalidArgument(f"{_where(source)}: a .conf file holds one plugin (use .conflist)")
    if not doc.get("type"):
        raise InvalidArgument(f"{_where(source)}: missing \"type\"")
    wrapped = {"cniVersion": doc.get("cniVersion"), "name": doc.get("name"), "plugins": [doc]}
    return parse_config_list(wrapped, source)


def load_file(path: Path) -> NetworkConfigList:
    """Load one configuration file. Raises InvalidArgument naming the file and the problem."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONF_SIZE + 1)
    except OSError as exc:
        raise InvalidArgument(f"CNI config {path}: {exc.strerror}") from None
    if len(data) > MAX_CONF_SIZE:
        raise InvalidArgument(f"CNI config {path}: larger than {MAX_CONF_SIZE} bytes")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"CNI config {path}: invalid JSON: {exc}") from None
    if path.suffix == ".conflist":
        return parse_config_list(doc, str(path))
    return parse_single_config(doc, str(path))


def config_files(conf_dir: Path) -> list[Path]:
    """The configuration files of ``conf_dir`` in lexical order (none if it does not exist)."""
    try:
        entries = list(conf_dir.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted((p for p in entries if p.suffix in CONF_EXTENSIONS and p.is_file()),
                  key=lambda p: p.name)


def load_dir(conf_dir: Path) -> tuple[list[NetworkConfigList], list[str]]:
    """Every valid network in ``conf_dir`` (lexical order) and one line per invalid file."""
    valid: list[NetworkConfigList] = []
    problems: list[str] = []
    for path in config_files(conf_dir):
        try:
            valid.append(load_file(path))
        except InvalidArgument as exc:
            problems.append(exc.message)
    return valid, problems
