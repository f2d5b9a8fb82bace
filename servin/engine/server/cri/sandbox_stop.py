"""StopPodSandbox and RemovePodSandbox: both idempotent (an unknown sandbox is no error, as
the CRI asks), and both release the pod's CNI network (DEL, netns unpinned)."""

from __future__ import annotations

import contextlib

from servin.api.cri.runtime.v1 import api_pb2
from servin.engine.server.cri.base import Verbs
from servin.engine.server.cri.sandbox_status import network_id
from servin.engine.server.grpc.rpc import Context
from servin.errors import NotFound


class SandboxStopVerbs(Verbs):
    """StopPodSandbox, RemovePodSandbox."""

    async def StopPodSandbox(self, request: api_pb2.StopPodSandboxRequest,
                             context: Context) -> api_pb2.StopPodSandboxResponse:
        try:
            view = await self.cri_sandbox(request.pod_sandbox_id)
        except NotFound:
            return api_pb2.StopPodSandboxResponse()
        # As containerd: the containers are killed at once (the kubelet has already stopped
        # them with their grace periods), then the infra; the network goes with the sandbox.
        await self.core.pods.stop(view.pod.id, 0)
        key = network_id(view)
        if key:
            await self.core.pod_networks.teardown(key)
        return api_pb2.StopPodSandboxResponse()

    async def RemovePodSandbox(self, request: api_pb2.RemovePodSandboxRequest,
                               context: Context) -> api_pb2.RemovePodSandboxResponse:
        try:
            view = await self.cri_sandbox(request.pod_sandbox_id)
        except NotFound:
            return api_pb2.RemovePodSandboxResponse()
        with contextlib.suppress(NotFound):  # removed meanwhile
            await self.core.pods.remove(view.pod.id, force=True)
        key = network_id(view)
        if key:
            await self.core.pod_networks.teardown(key)
        return api_pb2.RemovePodSandboxResponse()
