"""The pod inspect document, in the shape of podman's ``pod inspect`` (what ``servin pod
inspect`` prints and its ``-f`` templates read)."""

from __future__ import annotations

from typing import Any

from servin.engine.pods.service import PodView
from servin.engine.timefmt import format_ns


def shared_namespaces(view: PodView) -> list[str]:
    """The namespaces the members share with the infra (podman's names)."""
    return ["ipc", "net", "uts"] + (["pid"] if view.pod.config.share_pid else [])


def pod_document(view: PodView) -> dict[str, Any]:
    """podman's InspectPodData for a pod."""
    pod, infra = view.pod, view.infra
    config = pod.config
    infra_config: dict[str, Any] = {
        "PortBindings": {
            f"{p.container_port}/{p.protocol or 'tcp'}": [
                {"HostIp": p.host_ip, "HostPort": str(p.host_port) if p.host_port else ""}]
            for p in config.port_bindings
        },
        "HostNetwork": config.network_mode == "host",
        "StaticIP": "",
        "NoManageResolvConf": False,
        "DNSServer": list(config.dns),
        "DNSSearch": list(config.dns_search),
        "DNSOption": list(config.dns_options),
        "HostAdd": list(config.extra_hosts),
        "Networks": sorted(view.addresses) or [config.network_mode or "bridge"],
        "NetworkOptions": {"netns": [config.netns_path]} if config.netns_path else {},
        "pid_ns": "pod" if config.share_pid else "private",
        "userns": "host",
        "uts_ns": "pod",
    }
    doc: dict[str, Any] = {
        "Id": pod.id,
        "Name": pod.name,
        "Created": format_ns(pod.created_ns),
        "State": view.status,
        "Hostname": pod.hostname,
        "Labels": dict(config.labels),
        "Annotations": dict(config.annotations),
        "CreateCgroup": True,
        "CgroupParent": pod.cgroup_path.rsplit("/", 1)[0],
        "CgroupPath": pod.cgroup_path,
        "CreateInfra": True,
        "InfraContainerID": pod.infra_id,
        "InfraConfig": infra_config,
        "SharedNamespaces": shared_namespaces(view),
        "NumContainers": len(view.containers),
        "Containers": [{"Id": c.id, "Name": c.name, "State": c.state.status}
                       for c in view.containers],
        "Addresses": dict(view.addresses),
        "LogDirectory": config.log_directory,
    }
    if config.resources.memory:
        doc["MemoryLimit"] = config.resources.memory
    if config.resources.nano_cpus:
        doc["CPUPeriod"] = 100000
        doc["CPUQuota"] = config.resources.nano_cpus * 100000 // 10**9
    if infra is not None and infra.state.pid:
        doc["InfraPid"] = infra.state.pid
    return doc
