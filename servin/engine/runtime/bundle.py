"""Container settings -> a standard OCI runtime bundle (``config.json``).

The same bundle runs under the native runtime, runc and crun. What Docker users expect by
default is built here: the 14 default capabilities, the default seccomp profile, Docker's
masked and read-only paths, /dev, /dev/pts, /dev/shm, /dev/mqueue, a read-only /sys, and
bind-mounted /etc/hostname, /etc/hosts and /etc/resolv.conf.

Its input is the core's container model (what to run, how, the resolved mounts) and what the
engine prepared on the host (``BundleInputs``); its output is plain OCI.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servin.engine.containers.model import ContainerConfig, DeviceMapping, HostConfig, Mount
from servin.engine.linux.capabilities import (
    CAPABILITIES,
    DOCKER_DEFAULT_CAPS,
    bounding_set,
    names_of,
)
from servin.engine.runtime.seccomp_profile import default_profile
from servin.engine.runtime.userdb import ExecUser
from servin.errors import InvalidArgument

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHM_SIZE = 64 * 1024 * 1024
INIT_TARGET = "/sbin/docker-init"  # where ``--init`` puts the init, as docker does
MIN_MEMORY = 6 * 1024 * 1024
CPU_PERIOD = 100_000

MASKED_PATHS = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# The cgroup device rules every container gets (Docker's defaults).
_DEFAULT_DEVICE_RULES: tuple[dict[str, Any], ...] = (
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    *(
        {"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
        for major, minor in (
            (1, 3),
            (1, 5),
            (1, 7),
            (1, 8),
            (1, 9),
            (5, 0),
            (5, 1),
            (5, 2),
            (10, 200),
        )
    ),
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
)


@dataclass(frozen=True)
class NamespacePaths:
    """Namespaces to join instead of creating (``container:NAME`` modes): type -> path."""

    join: dict[str, str] = field(default_factory=dict)
    host: frozenset[str] = frozenset()  # namespace types shared with the host


@dataclass(frozen=True)
class BundleInputs:
    """Everything the builder needs besides the container's spec."""

    container_id: str
    rootfs: Path
    image_config: dict[str, Any]
    user: ExecUser
    hostname: str
    etc_files: dict[str, Path]  # "/etc/hostname" -> host file to bind-mount
    namespaces: NamespacePaths = NamespacePaths()
    cgroup_parent: str = "/servin"
    # Volume name -> the host directory holding its data (bound at the mount's target).
    volume_paths: dict[str, str] = field(default_factory=dict)
    init_path: str = ""  # the host's init binary for ``--init``


def normalise_caps(names: Iterable[str]) -> list[str]:
    """``net_admin``/``CAP_NET_ADMIN`` -> ``CAP_NET_ADMIN``; ``ALL`` stays; unknown ones fail."""
    out = []
    for name in names:
        upper = name.strip().upper()
        if upper == "ALL":
            out.append("ALL")
            continue
        full = upper if upper.startswith("CAP_") else f"CAP_{upper}"
        if full not in CAPABILITIES:
            raise InvalidArgument(f"unknown capability: {name!r}")
        out.append(full)
    return out


def capability_set(spec: HostConfig) -> list[str]:
    """The container's capability set: defaults, then --cap-drop, then --cap-add."""
    available = set(names_of(bounding_set()))
    if spec.privileged:
        return [c for c in CAPABILITIES if c in available]
    adds = normalise_caps(spec.cap_add)
    drops = normalise_caps(spec.cap_drop)
    caps = [] if "ALL" in drops else [c for c in DOCKER_DEFAULT_CAPS if c not in drops]
    if "ALL" in adds:
        caps = list(CAPABILITIES)
    else:
        caps += [c for c in adds if c not in caps]
    # A capability this host's bounding set lacks cannot be granted: leave it out.
    return [c for c in caps if c in available]


def process_args(spec: ContainerConfig, image: dict[str, Any]) -> list[str]:
    """ENTRYPOINT + CMD as docker combines the image's and the user's."""
    if spec.entrypoint is not None:
        entrypoint = list(spec.entrypoint)
        cmd = list(spec.cmd)
    else:
        entrypoint = list(image.get("Entrypoint") or [])
        cmd = list(spec.cmd) or list(image.get("Cmd") or [])
    args = entrypoint + cmd
    if not args:
        raise InvalidArgument("no command specified")
    return args


