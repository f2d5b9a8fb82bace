"""PodSandboxStatus and ListPodSandbox: core pods marked as CRI sandboxes, in the CRI's
terms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from servin.api.cri.runtime.v1 import api_pb2
from servin.engine.containers.model import RUNNING
from servin.engine.server.cri import common
from servin.engine.server.cri.base import Verbs
from servin.engine.server.cri.container_status import container_status
from servin.engine.server.grpc.rpc import Context

if TYPE_CHECKING:
    from servin.engine.pods.service import PodView



def sandbox_state(view: PodView) -> api_pb2.PodSandboxState.ValueType:
    """READY while the infra runs (the sandbox's namespaces exist), NOTREADY otherwise."""
    if view.infra is not None and view.infra.state.status == RUNNING:
        return api_pb2.SANDBOX_READY
    return api_pb2.SANDBOX_NOTREADY


def sandbox_metadata(view: PodView) -> api_pb2.PodSandboxMetadata:
    """The metadata RunPodSandbox was given."""
    meta = common.load(view.pod.config.annotations.get(common.SANDBOX_METADATA, ""))
    return api_pb2.PodSandboxMetadata(
        name=str(meta.get("name", "")), uid=str(meta.get("uid", "")),
        namespace=str(meta.get("namespace", "")), attempt=int(meta.get("attempt", 0)))


def sandbox_options(view: PodView) -> dict[str, object]:
    """What RunPodSandbox recorded for the sandbox's containers (namespaces, privileged,
    log directory)."""
    return common.load(view.pod.config.annotations.get(common.SANDBOX_CONFIG, ""))


def namespace_options(view: PodView) -> api_pb2.NamespaceOption:
    """The namespace modes RunPodSandbox was given."""
    options = sandbox_options(view)

    def mode(key: str) -> api_pb2.NamespaceMode.ValueType:
        value = options.get(key, 0)
        return api_pb2.NamespaceMode.ValueType(value) if isinstance(value, int) else api_pb2.POD

    return api_pb2.NamespaceOption(network=mode("network"), pid=mode("pid"), ipc=mode("ipc"))


def network_id(view: PodView) -> str:
    """The key of the sandbox's CNI network ("" for a pod on the node's network)."""
    path = view.pod.config.netns_path
    return Path(path).name if path else ""


class SandboxStatusVerbs(Verbs):
    """PodSandboxStatus, ListPodSandbox."""

    def _sandbox(self, view: PodView) -> api_pb2.PodSandbox:
        pod = view.pod
        return api_pb2.PodSandbox(
            id=pod.id, metadata=sandbox_metadata(view), state=sandbox_state(view),
            created_at=pod.created_ns, labels=pod.config.labels,
            annotations=common.visible(pod.config.annotations),
            runtime_handler=pod.config.annotations.get(common.RUNTIME_HANDLER, ""))

    async def PodSandboxStatus(self, request: api_pb2.PodSandboxStatusRequest,
                               context: Context) -> api_pb2.PodSandboxStatusResponse:
        view = await self.cri_sandbox(request.pod_sandbox_id)
        pod = view.pod
        status = api_pb2.PodSandboxStatus(
            id=pod.id, metadata=sandbox_metadata(view), state=sandbox_state(view),
            created_at=pod.created_ns, labels=pod.config.labels,
            annotations=common.visible(pod.config.annotations),
            runtime_handler=pod.config.annotations.get(common.RUNTIME_HANDLER, ""),
            linux=api_pb2.LinuxPodSandboxStatus(
                namespaces=api_pb2.Namespace(options=namespace_options(view))),
        )
        key = network_id(view)
        network = self.core.pod_networks.get(key) if key else None
        if network is not None and network.ips and sandbox_state(view) == api_pb2.SANDBOX_READY:
            status.network.ip = network.ips[0]
            status.network.additional_ips.extend(
                api_pb2.PodIP(ip=ip) for ip in network.ips[1:])
        info: dict[str, str] = {}
        if request.verbose:
            info["info"] = json.dumps({
                "pid": view.infra.state.pid if view.infra is not None else 0,
                "infraContainerId": pod.infra_id, "netnsPath": pod.config.netns_path,
                "cgroupPath": pod.cgroup_path, "runtimeHandler": status.runtime_handler,
                "hostname": pod.hostname,
                "containers": [c.id for c in view.members],
            })
        containers = []
        for c in view.members:
            if c.host_config.annotations.get(common.KIND) == common.CONTAINER_KIND:
                containers.append(container_status(c))
        return api_pb2.PodSandboxStatusResponse(status=status, info=info,
                                                containers_statuses=containers,
                                                timestamp=0)

    async def ListPodSandbox(self, request: api_pb2.ListPodSandboxRequest,
                             context: Context) -> api_pb2.ListPodSandboxResponse:
        f = request.filter if request.HasField("filter") else None
        views = await self.core.pods.list()
        items = []
        for view in views:
            if view.pod.config.annotations.get(common.KIND) != common.SANDBOX_KIND:
                continue
            if f is not None:
                if f.id and not view.pod.id.startswith(f.id):
                    continue
                if f.HasField("state") and sandbox_state(view) != f.state.state:
                    continue
                if not common.labels_match(view.pod.config.labels, f.label_selector):
                    continue
            items.append(self._sandbox(view))
        return api_pb2.ListPodSandboxResponse(items=items)


