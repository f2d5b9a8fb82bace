"""servin.v1 wire types <-> the core's model (the translation lives at the edge)."""

from __future__ import annotations

from servin.api.servin.v1 import common_pb2, containers_pb2
from servin.engine.containers.model import (
    Container,
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
from servin.engine.semantics.filters import Filters
from servin.errors import InvalidArgument

_PERMISSIONS = set("rwm")


def filters(items: list[common_pb2.Filter]) -> Filters:
    """servin.v1's repeated Filter as the core's filters."""
    out: Filters = {}
    for f in items:
        out.setdefault(f.key, []).extend(f.values)
    return out


def parse_device(text: str) -> DeviceMapping:
    """``--device`` as docker's CLI reads it: ``HOST[:CONTAINER][:PERMISSIONS]``."""
    parts = text.split(":")
    if not parts[0] or len(parts) > 3:
        raise InvalidArgument(f"invalid device specification: {text}")
    host, inside, perms = parts[0], "", "rwm"
    if len(parts) == 2:
        if set(parts[1]) <= _PERMISSIONS and parts[1] and not parts[1].startswith("/"):
            perms = parts[1]
        else:
            inside = parts[1]
    elif len(parts) == 3:
        inside, perms = parts[1], parts[2]
    if not perms or not set(perms) <= _PERMISSIONS:
        raise InvalidArgument(f"invalid device mode: {perms}")
    return DeviceMapping(path_on_host=host, path_in_container=inside, permissions=perms)


def _device_text(d: DeviceMapping) -> str:
    return ":".join([d.path_on_host, d.path_in_container or d.path_on_host, d.permissions])


def mount_from_wire(m: common_pb2.Mount) -> Mount:
    """A servin.v1 Mount as the model's."""
    return Mount(type=m.type, source=m.source, target=m.target, read_only=m.read_only,
                 propagation=m.propagation, options=list(m.options), driver=m.driver,
                 name=m.name)


def mount_to_wire(m: Mount) -> common_pb2.Mount:
    """The model's Mount as servin.v1's."""
    return common_pb2.Mount(type=m.type, source=m.source, target=m.target,
                            read_only=m.read_only, propagation=m.propagation,
                            options=list(m.options), driver=m.driver, name=m.name)


def resources_from_wire(r: common_pb2.Resources) -> Resources:
    """servin.v1 Resources as the model's."""
    return Resources(
        memory=r.memory, memory_swap=r.memory_swap, memory_reservation=r.memory_reservation,
        nano_cpus=r.nano_cpus, cpu_shares=r.cpu_shares, cpu_period=r.cpu_period,
        cpu_quota=r.cpu_quota, cpuset_cpus=r.cpuset_cpus, cpuset_mems=r.cpuset_mems,
        pids_limit=r.pids_limit, blkio_weight=r.blkio_weight, oom_score_adj=r.oom_score_adj,
        oom_kill_disable=r.oom_kill_disable,
    )


def resources_to_wire(r: Resources) -> common_pb2.Resources:
    """The model's Resources as servin.v1's."""
    return common_pb2.Resources(
        memory=r.memory, memory_swap=r.memory_swap, memory_reservation=r.memory_reservation,
        nano_cpus=r.nano_cpus, cpu_shares=r.cpu_shares, cpu_period=r.cpu_period,
        cpu_quota=r.cpu_quota, cpuset_cpus=r.cpuset_cpus, cpuset_mems=r.cpuset_mems,
        pids_limit=r.pids_limit, blkio_weight=r.blkio_weight, oom_score_adj=r.oom_score_adj,
        oom_kill_disable=r.oom_kill_disable,
    )


def restart_policy_from_wire(p: containers_pb2.RestartPolicy) -> RestartPolicy:
    """servin.v1 RestartPolicy as the model's."""
    return RestartPolicy(name=p.name, maximum_retry_count=p.maximum_retry_count)


def create_request(name: str, spec: containers_pb2.ContainerSpec) -> CreateRequest:
    """A servin.v1 create (docker's Config + HostConfig + NetworkingConfig, flattened) as the
    core's create request."""
    health = None
    if spec.HasField("healthcheck"):
        h = spec.healthcheck
        health = HealthConfig(test=["NONE"] if h.disabled else list(h.test),
                              interval_ns=h.interval_ns, timeout_ns=h.timeout_ns,
                              start_period_ns=h.start_period_ns, retries=h.retries)
    config = ContainerConfig(
        image=spec.image,
        cmd=list(spec.cmd),
        entrypoint=list(spec.entrypoint) if spec.entrypoint_set else None,
        env=list(spec.env),
        working_dir=spec.working_dir,
        user=spec.user,
        hostname=spec.hostname,
        domainname=spec.domainname,
        labels=dict(spec.labels),
        tty=spec.tty,
        open_stdin=spec.open_stdin,
        stdin_once=spec.stdin_once,
        attach=list(spec.attach) if spec.attach_set else None,
        stop_signal=spec.stop_signal,
        stop_timeout=spec.stop_timeout if spec.stop_timeout >= 0 else None,
        healthcheck=health,
        exposed_ports=list(spec.exposed_ports),
    )
    host = HostConfig(
        binds=list(spec.binds),
        mounts=[mount_from_wire(m) for m in spec.mounts],
        volumes_from=list(spec.volumes_from),
        network_mode=spec.network_mode,
        port_bindings=[PortBinding(container_port=p.container_port,
                                   protocol=p.protocol or "tcp", host_ip=p.host_ip,
                                   host_port=p.host_port, host_port_end=p.host_port_end)
                       for p in spec.ports],
        publish_all_ports=spec.publish_all,
        restart_policy=restart_policy_from_wire(spec.restart_policy),
        auto_remove=spec.auto_remove,
        privileged=spec.privileged,
        cap_add=list(spec.cap_add),
        cap_drop=list(spec.cap_drop),
        security_opt=list(spec.security_opt),
        readonly_rootfs=spec.read_only,
        runtime=spec.runtime,
        ipc_mode=spec.ipc_mode,
        pid_mode=spec.pid_mode,
        uts_mode=spec.uts_mode,
        dns=list(spec.dns),
        dns_search=list(spec.dns_search),
        dns_options=list(spec.dns_options),
        extra_hosts=list(spec.extra_hosts),
        log_config=LogConfig(type=spec.log_config.type, options=dict(spec.log_config.options)),
        sysctls=dict(spec.sysctls),
        ulimits=[Ulimit(name=u.name, soft=u.soft, hard=u.hard) for u in spec.ulimits],
        init=spec.init,
        shm_size=spec.shm_size,
        devices=[parse_device(d) for d in spec.devices],
        device_cgroup_rules=list(spec.device_cgroup_rules),
        cgroupns_mode=spec.cgroupns_mode,
        group_add=list(spec.group_add),
        annotations=dict(a.split("=", 1) for a in spec.annotations if "=" in a),
        resources=resources_from_wire(spec.resources),
    )
    networking = NetworkingConfig(endpoints={
        name: EndpointConfig(aliases=list(ep.aliases), ipv4_address=ep.ipv4_address,
                             mac_address=ep.mac_address)
        for name, ep in spec.networks.items()
    })
    return CreateRequest(name=name, config=config, host_config=host, networking=networking,
                         pod_id=spec.pod_id)


def container_spec(c: Container) -> containers_pb2.ContainerSpec:
    """A container's settings as servin.v1's ContainerSpec (``mounts``: the resolved ones)."""
    cfg, host = c.config, c.host_config
    spec = containers_pb2.ContainerSpec(
        image=cfg.image,
        cmd=cfg.cmd,
        entrypoint=cfg.entrypoint or [],
        entrypoint_set=cfg.entrypoint is not None,
        env=cfg.env,
        working_dir=cfg.working_dir,
        user=cfg.user,
        hostname=cfg.hostname,
        domainname=cfg.domainname,
        labels=cfg.labels,
        tty=cfg.tty,
        open_stdin=cfg.open_stdin,
        stdin_once=cfg.stdin_once,
        attach=cfg.attach or [],
        attach_set=cfg.attach is not None,
        stop_signal=cfg.stop_signal,
        stop_timeout=cfg.stop_timeout if cfg.stop_timeout is not None else -1,
        exposed_ports=cfg.exposed_ports,
        resources=resources_to_wire(host.resources),
        network_mode=host.network_mode,
        ports=[common_pb2.PortBinding(container_port=p.container_port, protocol=p.protocol,
                                      host_ip=p.host_ip, host_port=p.host_port,
                                      host_port_end=p.host_port_end)
               for p in host.port_bindings],
        publish_all=host.publish_all_ports,
        mounts=[mount_to_wire(m) for m in c.mounts],
        restart_policy=containers_pb2.RestartPolicy(
            name=host.restart_policy.name,
            maximum_retry_count=host.restart_policy.maximum_retry_count),
        auto_remove=host.auto_remove,
        privileged=host.privileged,
        cap_add=host.cap_add,
        cap_drop=host.cap_drop,
        security_opt=host.security_opt,
        read_only=host.readonly_rootfs,
        runtime=host.runtime,
        ipc_mode=host.ipc_mode,
        pid_mode=host.pid_mode,
        uts_mode=host.uts_mode,
        dns=host.dns,
        dns_search=host.dns_search,
        dns_options=host.dns_options,
        extra_hosts=host.extra_hosts,
        volumes_from=host.volumes_from,
        log_config=containers_pb2.LogConfig(type=host.log_config.type,
                                            options=host.log_config.options),
        sysctls=host.sysctls,
        ulimits=[containers_pb2.Ulimit(name=u.name, soft=u.soft, hard=u.hard)
                 for u in host.ulimits],
        init=host.init,
        shm_size=host.shm_size,
        devices=[_device_text(d) for d in host.devices],
        device_cgroup_rules=host.device_cgroup_rules,
        cgroupns_mode=host.cgroupns_mode,
        group_add=host.group_add,
        networks={name: containers_pb2.EndpointSpec(aliases=ep.aliases,
                                                    ipv4_address=ep.ipv4_address,
                                                    mac_address=ep.mac_address)
                  for name, ep in c.networking.endpoints.items()},
        pod_id=c.pod_id,
        annotations=[f"{k}={v}" for k, v in host.annotations.items()],
        binds=host.binds,
    )
    if cfg.healthcheck is not None:
        h = cfg.healthcheck
        spec.healthcheck.CopyFrom(common_pb2.HealthConfig(
            test=h.test, interval_ns=h.interval_ns, timeout_ns=h.timeout_ns,
            start_period_ns=h.start_period_ns, retries=h.retries, disabled=h.disabled))
    return spec
