"""docker-shaped inspect documents for containers, images, networks and volumes.

The shapes and key names are those of the Docker Engine API (``ContainerInspectResponse``
with its ``HostConfig``/``Config``/``NetworkSettings``, ``ImageInspect``, ``Network``,
``Volume``), so ``servin inspect -f '{{.HostConfig.RestartPolicy.Name}}'`` and the Docker API
door answer the same document. Where docker says ``null`` for an empty list these do too.
Fields docker has but Servin has no notion of keep docker's zero values (``Links``,
``Isolation``, ...).
"""

from __future__ import annotations

import json
from typing import Any

from servin.engine.containers.model import (
    PAUSED,
    RESTARTING,
    RUNNING,
    Container,
    HealthConfig,
    Mount,
    PortBinding,
)
from servin.engine.containers.views import ContainerDetails
from servin.engine.images.service import ImageDetails
from servin.engine.networks.model import NetworkView
from servin.engine.runtime import bundle as oci
from servin.engine.timefmt import format_ns, parse_ns_or_zero
from servin.engine.volumes.model import VolumeView
from servin.reference import familiar

DEFAULT_SHM_SIZE = oci.DEFAULT_SHM_SIZE


def to_json(document: dict[str, Any] | list[Any]) -> str:
    """A document as the JSON a door sends."""
    return json.dumps(document, separators=(",", ":"))


def _or_none(items: list[Any] | dict[str, Any]) -> Any:
    """docker's nil slices and maps: an empty one is ``null``."""
    return items if items else None


def _port_key(port: int, protocol: str) -> str:
    return f"{port}/{protocol or 'tcp'}"


def port_bindings(bindings: list[PortBinding]) -> dict[str, list[dict[str, str]]]:
    """``HostConfig.PortBindings``: "80/tcp" -> [{"HostIp", "HostPort"}] (a host range as
    "8000-8010", as docker records ``-p 8000-8010:80``)."""
    out: dict[str, list[dict[str, str]]] = {}
    for p in bindings:
        host = str(p.host_port) if p.host_port else ""
        if p.host_port_end:
            host += f"-{p.host_port_end}"
        out.setdefault(_port_key(p.container_port, p.protocol), []).append(
            {"HostIp": p.host_ip, "HostPort": host})
    return out


def health_config(h: HealthConfig) -> dict[str, Any]:
    """docker's ``Healthcheck`` object (durations in nanoseconds)."""
    out: dict[str, Any] = {"Test": list(h.test)}
    for key, value in (("Interval", h.interval_ns), ("Timeout", h.timeout_ns),
                       ("StartPeriod", h.start_period_ns), ("Retries", h.retries)):
        if value:
            out[key] = value
    return out


def mount_point(m: Mount) -> dict[str, Any]:
    """One of docker's ``Mounts`` entries (``m.source``: the host path of the data)."""
    out: dict[str, Any] = {"Type": m.type}
    if m.type == "volume":
        out["Name"] = m.name
    out["Source"] = m.source
    out["Destination"] = m.target
    if m.type == "volume":
        out["Driver"] = m.driver or "local"
    out["Mode"] = "ro" if m.read_only else ""
    out["RW"] = not m.read_only
    out["Propagation"] = m.propagation or ("rprivate" if m.type == "bind" else "")
    return out


def _host_mount(m: Mount) -> dict[str, Any]:
    """A structured mount as requested (``HostConfig.Mounts``)."""
    out: dict[str, Any] = {"Type": m.type, "Source": m.source, "Target": m.target}
    if m.read_only:
        out["ReadOnly"] = True
    if m.type == "bind" and m.propagation:
        out["BindOptions"] = {"Propagation": m.propagation}
    if m.type == "volume":
        options: dict[str, Any] = {}
        if "nocopy" in m.options:
            options["NoCopy"] = True
        driver_opts = dict(o[len("volume-opt="):].split("=", 1) for o in m.options
                           if o.startswith("volume-opt=") and "=" in o[len("volume-opt="):])
        if driver_opts or m.driver:
            options["DriverConfig"] = {"Name": m.driver or "local", "Options": driver_opts}
        if options:
            out["VolumeOptions"] = options
    if m.type == "tmpfs":
        tmpfs: dict[str, Any] = {}
        for option in m.options:
            key, _, value = option.partition("=")
            if key == "size" and value.isdigit():
                tmpfs["SizeBytes"] = int(value)
            elif key == "mode":
                tmpfs["Mode"] = int(value, 8)
        if tmpfs:
            out["TmpfsOptions"] = tmpfs
    return out


