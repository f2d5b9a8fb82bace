"""docker's container create body (``Config`` + ``HostConfig`` + ``NetworkingConfig``, the
Docker Engine API's ``POST /containers/create``) translated into the core's create request.

The servin.v1 door translates ``servin run`` flags (sent as a ContainerSpec) into the same
``CreateRequest``; both then go through ``ContainerService.create``, where docker's meaning of
every option is applied once. A key docker has and Servin cannot honour is refused with a
clear error when it is set, and accepted when it carries docker's zero value (clients send
every key).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from servin.engine.containers.model import (
    ContainerConfig,
    CreateRequest,
    DeviceMapping,
    EndpointConfig,
    HealthConfig,
    HostConfig,
    LogConfig,
    Mount,
    NetworkingConfig,
    PortBinding,
    Resources,
    RestartPolicy,
    Ulimit,
)
from servin.errors import InvalidArgument

Body = Mapping[str, Any]


def string_list(value: Any, key: str) -> list[str]:
    """docker's StrSlice (null, a string or a list of strings) as a list; ``key`` names it
    in the error."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidArgument(f"invalid {key}: expected a string or a list of strings")


def _map(value: Any, key: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid {key}: expected an object")
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def _int(body: Body, key: str, default: int = 0) -> int:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"invalid {key}: expected an integer")
    return value


def bool_field(body: Body, key: str) -> bool:
    """A JSON boolean field of a docker request body (absent or null: false)."""
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidArgument(f"invalid {key}: expected true or false")
    return value