def process_env(
    spec: ContainerConfig, image: dict[str, Any], hostname: str, home: str = "/"
) -> list[str]:
    """Image env overlaid by the user's, with PATH, HOSTNAME and HOME defaults (HOME from the
    user's /etc/passwd entry in the image, ``/`` without one, as docker sets it)."""
    merged: dict[str, str] = {}
    for item in [
        DEFAULT_PATH,
        f"HOSTNAME={hostname}",
        *(image.get("Env") or []),
        *(["TERM=xterm"] if spec.tty else []),
        *spec.env,
    ]:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable: {item!r}")
        if not sep:
            # ``-e VAR`` the client could not fill from its own environment: not set (never
            # the daemon's environment).
            continue
        merged[key] = value
    merged.setdefault("HOME", home or "/")
    return [f"{k}={v}" for k, v in merged.items()]


def working_dir(spec: ContainerConfig, image: dict[str, Any]) -> str:
    """The process's cwd: the user's, the image's, or /."""
    cwd = spec.working_dir or image.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        raise InvalidArgument(
            f"the working directory '{cwd}' is invalid, it needs to be an absolute path"
        )
    return cwd


def resources(spec: HostConfig) -> dict[str, Any]:
    """OCI ``linux.resources`` from the docker-style limits."""
    r = spec.resources
    out: dict[str, Any] = {"devices": [dict(rule) for rule in _DEFAULT_DEVICE_RULES]}
    if spec.privileged:
        out["devices"] = [{"allow": True, "access": "rwm"}]
    out["devices"] += [parse_device_cgroup_rule(rule) for rule in spec.device_cgroup_rules]
    memory: dict[str, Any] = {}
    if r.memory:
        if r.memory < MIN_MEMORY:
            raise InvalidArgument("Minimum memory limit allowed is 6MB")
        memory["limit"] = r.memory
        if r.memory_swap == 0:
            memory["swap"] = 2 * r.memory
        elif r.memory_swap == -1:
            memory["swap"] = -1
        elif r.memory_swap < r.memory:
            raise InvalidArgument(
                "Minimum memoryswap limit should be larger than memory limit, see usage"
            )
        else:
            memory["swap"] = r.memory_swap
    elif r.memory_swap > 0:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit")
    if r.memory_reservation:
        memory["reservation"] = r.memory_reservation
    if r.oom_kill_disable:
        memory["disableOOMKiller"] = True
    if memory:
        out["memory"] = memory
    cpu: dict[str, Any] = {}
    if r.nano_cpus:
        ncpu = os.cpu_count() or 1
        if r.nano_cpus < 0 or r.nano_cpus > ncpu * 1_000_000_000:
            raise InvalidArgument(
                f"range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            )
        if r.cpu_quota or r.cpu_period:
            raise InvalidArgument("conflicting options: --cpus and --cpu-period/--cpu-quota")
        cpu["period"] = CPU_PERIOD
        cpu["quota"] = r.nano_cpus * CPU_PERIOD // 1_000_000_000
    if r.cpu_period:
        cpu["period"] = r.cpu_period
    if r.cpu_quota:
        cpu["quota"] = r.cpu_quota
    if r.cpu_shares:
        if r.cpu_shares < 2:
            raise InvalidArgument("cpu-shares must be at least 2")
        cpu["shares"] = r.cpu_shares
    if r.cpuset_cpus:
        cpu["cpus"] = r.cpuset_cpus
    if r.cpuset_mems:
        cpu["mems"] = r.cpuset_mems
    if cpu:
        out["cpu"] = cpu
    if r.pids_limit:
        out["pids"] = {"limit": r.pids_limit if r.pids_limit > 0 else -1}
    return out


def parse_device_cgroup_rule(text: str) -> dict[str, Any]:
    """``--device-cgroup-rule 'c 1:3 rwm'`` (type a/b/c, numbers or ``*``) as an OCI rule."""
    fields = text.split()
    if len(fields) != 3 or fields[0] not in ("a", "b", "c") or ":" not in fields[1] \
            or not fields[2] or not set(fields[2]) <= set("rwm"):
        raise InvalidArgument(f"invalid device cgroup rule format: '{text}'")
    rule: dict[str, Any] = {"allow": True, "type": fields[0], "access": fields[2]}
    for key, number in zip(("major", "minor"), fields[1].split(":", 1), strict=True):
        if number != "*":
            if not number.isdigit():
                raise InvalidArgument(f"invalid device cgroup rule format: '{text}'")
            rule[key] = int(number)
    return rule


def check_device(d: DeviceMapping) -> tuple[str, str, str]:
    """(host path, container path, permissions) of a ``--device``; InvalidArgument if bad."""
    container = d.path_in_container or d.path_on_host
    perms = d.permissions or "rwm"
    if not set(perms) <= set("rwm"):
        raise InvalidArgument(f"invalid device mode: {perms}")
    for path in (d.path_on_host, container):
        if not path.startswith("/"):
            raise InvalidArgument(f"invalid device specification: {path} is not an absolute "
                                  "path")
    return d.path_on_host, container, perms


def devices(spec: HostConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(OCI ``linux.devices``, their cgroup allow rules): the host's devices with
    --privileged (as docker gives them), then each --device (a directory gives every
    device below it). Blocking: reads the host's /dev."""
    from servin.engine.linux.devices import devices_under, host_devices

    nodes = host_devices() if spec.privileged else []
    rules: list[dict[str, Any]] = []
    for device in spec.devices:
        host, container, perms = check_device(device)
        try:
            found = devices_under(host, container)
        except OSError as exc:
            raise InvalidArgument(f"error gathering device information while adding custom "
                                  f"device {host!r}: {(exc.strerror or str(exc)).lower()}") \
                from None
        if not found:
            raise InvalidArgument(f"error gathering device information while adding custom "
                                  f"device {host!r}: not a device node")
        nodes = [n for n in nodes if n.name not in {f.name for f in found}] + found
        rules += [{"allow": True, "type": n.kind, "major": n.major, "minor": n.minor,
                   "access": perms} for n in found]
    linux = [{"path": n.name, "type": n.kind, "major": n.major, "minor": n.minor,
              "fileMode": n.mode, "uid": n.uid, "gid": n.gid} for n in nodes]
    return linux, rules


def _security_opts(spec: HostConfig) -> tuple[str | None, bool]:
    """(seccomp setting: None default, "unconfined", or a JSON profile; no_new_privs)."""
    seccomp: str | None = None
    no_new_privs = not spec.privileged
    for opt in spec.security_opt:
        key, sep, value = opt.partition("=" if "=" in opt else ":")
        if key == "seccomp" and sep:
            seccomp = value
        elif key == "no-new-privileges":
            no_new_privs = value.lower() in ("", "true", "1")
        elif key in ("label", "apparmor"):
            if value not in ("disable", "unconfined"):
                raise InvalidArgument(
                    f"{key} is not supported by Servin (this host has no LSM policy for containers)"
                )
        else:
            raise InvalidArgument(f"invalid --security-opt: {opt!r}")
    return seccomp, no_new_privs


def docker_profile_to_oci(profile: dict[str, Any], caps: Iterable[str]) -> dict[str, Any]:
    """A Docker-format seccomp profile as an OCI ``linux.seccomp`` object for these caps."""
    capset = set(caps)
    if "defaultAction" not in profile:
        raise InvalidArgument("seccomp profile has no defaultAction")
    arches: list[str] = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        arches += [entry.get("architecture", ""), *(entry.get("subArchitectures") or [])]
    syscalls = []
    for rule in profile.get("syscalls") or []:
        includes = rule.get("includes") or {}
        excludes = rule.get("excludes") or {}
        if includes.get("caps") and not set(includes["caps"]) <= capset:
            continue
        if excludes.get("caps") and set(excludes["caps"]) & capset:
            continue
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        oci = {"names": names, "action": rule["action"]}
        for key in ("errnoRet", "args"):
            if rule.get(key) is not None:
                oci[key] = rule[key]
        syscalls.append(oci)
    out: dict[str, Any] = {"defaultAction": profile["defaultAction"], "syscalls": syscalls}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    if arches:
        out["architectures"] = [a for a in dict.fromkeys(arches) if a]
    return out


def _seccomp(
    setting: str | None, spec: HostConfig, caps: list[str]
) -> dict[str, Any] | None:
    if spec.privileged or setting == "unconfined":
        return None
    if setting is None:
        return default_profile(caps)
    try:
        profile = json.loads(setting)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"invalid seccomp profile: {exc.msg}") from exc
    if not isinstance(profile, dict):
        raise InvalidArgument("invalid seccomp profile: expected a JSON object")
    return docker_profile_to_oci(profile, caps)


def _mounts(spec: HostConfig, user_mounts: list[Mount],
            inputs: BundleInputs) -> list[dict[str, Any]]:
    shm = spec.shm_size or DEFAULT_SHM_SIZE
    mounts: list[dict[str, Any]] = [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "rw" if spec.privileged else "ro"],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "rw" if spec.privileged else "ro"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm}"],
        },
    ]
    user_targets = {m.target for m in user_mounts}
    for dest, source in inputs.etc_files.items():
        if dest not in user_targets:
            mounts.append(
                {
                    "destination": dest,
                    "type": "bind",
                    "source": str(source),
                    "options": ["rbind", "rprivate"],
                }
            )
    for m in user_mounts:
        mounts.append(_user_mount(m, inputs.volume_paths))
    if spec.init:
        if not inputs.init_path:
            raise InvalidArgument("--init: the daemon has no init binary (config key init_path)")
        mounts.append({"destination": INIT_TARGET, "type": "bind", "source": inputs.init_path,
                       "options": ["rbind", "rprivate", "ro"]})
    return mounts


