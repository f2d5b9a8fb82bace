"""The Linux side of a CRI container config, translated onto the core's HostConfig: security
context (user, groups, privileged, capabilities, read-only rootfs, no_new_privs, masked and
read-only paths, seccomp, AppArmor), resources, mounts and devices."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from servin.api.cri.runtime.v1 import api_pb2
from servin.engine.containers.model import DeviceMapping, HostConfig, Mount, Resources
from servin.errors import InvalidArgument

_PROPAGATION = {
    api_pb2.PROPAGATION_PRIVATE: "rprivate",
    api_pb2.PROPAGATION_HOST_TO_CONTAINER: "rslave",
    api_pb2.PROPAGATION_BIDIRECTIONAL: "rshared",
}


def user_of(sc: api_pb2.LinuxContainerSecurityContext) -> str:
    """The core's ``user[:group]`` from run_as_user / run_as_username / run_as_group."""
    user = str(sc.run_as_user.value) if sc.HasField("run_as_user") else sc.run_as_username
    if sc.HasField("run_as_group"):
        if not user:
            raise InvalidArgument("run_as_group is set without run_as_user or "
                                  "run_as_username")
        user += f":{sc.run_as_group.value}"
    return user


def resources(r: api_pb2.LinuxContainerResources) -> Resources:
    """The core's cgroup limits from the CRI's."""
    if r.cpu_quota < 0 and r.cpu_quota != -1:
        raise InvalidArgument(f"invalid cpu_quota {r.cpu_quota}")
    for name in ("cpu_period", "cpu_shares", "memory_limit_in_bytes"):
        if getattr(r, name) < 0:
            raise InvalidArgument(f"{name} must not be negative")
    return Resources(
        memory=r.memory_limit_in_bytes, memory_swap=r.memory_swap_limit_in_bytes,
        cpu_shares=r.cpu_shares, cpu_period=r.cpu_period,
        cpu_quota=max(r.cpu_quota, 0), cpuset_cpus=r.cpuset_cpus, cpuset_mems=r.cpuset_mems,
        oom_score_adj=r.oom_score_adj,
    )


def mounts(items: list[api_pb2.Mount]) -> list[Mount]:
    """Bind mounts; a missing host directory is made, as containerd does."""
    out = []
    for m in items:
        if not m.container_path.startswith("/"):
            raise InvalidArgument(f"mount container_path {m.container_path!r} is not absolute")
        if m.HasField("image") and m.image.image:
            raise InvalidArgument("image volume mounts are not supported")
        if not m.host_path.startswith("/"):
            raise InvalidArgument(f"mount host_path {m.host_path!r} is not absolute")
        options = ["create-host-path"]
        if m.recursive_read_only:
            if not m.readonly:
                raise InvalidArgument("a recursive read-only mount must be read-only")
            if m.propagation != api_pb2.PROPAGATION_PRIVATE:
                raise InvalidArgument("a recursive read-only mount must have private "
                                      "propagation")
            options.append("rro")
        out.append(Mount(type="bind", source=m.host_path, target=m.container_path,
                         read_only=m.readonly, propagation=_PROPAGATION.get(m.propagation, ""),
                         options=options))
    return out


def devices(items: list[api_pb2.Device]) -> list[DeviceMapping]:
    """Host devices."""
    return [DeviceMapping(path_on_host=d.host_path, path_in_container=d.container_path,
                          permissions=d.permissions or "rwm") for d in items]


async def seccomp_option(sc: api_pb2.LinuxContainerSecurityContext) -> str:
    """The core's ``seccomp=`` security option: "" (the default profile), ``unconfined``, or
    the JSON of a localhost profile. No profile at all is unconfined, as the CRI defines."""
    if sc.HasField("seccomp"):
        kind, ref = sc.seccomp.profile_type, sc.seccomp.localhost_ref
        if kind == api_pb2.SecurityProfile.RuntimeDefault:
            return ""
        if kind == api_pb2.SecurityProfile.Unconfined:
            return "unconfined"
        return await _localhost_profile(ref)
    path = sc.seccomp_profile_path
    if path in ("", "unconfined"):
        return "unconfined"
    if path in ("runtime/default", "docker/default"):
        return ""
    if path.startswith("localhost/"):
        return await _localhost_profile(path.removeprefix("localhost/"))
    raise InvalidArgument(f"unsupported seccomp profile {path!r} (runtime/default, "
                          "unconfined or localhost/<path>)")


async def _localhost_profile(ref: str) -> str:
    if not ref.startswith("/"):
        raise InvalidArgument(f"seccomp localhost profile {ref!r} is not an absolute path")
    try:
        text = await asyncio.to_thread(Path(ref).read_text)
        json.loads(text)
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"cannot load the seccomp profile {ref}: {exc}") from None
    return text


def check_apparmor(sc: api_pb2.LinuxContainerSecurityContext) -> None:
    """This host has no AppArmor: the default and unconfined need nothing, a profile cannot
    be applied."""
    if sc.HasField("apparmor"):
        if sc.apparmor.profile_type == api_pb2.SecurityProfile.Localhost:
            raise InvalidArgument("AppArmor profiles are not supported on this host")
    elif sc.apparmor_profile not in ("", "runtime/default", "unconfined"):
        raise InvalidArgument("AppArmor profiles are not supported on this host")


async def apply(host: HostConfig, sc: api_pb2.LinuxContainerSecurityContext) -> None:
    """Set ``host``'s security fields from the container's security context."""
    check_apparmor(sc)
    host.privileged = sc.privileged
    host.cap_add = list(sc.capabilities.add_capabilities)
    host.cap_drop = list(sc.capabilities.drop_capabilities)
    if sc.capabilities.add_ambient_capabilities:
        raise InvalidArgument("ambient capabilities are not supported")
    host.readonly_rootfs = sc.readonly_rootfs
    host.group_add = [str(g) for g in sc.supplemental_groups]
    host.strict_groups = sc.supplemental_groups_policy == api_pb2.Strict
    options = [f"no-new-privileges={'true' if sc.no_new_privs else 'false'}"]
    seccomp = await seccomp_option(sc)
    if seccomp:
        options.append(f"seccomp={seccomp}")
    host.security_opt = options
    for name in ("masked_paths", "readonly_paths"):
        paths = list(getattr(sc, name))
        for p in paths:
            if not p.startswith("/"):
                raise InvalidArgument(f"{name}: {p!r} is not an absolute path")
        if paths:
            setattr(host, name, paths)