def _link(name: str, link: str) -> str:
    """A link as docker's inspect shows it: ``/target:/name/alias``."""
    target, _, alias = link.lstrip("/").partition(":")
    return f"/{target}:/{name}/{alias.rsplit('/', 1)[-1] or target}"


def _state(c: Container) -> dict[str, Any]:
    s = c.state
    out: dict[str, Any] = {
        "Status": s.status,
        "Running": s.status in (RUNNING, PAUSED),
        "Paused": s.status == PAUSED,
        "Restarting": s.status == RESTARTING,
        "OOMKilled": s.oom_killed,
        "Dead": s.status == "dead",
        "Pid": s.pid,
        "ExitCode": s.exit_code,
        "Error": s.error,
        "StartedAt": format_ns(s.started_at_ns),
        "FinishedAt": format_ns(s.finished_at_ns),
    }
    if s.health_status:
        out["Health"] = {
            "Status": s.health_status,
            "FailingStreak": s.failing_streak,
            "Log": [{"Start": format_ns(r.start_ns), "End": format_ns(r.end_ns),
                     "ExitCode": r.exit_code, "Output": r.output} for r in s.health_log],
        }
    return out


def _host_config(c: Container) -> dict[str, Any]:
    h = c.host_config
    r = h.resources
    security = [o if not o.startswith("seccomp={") else "seccomp=<profile>"
                for o in h.security_opt]
    out: dict[str, Any] = {
        "Binds": _or_none(list(h.binds)),
        "ContainerIDFile": "",
        "LogConfig": {"Type": h.log_config.type or "json-file",
                      "Config": dict(h.log_config.options)},
        "NetworkMode": h.network_mode or "bridge",
        "PortBindings": port_bindings(h.port_bindings),
        "RestartPolicy": {"Name": h.restart_policy.name or "no",
                          "MaximumRetryCount": h.restart_policy.maximum_retry_count},
        "AutoRemove": h.auto_remove,
        "VolumeDriver": "",
        "VolumesFrom": _or_none(list(h.volumes_from)),
        "ConsoleSize": [0, 0],
        "Annotations": _or_none(dict(h.annotations)),
        "CapAdd": _or_none(list(h.cap_add)),
        "CapDrop": _or_none(list(h.cap_drop)),
        "CgroupnsMode": h.cgroupns_mode or "private",
        "Dns": list(h.dns),
        "DnsOptions": list(h.dns_options),
        "DnsSearch": list(h.dns_search),
        "ExtraHosts": _or_none(list(h.extra_hosts)),
        "GroupAdd": _or_none(list(h.group_add)),
        "IpcMode": h.ipc_mode or "private",
        "Cgroup": "",
        "Links": _or_none([_link(c.name, link) for link in h.links]),
        "OomScoreAdj": r.oom_score_adj,
        "PidMode": h.pid_mode,
        "Privileged": h.privileged,
        "PublishAllPorts": h.publish_all_ports,
        "ReadonlyRootfs": h.readonly_rootfs,
        "SecurityOpt": _or_none(security),
        "UTSMode": h.uts_mode,
        "UsernsMode": "",
        "ShmSize": h.shm_size or DEFAULT_SHM_SIZE,
        "Runtime": h.runtime or "native",
        "Isolation": "",
        "CpuShares": r.cpu_shares,
        "Memory": r.memory,
        "NanoCpus": r.nano_cpus,
        "CgroupParent": h.cgroup_parent,
        "BlkioWeight": r.blkio_weight,
        "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [],
        "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [],
        "CpuPeriod": r.cpu_period,
        "CpuQuota": r.cpu_quota,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": r.cpuset_cpus,
        "CpusetMems": r.cpuset_mems,
        "Devices": [{"PathOnHost": d.path_on_host,
                     "PathInContainer": d.path_in_container or d.path_on_host,
                     "CgroupPermissions": d.permissions} for d in h.devices],
        "DeviceCgroupRules": _or_none(list(h.device_cgroup_rules)),
        "DeviceRequests": None,
        "MemoryReservation": r.memory_reservation,
        "MemorySwap": r.memory_swap,
        "MemorySwappiness": None,
        "OomKillDisable": r.oom_kill_disable,
        "PidsLimit": r.pids_limit or None,
        "Ulimits": _or_none([{"Name": u.name, "Soft": u.soft, "Hard": u.hard}
                             for u in h.ulimits]),
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "MaskedPaths": [] if h.privileged else list(oci.MASKED_PATHS),
        "ReadonlyPaths": [] if h.privileged else list(oci.READONLY_PATHS),
    }
    if h.init:
        out["Init"] = True
    if h.mounts:
        out["Mounts"] = [_host_mount(m) for m in h.mounts]
    if h.sysctls:
        out["Sysctls"] = dict(h.sysctls)
    return out