_PROPAGATIONS = {"private", "rprivate", "shared", "rshared", "slave", "rslave"}


def _user_mount(m: Mount, volume_paths: dict[str, str]) -> dict[str, Any]:
    """One user mount (already validated at create) as an OCI mount; a volume is a bind
    of its data directory."""
    if not m.target.startswith("/"):
        raise InvalidArgument(f"invalid mount target {m.target!r}: it must be an absolute path")
    if m.type == "bind":
        if not m.source.startswith("/"):
            raise InvalidArgument(
                f"invalid bind mount source {m.source!r}: it must be an absolute path"
            )
        if not os.path.exists(m.source):
            raise InvalidArgument(f"bind source path does not exist: {m.source}")
        propagation = m.propagation or "rprivate"
        if propagation not in _PROPAGATIONS:
            raise InvalidArgument(f"invalid mount propagation {propagation!r}")
        options = ["rbind", propagation, "ro" if m.read_only else "rw",
                   *(o for o in m.options if o != "create-host-path")]
        return {"destination": m.target, "type": "bind", "source": m.source, "options": options}
    if m.type == "tmpfs":
        options = ["nosuid", "nodev", "noexec", *(["ro"] if m.read_only else []), *m.options]
        return {"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": options}
    if m.type == "volume":
        source = volume_paths.get(m.name or m.source)
        if source is None:
            raise InvalidArgument(f"volume {m.name or m.source!r} is not available")
        options = ["rbind", "rprivate", "ro" if m.read_only else "rw"]
        return {"destination": m.target, "type": "bind", "source": source, "options": options}
    raise InvalidArgument(f"invalid mount type {m.type!r} (bind, volume or tmpfs)")


