"""Reading an OCI bundle's config.json into the plan the native runtime executes.

Everything that can be checked without touching the system is checked here, in the caller,
before any process is forked: a malformed config then fails with one ``InvalidArgument``
naming the field, and nothing has to be undone.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servin.engine.linux import capabilities, rlimits
from servin.engine.linux.devices import DeviceNode
from servin.engine.linux.mount import PROPAGATION_OPTIONS, MountOptions, parse_options
from servin.engine.linux.namespaces import OCI_NAMESPACES
from servin.errors import InvalidArgument, NotFound

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Namespaces the native runtime can create or join. User and time namespaces are not
# supported (yet): refusing them is better than silently running without them.
SUPPORTED_NAMESPACES = ("mount", "pid", "uts", "ipc", "network", "cgroup")

# sysctls that belong to a namespace, and which namespace each needs.
_IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                          "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                          "kernel.shm_rmid_forced"})
_UTS_SYSCTLS = frozenset({"kernel.hostname", "kernel.domainname"})


@dataclass(frozen=True)
class Namespace:
    """One ``linux.namespaces`` entry: create a new one (path None) or join ``path``."""

    type: str
    flag: int
    path: str | None


@dataclass(frozen=True)
class Mount:
    """One ``mounts`` entry, options already parsed."""

    destination: str
    type: str
    source: str
    options: MountOptions
    raw_options: tuple[str, ...]


@dataclass(frozen=True)
class Capabilities:
    """The five capability sets of ``process.capabilities`` as masks."""

    bounding: int
    effective: int
    permitted: int
    inheritable: int
    ambient: int


@dataclass(frozen=True)
class Rlimit:
    """One ``process.rlimits`` entry."""

    type: str
    soft: int
    hard: int


@dataclass(frozen=True)
class Process:
    """``process``: what the container runs and with which identity and limits."""

    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    terminal: bool
    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    umask: int
    capabilities: Capabilities | None
    rlimits: tuple[Rlimit, ...]
    no_new_privileges: bool
    oom_score_adj: int | None
    console_size: tuple[int, int] | None = None  # (height, width) of the terminal

    @property
    def path_env(self) -> str:
        """The PATH the executable is looked up in (the container's, not the caller's)."""
        for item in self.env:
            if item.startswith("PATH="):
                return item[5:]
        return DEFAULT_PATH


@dataclass(frozen=True)
class ContainerSpec:
    """The whole plan for one container."""

    bundle: Path
    root_path: Path
    root_readonly: bool
    hostname: str | None
    domainname: str | None
    process: Process
    mounts: tuple[Mount, ...]
    namespaces: tuple[Namespace, ...]
    masked_paths: tuple[str, ...]
    readonly_paths: tuple[str, ...]
    sysctl: dict[str, str]
    rootfs_propagation: int | None
    cgroups_path: str | None
    resources: dict[str, Any] | None
    seccomp: dict[str, Any] | None
    devices: tuple[DeviceNode, ...]
    annotations: dict[str, str] = field(default_factory=dict)

    def namespace(self, kind: str) -> Namespace | None:
        """The entry for namespace ``kind``, or None when the container shares the host's."""
        for ns in self.namespaces:
            if ns.type == kind:
                return ns
        return None


def load_spec(bundle: Path) -> ContainerSpec:
    """Read and check ``bundle/config.json``."""
    path = bundle / "config.json"
    try:
        with open(path, "rb") as file:
            raw = json.load(file)
    except FileNotFoundError:
        raise NotFound(f"bundle {bundle}: no config.json") from None
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"bundle {bundle}: cannot read config.json: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidArgument(f"{path}: not a JSON object")
    return parse_spec(raw, bundle)


def parse_spec(raw: dict[str, Any], bundle: Path) -> ContainerSpec:
    """Check an OCI config object and turn it into a :class:`ContainerSpec`."""
    root = _obj(raw, "root", required=True)
    root_path = Path(_str(root, "path", "root.path", required=True))
    if not root_path.is_absolute():
        root_path = bundle / root_path
    if not root_path.is_dir():
        raise NotFound(f"root.path {root_path}: not a directory")
    linux = _obj(raw, "linux")
    namespaces = _namespaces(linux)
    kinds = {ns.type for ns in namespaces}
    hostname = raw.get("hostname") or None
    domainname = raw.get("domainname") or None
    if (hostname or domainname) and "uts" not in kinds:
        raise InvalidArgument("hostname/domainname need a uts namespace")
    sysctl = {str(k): str(v) for k, v in (linux.get("sysctl") or {}).items()}
    _check_sysctls(sysctl, kinds)
    propagation = linux.get("rootfsPropagation") or None
    if propagation is not None and propagation not in PROPAGATION_OPTIONS:
        raise InvalidArgument(f"linux.rootfsPropagation {propagation!r} is not valid")
    return ContainerSpec(
        bundle=bundle,
        root_path=root_path,
        root_readonly=bool(root.get("readonly", False)),
        hostname=hostname,
        domainname=domainname,
        process=_process(_obj(raw, "process", required=True)),
        mounts=tuple(_mount(m, i, bundle) for i, m in enumerate(raw.get("mounts") or [])),
        namespaces=namespaces,
        masked_paths=tuple(_abs_paths(linux.get("maskedPaths"), "linux.maskedPaths")),
        readonly_paths=tuple(_abs_paths(linux.get("readonlyPaths"), "linux.readonlyPaths")),
        sysctl=sysctl,
        rootfs_propagation=PROPAGATION_OPTIONS[propagation] if propagation else None,
        cgroups_path=linux.get("cgroupsPath") or None,
        resources=linux.get("resources") or None,
        seccomp=linux.get("seccomp") or None,
        devices=tuple(_device(d, i) for i, d in enumerate(linux.get("devices") or [])),
        annotations=dict(raw.get("annotations") or {}),
    )