def _merged_env(image_env: list[str], env: list[str]) -> list[str]:
    merged: dict[str, str] = {}
    for item in [*image_env, *env]:
        key, _, _ = item.partition("=")
        merged[key] = item
    return list(merged.values())


def _config(d: ContainerDetails) -> dict[str, Any]:
    c, image = d.container, d.image
    cfg = c.config
    exposed: dict[str, dict[str, Any]] = {**{p: {} for p in image.get("ExposedPorts") or {}},
               **{p: {} for p in cfg.exposed_ports},
               **{_port_key(p.container_port, p.protocol): {}
                  for p in c.host_config.port_bindings}}
    if cfg.entrypoint is not None:
        entrypoint = list(cfg.entrypoint)
        cmd = list(cfg.cmd)
    else:
        entrypoint = list(image.get("Entrypoint") or [])
        cmd = list(cfg.cmd) or list(image.get("Cmd") or [])
    attach = cfg.attached_streams()
    out: dict[str, Any] = {
        "Hostname": cfg.hostname or c.id[:12],
        "Domainname": cfg.domainname,
        "User": cfg.user or image.get("User", ""),
        "AttachStdin": "stdin" in attach,
        "AttachStdout": "stdout" in attach,
        "AttachStderr": "stderr" in attach,
        "Tty": cfg.tty,
        "OpenStdin": cfg.open_stdin,
        "StdinOnce": cfg.stdin_once,
        "Env": _merged_env(list(image.get("Env") or []), list(cfg.env)),
        "Cmd": _or_none(cmd),
        "Image": cfg.image,
        "Volumes": _or_none({k: {} for k in image.get("Volumes") or {}}),
        "WorkingDir": cfg.working_dir or image.get("WorkingDir", ""),
        "Entrypoint": _or_none(entrypoint),
        "OnBuild": None,
        "Labels": {**(image.get("Labels") or {}), **cfg.labels},
    }
    if exposed:
        out["ExposedPorts"] = exposed
    if cfg.healthcheck is not None:
        out["Healthcheck"] = health_config(cfg.healthcheck)
    elif image.get("Healthcheck"):
        out["Healthcheck"] = image["Healthcheck"]
    stop_signal = cfg.stop_signal or image.get("StopSignal", "")
    if stop_signal:
        out["StopSignal"] = stop_signal
    if cfg.stop_timeout is not None:
        out["StopTimeout"] = cfg.stop_timeout
    return out