def _namespaces(inputs: BundleInputs) -> list[dict[str, Any]]:
    out = []
    for ns in ("pid", "network", "ipc", "uts", "mount", "cgroup"):
        if ns in inputs.namespaces.host:
            continue
        entry: dict[str, Any] = {"type": ns}
        if ns in inputs.namespaces.join:
            entry["path"] = inputs.namespaces.join[ns]
        out.append(entry)
    return out


def build_config(config: ContainerConfig, host: HostConfig, mounts: list[Mount],
                 inputs: BundleInputs) -> dict[str, Any]:
    """The OCI runtime ``config.json`` of a container (``mounts``: its resolved mounts)."""
    image = inputs.image_config.get("config") or {}
    caps = capability_set(host)
    seccomp_setting, no_new_privs = _security_opts(host)
    process: dict[str, Any] = {
        "terminal": config.tty,
        "user": {
            "uid": inputs.user.uid,
            "gid": inputs.user.gid,
            **(
                {"additionalGids": inputs.user.additional_gids}
                if inputs.user.additional_gids
                else {}
            ),
        },
        # --init: a tiny init as PID 1 reaps zombies and forwards signals to the program.
        "args": [INIT_TARGET, "--", *process_args(config, image)] if host.init
        else process_args(config, image),
        "env": process_env(config, image, inputs.hostname, inputs.user.home),
        "cwd": working_dir(config, image),
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": no_new_privs,
    }
    if host.resources.oom_score_adj:
        process["oomScoreAdj"] = host.resources.oom_score_adj
    if host.ulimits:
        process["rlimits"] = [
            {"type": f"RLIMIT_{u.name.upper()}", "soft": u.soft, "hard": u.hard or u.soft}
            for u in host.ulimits
        ]
    linux_devices, device_rules = devices(host)
    linux: dict[str, Any] = {
        "namespaces": _namespaces(inputs),
        "cgroupsPath": f"{inputs.cgroup_parent}/{inputs.container_id}",
        "resources": resources(host),
        "rootfsPropagation": "rprivate",
    }
    if linux_devices:
        linux["devices"] = linux_devices
        linux["resources"]["devices"] += device_rules
    if not host.privileged:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
    seccomp = _seccomp(seccomp_setting, host, caps)
    if seccomp is not None:
        linux["seccomp"] = seccomp
    if host.sysctls:
        linux["sysctl"] = dict(host.sysctls)
    bundle: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": str(inputs.rootfs), "readonly": host.readonly_rootfs},
        "mounts": _mounts(host, mounts, inputs),
        "linux": linux,
    }
    if "uts" not in inputs.namespaces.host and "uts" not in inputs.namespaces.join:
        bundle["hostname"] = inputs.hostname
        if config.domainname:
            bundle["domainname"] = config.domainname
    if host.annotations:
        bundle["annotations"] = dict(host.annotations)
    return bundle


def write_bundle(bundle_dir: Path, config: dict[str, Any]) -> Path:
    """Write ``config.json`` atomically into the bundle directory; return its path."""
    bundle_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = bundle_dir / "config.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=1))
    os.replace(tmp, path)
    return path