def _obj(parent: dict[str, Any], key: str, *, required: bool = False) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        if required:
            raise InvalidArgument(f"config.json: {key} is required")
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"config.json: {key} must be an object")
    return value


def _str(parent: dict[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = parent.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise InvalidArgument(f"config.json: {where} must be a non-empty string")
    return value


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"config.json: {where} must be an integer")
    return value


def _id(value: Any, where: str) -> int:
    number = _int(value, where)
    # (uid_t)-1 means "unchanged" to the kernel's set*id calls: never a real id.
    if not 0 <= number < 2**32 - 1:
        raise InvalidArgument(f"config.json: {where} {number} is not a valid id")
    return number


def _namespaces(linux: dict[str, Any]) -> tuple[Namespace, ...]:
    result: list[Namespace] = []
    seen: set[str] = set()
    for index, entry in enumerate(linux.get("namespaces") or []):
        kind = entry.get("type") if isinstance(entry, dict) else None
        where = f"linux.namespaces[{index}]"
        if kind not in OCI_NAMESPACES:
            raise InvalidArgument(f"config.json: {where}.type {kind!r} is not a namespace type")
        if kind not in SUPPORTED_NAMESPACES:
            raise InvalidArgument(f"{kind} namespaces are not supported by the native runtime")
        if kind in seen:
            raise InvalidArgument(f"config.json: namespace {kind} is listed twice")
        seen.add(kind)
        path = entry.get("path") or None
        if path is not None and not os.path.isabs(path):
            raise InvalidArgument(f"config.json: {where}.path must be absolute")
        result.append(Namespace(kind, OCI_NAMESPACES[kind], path))
    mount_ns = next((ns for ns in result if ns.type == "mount"), None)
    if mount_ns is None or mount_ns.path is not None:
        # The rootfs, pivot_root and every mount need a mount namespace of the container's own.
        raise InvalidArgument("the native runtime needs a new mount namespace (no path)")
    return tuple(result)


def _check_sysctls(sysctl: dict[str, str], kinds: set[str]) -> None:
    for key in sysctl:
        if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
            needed = "ipc"
        elif key.startswith("net."):
            needed = "network"
        elif key in _UTS_SYSCTLS:
            needed = "uts"
        else:
            raise InvalidArgument(f"sysctl {key} is not namespaced: it would change the host")
        if needed not in kinds:
            raise InvalidArgument(f"sysctl {key} needs a {needed} namespace of the container's")


def parse_process(raw: dict[str, Any]) -> Process:
    """Check an OCI ``process`` object (an exec's, or config.json's) into a :class:`Process`."""
    if not isinstance(raw, dict):
        raise InvalidArgument("process must be a JSON object")
    return _process(raw)


def _process(raw: dict[str, Any]) -> Process:
    args = raw.get("args")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        raise InvalidArgument("config.json: process.args must be a non-empty list of strings")
    env = raw.get("env") or []
    if not all(isinstance(e, str) for e in env):
        raise InvalidArgument("config.json: process.env must be a list of strings")
    cwd = raw.get("cwd") or "/"
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        raise InvalidArgument(f"config.json: process.cwd {cwd!r} must be an absolute path")
    user = raw.get("user") or {}
    umask = user.get("umask")
    rlimit_list = []
    for index, item in enumerate(raw.get("rlimits") or []):
        name = str(item.get("type", ""))
        try:
            rlimits.rlimit_number(name)
        except ValueError as exc:
            raise InvalidArgument(f"config.json: process.rlimits[{index}]: {exc}") from None
        rlimit_list.append(Rlimit(name, _int(item.get("soft"), f"rlimits[{index}].soft"),
                                  _int(item.get("hard"), f"rlimits[{index}].hard")))
    oom = raw.get("oomScoreAdj")
    return Process(
        args=tuple(args),
        env=tuple(env),
        cwd=cwd,
        terminal=bool(raw.get("terminal", False)),
        uid=_id(user.get("uid", 0), "process.user.uid"),
        gid=_id(user.get("gid", 0), "process.user.gid"),
        additional_gids=tuple(_id(g, "process.user.additionalGids")
                              for g in user.get("additionalGids") or []),
        umask=0o022 if umask is None else _int(umask, "process.user.umask"),
        capabilities=_capabilities(raw.get("capabilities")),
        rlimits=tuple(rlimit_list),
        no_new_privileges=bool(raw.get("noNewPrivileges", False)),
        oom_score_adj=None if oom is None else _int(oom, "process.oomScoreAdj"),
        console_size=_console_size(raw.get("consoleSize")),
    )


def _console_size(raw: Any) -> tuple[int, int] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidArgument("config.json: process.consoleSize must be an object")
    return (_int(raw.get("height", 0), "process.consoleSize.height"),
            _int(raw.get("width", 0), "process.consoleSize.width"))


def _capabilities(raw: Any) -> Capabilities | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidArgument("config.json: process.capabilities must be an object")
    masks: dict[str, int] = {}
    for key in ("bounding", "effective", "permitted", "inheritable", "ambient"):
        try:
            masks[key] = capabilities.mask_of(raw.get(key) or [])
        except ValueError as exc:
            raise InvalidArgument(f"config.json: process.capabilities.{key}: {exc}") from None
    return Capabilities(**masks)


def _mount(raw: Any, index: int, bundle: Path) -> Mount:
    where = f"mounts[{index}]"
    if not isinstance(raw, dict):
        raise InvalidArgument(f"config.json: {where} must be an object")
    destination = _str(raw, "destination", f"{where}.destination", required=True)
    if not destination.startswith("/"):
        raise InvalidArgument(f"config.json: {where}.destination must be absolute")
    options = [str(o) for o in raw.get("options") or []]
    parsed = parse_options(options)
    kind = str(raw.get("type") or ("bind" if parsed.is_bind else ""))
    if kind == "bind" and not parsed.is_bind:
        parsed = parse_options([*options, "rbind"])
    if not kind:
        raise InvalidArgument(f"config.json: {where} ({destination}) has no type")
    source = str(raw.get("source") or kind)
    if parsed.is_bind and not os.path.isabs(source):
        source = str(bundle / source)
    return Mount(destination, kind, source, parsed, tuple(options))


def _abs_paths(raw: Any, where: str) -> list[str]:
    paths = [str(p) for p in raw or []]
    for path in paths:
        if not path.startswith("/"):
            raise InvalidArgument(f"config.json: {where} entry {path!r} must be absolute")
    return paths


def _device(raw: Any, index: int) -> DeviceNode:
    where = f"linux.devices[{index}]"
    if not isinstance(raw, dict):
        raise InvalidArgument(f"config.json: {where} must be an object")
    path = _str(raw, "path", f"{where}.path", required=True)
    kind = str(raw.get("type", ""))
    if kind not in ("c", "b", "u", "p"):
        raise InvalidArgument(f"config.json: {where}.type {kind!r} is not c, b, u or p")
    if not path.startswith("/dev/") or os.path.normpath(path) != path:
        raise InvalidArgument(f"config.json: {where}.path {path!r} must be a plain path under "
                              "/dev")
    return DeviceNode(
        name=path,
        kind=kind,
        major=_int(raw.get("major", 0), f"{where}.major"),
        minor=_int(raw.get("minor", 0), f"{where}.minor"),
        mode=_int(raw.get("fileMode", 0o666), f"{where}.fileMode"),
        uid=_int(raw.get("uid", 0), f"{where}.uid"),
        gid=_int(raw.get("gid", 0), f"{where}.gid"),
    )


# Device rules for the nodes the runtime itself creates in /dev (null, zero, full, random,
# urandom, tty, ptmx and the pty slaves): a device cgroup that denies everything must still
# let the container create and use them.
_DEFAULT_DEVICE_RULES: tuple[tuple[str, int, int | None], ...] = (
    ("c", 1, 3), ("c", 1, 5), ("c", 1, 7), ("c", 1, 8), ("c", 1, 9), ("c", 5, 0), ("c", 5, 1),
    ("c", 5, 2), ("c", 136, None),
)


def cgroup_resources(spec: ContainerSpec) -> dict[str, Any] | None:
    """``linux.resources`` for the cgroup driver, with allow rules for the devices we create.

    As with the other OCI runtimes, the standard /dev nodes and every ``linux.devices`` entry
    are allowed after the spec's own rules, so a "deny all" rule does not break /dev/null.
    """
    if spec.resources is None:
        return None
    resources = dict(spec.resources)
    rules = resources.get("devices")
    if not rules:
        return resources
    extra: list[dict[str, Any]] = [
        {"allow": True, "type": kind, "major": major, "minor": minor, "access": "rwm"}
        for kind, major, minor in _DEFAULT_DEVICE_RULES
    ]
    # A device the spec gives its own rule keeps that rule's access (``--device X:X:r``).
    ruled = {(r.get("type"), r.get("major"), r.get("minor")) for r in rules if r.get("allow")}
    for node in spec.devices:
        kind = "c" if node.kind == "u" else node.kind
        if (kind, node.major, node.minor) not in ruled:
            extra.append({"allow": True, "type": kind, "major": node.major,
                          "minor": node.minor, "access": "rwm"})
    resources["devices"] = [*rules, *extra]
    return resources