def _network_settings(d: ContainerDetails) -> dict[str, Any]:
    c = d.container
    running = c.state.status in (RUNNING, PAUSED)
    ports: dict[str, Any] = {}
    if running:
        for key in _config(d).get("ExposedPorts", {}):
            ports[key] = None
        for p in c.state.ports:
            ports.setdefault(_port_key(p.container_port, p.protocol), [])
            if ports[_port_key(p.container_port, p.protocol)] is None:
                ports[_port_key(p.container_port, p.protocol)] = []
            ports[_port_key(p.container_port, p.protocol)].append(
                {"HostIp": p.host_ip or "0.0.0.0", "HostPort": str(p.host_port)})
    networks: dict[str, Any] = {}
    for a in d.networks:
        n, ep = a.network, a.endpoint
        configured = c.networking.endpoints.get(n.name)
        networks[n.name] = {
            "IPAMConfig": ({"IPv4Address": configured.ipv4_address}
                           if configured is not None and configured.ipv4_address else None),
            "Links": None,
            "Aliases": _or_none(list(ep.aliases)),
            "MacAddress": ep.mac if a.active else "",
            "DriverOpts": None,
            "GwPriority": 0,
            "NetworkID": n.id,
            "EndpointID": "",
            "Gateway": n.gateway if a.active else "",
            "IPAddress": ep.address if a.active else "",
            "IPPrefixLen": n.prefixlen if a.active and n.subnet else 0,
            "IPv6Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "DNSNames": ([c.name, c.id[:12], *ep.aliases]
                         if a.active and n.user_defined else None),
        }
    if not networks and c.network_mode in ("host", "none"):
        networks[c.network_mode] = {
            "IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "",
            "DriverOpts": None, "GwPriority": 0, "NetworkID": "", "EndpointID": "",
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": None,
        }
    first = next((a for a in d.networks if a.active), None)
    return {
        "Bridge": "",
        "SandboxID": "",
        "SandboxKey": f"/proc/{c.state.pid}/ns/net" if running and c.state.pid else "",
        "Ports": ports,
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": "",
        "Gateway": first.network.gateway if first else "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": first.endpoint.address if first else "",
        "IPPrefixLen": first.network.prefixlen if first and first.network.subnet else 0,
        "IPv6Gateway": "",
        "MacAddress": first.endpoint.mac if first else "",
        "Networks": networks,
    }


def container_document(d: ContainerDetails, *, size: bool = False) -> dict[str, Any]:
    """docker's container inspect document (``ContainerInspectResponse``)."""
    c = d.container
    paths = d.paths
    etc = paths.etc_files
    out: dict[str, Any] = {
        "Id": c.id,
        "Created": format_ns(c.created_ns),
        "Path": d.path,
        "Args": list(d.args),
        "State": _state(c),
        "Image": c.image_id,
        "ResolvConfPath": str(etc["/etc/resolv.conf"]),
        "HostnamePath": str(etc["/etc/hostname"]),
        "HostsPath": str(etc["/etc/hosts"]),
        "LogPath": str(paths.log_path),
        "Name": "/" + c.name,
        "RestartCount": c.state.restart_count,
        "Driver": d.driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": _or_none(list(d.exec_ids)),
        "HostConfig": _host_config(c),
        "GraphDriver": {"Name": d.driver,
                        "Data": {"MergedDir": str(paths.rootfs)}},
        "Mounts": [mount_point(m) for m in d.mounts],
        "Config": _config(d),
        "NetworkSettings": _network_settings(d),
    }
    if c.pod_id:
        out["PodID"] = c.pod_id  # Servin's own: the pod it belongs to
    if size:
        out["SizeRw"] = d.size_rw or 0
        out["SizeRootFs"] = d.size_root_fs or 0
    return out


_IMAGE_CONFIG_KEYS = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout",
                      "AttachStderr", "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env",
                      "Cmd", "Healthcheck", "ArgsEscaped", "Image", "Volumes", "WorkingDir",
                      "Entrypoint", "OnBuild", "Labels", "StopSignal", "StopTimeout", "Shell")