def _str(body: Body, key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(f"invalid {key}: expected a string")
    return value


def _unsupported(body: Body, key: str, zero: tuple[Any, ...] = (None, "", 0, False, [], {})
                 ) -> None:
    if body.get(key) not in zero:
        raise InvalidArgument(f"{key} is not supported by Servin")


def _health(value: Any) -> HealthConfig | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidArgument("invalid Healthcheck: expected an object")
    return HealthConfig(test=string_list(value.get("Test"), "Healthcheck.Test"),
                        interval_ns=_int(value, "Interval"), timeout_ns=_int(value, "Timeout"),
                        start_period_ns=_int(value, "StartPeriod"),
                        retries=_int(value, "Retries"))


def container_config(config: Body) -> ContainerConfig:
    """docker's ``Config`` as the model's."""
    stop_timeout = config.get("StopTimeout")
    if stop_timeout is not None and (isinstance(stop_timeout, bool)
                                     or not isinstance(stop_timeout, int)):
        raise InvalidArgument("invalid StopTimeout: expected an integer")
    entrypoint = config.get("Entrypoint")
    return ContainerConfig(
        image=_str(config, "Image"),
        cmd=string_list(config.get("Cmd"), "Cmd"),
        entrypoint=None if entrypoint is None else string_list(entrypoint, "Entrypoint"),
        env=string_list(config.get("Env"), "Env"),
        working_dir=_str(config, "WorkingDir"),
        user=_str(config, "User"),
        hostname=_str(config, "Hostname"),
        domainname=_str(config, "Domainname"),
        labels=_map(config.get("Labels"), "Labels"),
        tty=bool_field(config, "Tty"),
        open_stdin=bool_field(config, "OpenStdin"),
        stdin_once=bool_field(config, "StdinOnce"),
        attach=[name for key, name in (("AttachStdin", "stdin"), ("AttachStdout", "stdout"),
                                       ("AttachStderr", "stderr")) if bool_field(config, key)],
        stop_signal=_str(config, "StopSignal"),
        stop_timeout=stop_timeout,
        healthcheck=_health(config.get("Healthcheck")),
        exposed_ports=[_port_key(p) for p in _map(config.get("ExposedPorts"), "ExposedPorts")],
    )


def _port_key(text: str) -> str:
    number, _, proto = text.partition("/")
    if not number.isdigit():
        raise InvalidArgument(f"invalid port {text!r}")
    return f"{int(number)}/{proto or 'tcp'}"


def _port_bindings(value: Any) -> list[PortBinding]:
    out: list[PortBinding] = []
    for key, bindings in (value or {}).items():
        number, _, proto = key.partition("/")
        if not number.isdigit():
            raise InvalidArgument(f"invalid port {key!r} in PortBindings")
        for b in bindings or [{}]:
            host_port = str(b.get("HostPort") or "")
            first, dash, last = host_port.partition("-")  # "8000-8010": one free port of those
            if (first and not first.isdigit()) or (dash and not (first and last.isdigit())):
                raise InvalidArgument(f"invalid HostPort {host_port!r} for {key}")
            out.append(PortBinding(container_port=int(number), protocol=proto or "tcp",
                                   host_ip=str(b.get("HostIp") or ""),
                                   host_port=int(first or 0),
                                   host_port_end=int(last) if dash else 0))
    return out


def _mount(m: Body) -> Mount:
    kind = _str(m, "Type") or "volume"
    options: list[str] = []
    propagation = ""
    driver = ""
    if kind == "bind":
        bind = m.get("BindOptions") or {}
        propagation = str(bind.get("Propagation") or "")
    elif kind == "volume":
        volume = m.get("VolumeOptions") or {}
        if volume.get("NoCopy"):
            options.append("nocopy")
        driver_config = volume.get("DriverConfig") or {}
        driver = str(driver_config.get("Name") or "")
        options += [f"volume-opt={k}={v}"
                    for k, v in _map(driver_config.get("Options"), "Options").items()]
    elif kind == "tmpfs":
        tmpfs = m.get("TmpfsOptions") or {}
        if tmpfs.get("SizeBytes"):
            options.append(f"size={int(tmpfs['SizeBytes'])}")
        if tmpfs.get("Mode"):
            options.append(f"mode={int(tmpfs['Mode']):o}")
    return Mount(type=kind, source=_str(m, "Source"), target=_str(m, "Target"),
                 read_only=bool_field(m, "ReadOnly"), propagation=propagation, options=options,
                 driver=driver)


def resources(host: Body) -> Resources:
    """docker's HostConfig resource keys (also an update body's) as the model's."""
    swappiness = host.get("MemorySwappiness")
    if swappiness not in (None, -1):
        raise InvalidArgument("MemorySwappiness is not supported by Servin")
    return Resources(
        memory=_int(host, "Memory"), memory_swap=_int(host, "MemorySwap"),
        memory_reservation=_int(host, "MemoryReservation"), nano_cpus=_int(host, "NanoCpus"),
        cpu_shares=_int(host, "CpuShares"), cpu_period=_int(host, "CpuPeriod"),
        cpu_quota=_int(host, "CpuQuota"), cpuset_cpus=_str(host, "CpusetCpus"),
        cpuset_mems=_str(host, "CpusetMems"), pids_limit=_int(host, "PidsLimit"),
        blkio_weight=_int(host, "BlkioWeight"), oom_score_adj=_int(host, "OomScoreAdj"),
        oom_kill_disable=bool_field(host, "OomKillDisable"),
    )


def host_config(host: Body, config: Body | None = None) -> HostConfig:
    """docker's ``HostConfig`` as the model's (``config``'s ``Volumes`` become anonymous
    volumes where no bind or mount takes the path)."""
    for key in ("VolumeDriver", "StorageOpt", "DeviceRequests",
                "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpuCount", "CpuPercent",
                "IOMaximumIOps", "IOMaximumBandwidth", "KernelMemoryTCP", "BlkioWeightDevice",
                "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
                "BlkioDeviceWriteIOps", "Cgroup"):
        _unsupported(host, key)
    if _str(host, "UsernsMode") not in ("", "host"):
        raise InvalidArgument("UsernsMode is not supported by Servin")
    if _str(host, "Isolation") not in ("", "default"):
        raise InvalidArgument("Isolation is for Windows containers")
    if _str(host, "CgroupnsMode") not in ("", "private", "host"):
        raise InvalidArgument(f"invalid CgroupnsMode {host['CgroupnsMode']!r}")
    policy = host.get("RestartPolicy") or {}
    log = host.get("LogConfig") or {}
    mounts = [_mount(m) for m in host.get("Mounts") or []]
    mounts += [Mount(type="tmpfs", target=path, options=[o for o in opts.split(",") if o])
               for path, opts in _map(host.get("Tmpfs"), "Tmpfs").items()]
    binds = string_list(host.get("Binds"), "Binds")
    taken = {m.target for m in mounts} | {_bind_target(b) for b in binds}
    for path in (config or {}).get("Volumes") or {}:
        if path not in taken:
            binds.append(path)  # an anonymous volume, as docker makes for Config.Volumes
    return HostConfig(
        binds=binds,
        mounts=mounts,
        volumes_from=string_list(host.get("VolumesFrom"), "VolumesFrom"),
        links=string_list(host.get("Links"), "Links"),
        network_mode=_str(host, "NetworkMode"),
        port_bindings=_port_bindings(host.get("PortBindings")),
        publish_all_ports=bool_field(host, "PublishAllPorts"),
        restart_policy=RestartPolicy(name=str(policy.get("Name") or ""),
                                     maximum_retry_count=_int(policy, "MaximumRetryCount")),
        auto_remove=bool_field(host, "AutoRemove"),
        privileged=bool_field(host, "Privileged"),
        cap_add=string_list(host.get("CapAdd"), "CapAdd"),
        cap_drop=string_list(host.get("CapDrop"), "CapDrop"),
        security_opt=string_list(host.get("SecurityOpt"), "SecurityOpt"),
        readonly_rootfs=bool_field(host, "ReadonlyRootfs"),
        runtime=_str(host, "Runtime"),
        ipc_mode=_str(host, "IpcMode"),
        pid_mode=_str(host, "PidMode"),
        uts_mode=_str(host, "UTSMode"),
        cgroup_parent=_str(host, "CgroupParent"),
        dns=string_list(host.get("Dns"), "Dns"),
        dns_search=string_list(host.get("DnsSearch"), "DnsSearch"),
        dns_options=string_list(host.get("DnsOptions"), "DnsOptions"),
        extra_hosts=string_list(host.get("ExtraHosts"), "ExtraHosts"),
        log_config=LogConfig(type=str(log.get("Type") or ""),
                             options=_map(log.get("Config"), "LogConfig.Config")),
        sysctls=_map(host.get("Sysctls"), "Sysctls"),
        ulimits=[Ulimit(name=str(u.get("Name", "")), soft=_int(u, "Soft"),
                        hard=_int(u, "Hard")) for u in host.get("Ulimits") or []],
        init=bool_field(host, "Init"),
        shm_size=_int(host, "ShmSize"),
        devices=[DeviceMapping(path_on_host=_str(d, "PathOnHost"),
                               path_in_container=_str(d, "PathInContainer"),
                               permissions=_str(d, "CgroupPermissions") or "rwm")
                 for d in host.get("Devices") or []],
        device_cgroup_rules=string_list(host.get("DeviceCgroupRules"), "DeviceCgroupRules"),
        cgroupns_mode=_str(host, "CgroupnsMode"),
        group_add=string_list(host.get("GroupAdd"), "GroupAdd"),
        annotations=_map(host.get("Annotations"), "Annotations"),
        resources=resources(host),
    )


def _bind_target(spec: str) -> str:
    parts = spec.split(":")
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2 and not parts[1].startswith("/"):
        return parts[0]
    return parts[1]


def networking_config(body: Body) -> NetworkingConfig:
    """docker's ``NetworkingConfig`` as the model's."""
    endpoints: dict[str, EndpointConfig] = {}
    for name, ep in (body.get("EndpointsConfig") or {}).items():
        ep = ep or {}
        ipam = ep.get("IPAMConfig") or {}
        endpoints[name] = EndpointConfig(aliases=string_list(ep.get("Aliases"), "Aliases"),
                                         ipv4_address=str(ipam.get("IPv4Address") or ""),
                                         mac_address=_str(ep, "MacAddress"))
    return NetworkingConfig(endpoints=endpoints)


def from_docker(name: str, body: Body) -> CreateRequest:
    """A Docker Engine API create body (``Config`` at the top level with ``HostConfig`` and
    ``NetworkingConfig`` inside, as docker sends it) as the core's create request."""
    if not isinstance(body, Mapping):
        raise InvalidArgument("the create body must be a JSON object")
    host = body.get("HostConfig") or {}
    networking = networking_config(body.get("NetworkingConfig") or {})
    if "default" in networking.endpoints and _str(host, "NetworkMode") in ("", "default"):
        # The docker CLI names the default network "default": dockerd's bridge.
        endpoints = dict(networking.endpoints)
        endpoints.setdefault("bridge", endpoints.pop("default"))
        networking = NetworkingConfig(endpoints=endpoints)
    mac = _str(body, "MacAddress")  # API < 1.44 sent it in Config: the primary network's
    if mac:
        net = _str(host, "NetworkMode") or "bridge"
        ep = networking.endpoints.get(net, EndpointConfig())
        if ep.mac_address and ep.mac_address != mac:
            raise InvalidArgument("conflicting MacAddress in Config and EndpointsConfig")
        networking.endpoints[net] = msgspec.structs.replace(ep, mac_address=mac)
    hc = host_config(host, body)
    # An endpoint's links are the container's (docker keeps them per network; here they
    # name containers on whichever user network the container shares with them).
    endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
    endpoint_links = [link for ep in endpoints.values() if isinstance(ep, Mapping)
                      for link in string_list(ep.get("Links"), "Links")]
    if endpoint_links:
        hc = msgspec.structs.replace(hc, links=[*hc.links, *endpoint_links])
    return CreateRequest(
        name=name,
        config=container_config(body),
        host_config=hc,
        networking=networking,
    )
