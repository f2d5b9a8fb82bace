"""ContainerStatus and ListContainers: core containers marked as CRI containers, in the CRI's
terms."""

from __future__ import annotations

import json

from servin.api.cri.runtime.v1 import api_pb2
from servin.engine.containers.model import CREATED, EXITED, Container
from servin.engine.server.cri import common
from servin.engine.server.cri.base import Verbs
from servin.engine.server.grpc.rpc import Context
from servin.engine.server.grpc.wirecache import WireCache
from servin.protowire import framed

_PROPAGATION = {
    "rprivate": api_pb2.PROPAGATION_PRIVATE, "private": api_pb2.PROPAGATION_PRIVATE,
    "": api_pb2.PROPAGATION_PRIVATE,
    "rslave": api_pb2.PROPAGATION_HOST_TO_CONTAINER, "slave": api_pb2.PROPAGATION_HOST_TO_CONTAINER,
    "rshared": api_pb2.PROPAGATION_BIDIRECTIONAL, "shared": api_pb2.PROPAGATION_BIDIRECTIONAL,
}


def container_metadata(c: Container) -> api_pb2.ContainerMetadata:
    """The metadata CreateContainer was given."""
    meta = common.load(c.host_config.annotations.get(common.METADATA, ""))
    return api_pb2.ContainerMetadata(name=str(meta.get("name", "")),
                                     attempt=int(meta.get("attempt", 0)))


def _image_spec(c: Container) -> api_pb2.ImageSpec:
    return api_pb2.ImageSpec(image=c.host_config.annotations.get(common.IMAGE, c.image_ref))


def _reason(c: Container) -> str:
    state = c.state
    if state.status == EXITED or (state.status != CREATED and not state.running):
        if state.oom_killed:
            return "OOMKilled"
        if state.error:
            return "StartError" if not state.started_at_ns else "Error"
        return "Completed" if state.exit_code == 0 else "Error"
    return ""


def container_status(c: Container) -> api_pb2.ContainerStatus:
    """A core container as the CRI's ContainerStatus."""
    state = c.state
    status = api_pb2.ContainerStatus(
        id=c.id, metadata=container_metadata(c), state=common.container_state(state.status),
        created_at=c.created_ns, image=_image_spec(c), image_ref=c.image_id,
        image_id=c.image_id, labels=c.config.labels,
        annotations=common.visible(c.host_config.annotations),
        log_path=c.host_config.annotations.get(common.LOG_PATH, ""),
        mounts=[api_pb2.Mount(container_path=m.target, host_path=m.source,
                              readonly=m.read_only,
                              propagation=_PROPAGATION.get(m.propagation,
                                                           api_pb2.PROPAGATION_PRIVATE))
                for m in c.mounts if m.type == "bind"],
    )
    if state.status != CREATED and state.started_at_ns:
        status.started_at = state.started_at_ns
    if status.state == api_pb2.CONTAINER_EXITED:
        status.finished_at = state.finished_at_ns
        status.exit_code = state.exit_code
        status.reason = _reason(c)
        status.message = state.error
    r = c.host_config.resources
    status.resources.linux.CopyFrom(api_pb2.LinuxContainerResources(
        cpu_period=r.cpu_period, cpu_quota=r.cpu_quota, cpu_shares=r.cpu_shares,
        memory_limit_in_bytes=r.memory, oom_score_adj=r.oom_score_adj,
        cpuset_cpus=r.cpuset_cpus, cpuset_mems=r.cpuset_mems,
        memory_swap_limit_in_bytes=r.memory_swap))
    return status


def list_item(c: Container) -> api_pb2.Container:
    """A core container as an element of ListContainers' answer."""
    annotations = c.host_config.annotations
    return api_pb2.Container(
        id=c.id, pod_sandbox_id=c.pod_id, metadata=container_metadata(c),
        image=api_pb2.ImageSpec(image=annotations.get(common.IMAGE, c.image_ref)),
        image_ref=c.image_id, image_id=c.image_id,
        state=common.container_state(c.state.status), created_at=c.created_ns,
        labels=c.config.labels, annotations=common.visible(annotations))


def list_element(c: Container) -> bytes:
    """``list_item`` encoded as one element of ListContainersResponse.containers (field 1)."""
    return framed(1, list_item(c).SerializeToString())


def _selected(c: Container, f: api_pb2.ContainerFilter | None) -> bool:
    """Whether a core container is a CRI container the filter lets through (read on the
    view's fields: no message is built for what is left out)."""
    if c.host_config.annotations.get(common.KIND) != common.CONTAINER_KIND:
        return False
    if f is None:
        return True
    if f.id and not c.id.startswith(f.id):
        return False
    if f.pod_sandbox_id and not c.pod_id.startswith(f.pod_sandbox_id):
        return False
    if f.HasField("state") and common.container_state(c.state.status) != f.state.state:
        return False
    return common.labels_match(c.config.labels, f.label_selector)


class ContainerStatusVerbs(Verbs):
    """ContainerStatus, ListContainers."""

    # Each container's encoded element per view version (one cache per servicer).
    _listed: WireCache[Container]

    async def ContainerStatus(self, request: api_pb2.ContainerStatusRequest,
                              context: Context) -> api_pb2.ContainerStatusResponse:
        c = await self.cri_container(request.container_id)
        info: dict[str, str] = {}
        if request.verbose:
            info["info"] = json.dumps({
                "pid": c.state.pid, "sandboxID": c.pod_id, "name": c.name,
                "runtime": c.host_config.runtime, "config": {
                    "user": c.config.user, "env": c.config.env,
                    "entrypoint": c.config.entrypoint, "cmd": c.config.cmd},
                "privileged": c.host_config.privileged,
            })
        status = container_status(c)
        user = await self.core.containers.process_user(c.id)
        if user is not None:
            status.user.linux.CopyFrom(api_pb2.LinuxContainerUser(
                uid=user.uid, gid=user.gid, supplemental_groups=user.additional_gids))
        return api_pb2.ContainerStatusResponse(status=status, info=info)

    async def ListContainers(self, request: api_pb2.ListContainersRequest,
                             context: Context) -> bytes:
        """The encoded ListContainersResponse (registered with a passthrough serializer):
        each container's message comes from the cache of its current version."""
        f = request.filter if request.HasField("filter") else None
        entries = self.core.containers.entries()
        cache = self._listed
        out = [cache.get(e.container.id, e.version, e.container)
               for e in entries if _selected(e.container, f)]
        cache.prune(e.container.id for e in entries)
        return b"".join(out)