def image_document(d: ImageDetails) -> dict[str, Any]:
    """docker's image inspect document (``ImageInspect``)."""
    record, config = d.record, d.config
    image = config.get("config") or {}
    image_config: dict[str, Any] = {
        "Hostname": "", "Domainname": "", "User": image.get("User", ""),
        "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
        "Tty": False, "OpenStdin": False, "StdinOnce": False,
        "Env": image.get("Env"), "Cmd": image.get("Cmd"), "Image": "",
        "Volumes": image.get("Volumes"), "WorkingDir": image.get("WorkingDir", ""),
        "Entrypoint": image.get("Entrypoint"), "OnBuild": image.get("OnBuild"),
        "Labels": image.get("Labels"),
    }
    for key in ("ExposedPorts", "Healthcheck", "ArgsEscaped", "StopSignal", "Shell"):
        if image.get(key) is not None:
            image_config[key] = image[key]
    history = config.get("history") or []
    out: dict[str, Any] = {
        "Id": record.id,
        "RepoTags": [familiar(t) for t in record.repo_tags],
        "RepoDigests": [familiar(t) for t in record.repo_digests],
        "Parent": "",
        "Comment": (history[-1].get("comment", "") if history else ""),
        "Created": format_ns(parse_ns_or_zero(config.get("created", record.created))),
        "DockerVersion": config.get("docker_version", ""),
        "Author": config.get("author", ""),
        "Config": image_config,
        "Architecture": config.get("architecture", ""),
        "Os": config.get("os", ""),
        "Size": record.size,
        "GraphDriver": {"Name": "overlay2", "Data": None},
        "RootFS": {"Type": "layers",
                   "Layers": list((config.get("rootfs") or {}).get("diff_ids") or [])},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        "Descriptor": {"mediaType": record.manifest_media_type,
                       "digest": record.manifest_digest,
                       "size": len(json.dumps(d.manifest))},
    }
    if config.get("variant"):
        out["Variant"] = config["variant"]
    if config.get("os.version"):
        out["OsVersion"] = config["os.version"]
    return out


def network_document(view: NetworkView) -> dict[str, Any]:
    """docker's network inspect document."""
    n = view.network
    ipam: list[dict[str, str]] = []
    if n.subnet:
        entry = {"Subnet": n.subnet, "Gateway": n.gateway}
        if n.ip_range:
            entry["IPRange"] = n.ip_range
        ipam.append(entry)
    options = dict(n.options)
    if n.bridge:
        options.setdefault("com.docker.network.bridge.name", n.bridge)
    return {
        "Name": n.name,
        "Id": n.id,
        "Created": format_ns(n.created_ns),
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv4": True,
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None, "Config": ipam},
        "Internal": n.internal,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": {
            c.id: {
                "Name": c.name,
                "EndpointID": "",
                "MacAddress": ep.mac,
                "IPv4Address": f"{ep.address}/{n.prefixlen}" if n.subnet else "",
                "IPv6Address": "",
                "Aliases": _or_none(list(ep.aliases)),
            }
            # As docker: only containers with a live sandbox (running or paused).
            for ep, c in view.endpoints if c.state.status in (RUNNING, PAUSED)
        },
        "Options": options,
        "Labels": dict(n.labels),
    }


def volume_document(view: VolumeView) -> dict[str, Any]:
    """docker's volume inspect document."""
    v = view.volume
    out: dict[str, Any] = {
        "CreatedAt": format_ns((v.created_ns // 1_000_000_000) * 1_000_000_000),
        "Driver": v.driver,
        "Labels": _or_none(dict(v.labels)),
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": _or_none(dict(v.options)),
        "Scope": "local",
    }
    if view.size >= 0:
        out["UsageData"] = {"Size": view.size, "RefCount": view.ref_count}
    return out
