"""UpdateContainerResources and ReopenContainerLog."""

from __future__ import annotations

from servin.api.cri.runtime.v1 import api_pb2
from servin.engine.containers.model import RESOURCE_FIELDS
from servin.engine.server.cri import common, security
from servin.engine.server.cri.base import Verbs
from servin.engine.server.grpc.rpc import Context
from servin.errors import Conflict

# The CRI's LinuxContainerResources fields and the core's Resources fields they set.
_FIELDS = ("memory", "memory_swap", "cpu_shares", "cpu_period", "cpu_quota", "cpuset_cpus",
           "cpuset_mems")
assert set(_FIELDS) <= set(RESOURCE_FIELDS)


class ContainerUpdateVerbs(Verbs):
    """UpdateContainerResources, ReopenContainerLog."""

    async def UpdateContainerResources(
            self, request: api_pb2.UpdateContainerResourcesRequest,
            context: Context) -> api_pb2.UpdateContainerResourcesResponse:
        c = await self.cri_container(request.container_id)
        if request.HasField("linux"):
            resources = security.resources(request.linux)
            fields = [f for f in _FIELDS if getattr(resources, f)]
            if fields:
                await self.core.containers.update(c.id, resources, fields, None)
        return api_pb2.UpdateContainerResourcesResponse()

    async def ReopenContainerLog(self, request: api_pb2.ReopenContainerLogRequest,
                                 context: Context) -> api_pb2.ReopenContainerLogResponse:
        c = await self.cri_container(request.container_id)
        if not c.host_config.annotations.get(common.LOG_PATH):
            raise Conflict(f"container {c.id} has no CRI log file")
        await self.core.containers.reopen_log(c.id)
        return api_pb2.ReopenContainerLogResponse()
