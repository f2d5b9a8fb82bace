"""StartContainer, StopContainer, RemoveContainer (stop and remove are idempotent, as the CRI
asks: an unknown container is no error)."""

from __future__ import annotations

from servin.api.cri.runtime.v1 import api_pb2
from servin.engine.server.cri.base import Verbs
from servin.engine.server.grpc.rpc import Context
from servin.errors import InvalidArgument, NotFound


class ContainerLifecycleVerbs(Verbs):
    """StartContainer, StopContainer, RemoveContainer."""

    async def StartContainer(self, request: api_pb2.StartContainerRequest,
                             context: Context) -> api_pb2.StartContainerResponse:
        c = await self.cri_container(request.container_id)
        await self.core.containers.start(c.id)
        return api_pb2.StartContainerResponse()

    async def StopContainer(self, request: api_pb2.StopContainerRequest,
                            context: Context) -> api_pb2.StopContainerResponse:
        if request.timeout < 0:
            raise InvalidArgument("StopContainer: timeout must not be negative")
        try:
            c = await self.cri_container(request.container_id)
        except NotFound:
            return api_pb2.StopContainerResponse()
        if c.state.running:
            # A timeout of 0 is the kubelet's "kill now": SIGKILL, no stop signal first
            # (containerd does the same; a TERM first would race it and exit 143).
            signal = "" if request.timeout else "KILL"
            await self.core.containers.stop(c.id, int(request.timeout), signal=signal)
        return api_pb2.StopContainerResponse()

    async def RemoveContainer(self, request: api_pb2.RemoveContainerRequest,
                              context: Context) -> api_pb2.RemoveContainerResponse:
        try:
            c = await self.cri_container(request.container_id)
            # Anonymous volumes (the image's VOLUMEs) go with it, as containerd's do.
            await self.core.containers.remove(c.id, force=True, volumes=True)
        except NotFound:
            pass
        return api_pb2.RemoveContainerResponse()
