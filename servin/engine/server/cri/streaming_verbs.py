"""Exec, Attach and PortForward: validate, then register the request with the streaming
server, whose URL the client connects to (servin/engine/server/cri/streaming/)."""

from __future__ import annotations

from servin.api.cri.runtime.v1 import api_pb2
from servin.engine.containers.model import RUNNING
from servin.engine.server.cri.base import Verbs
from servin.engine.server.cri.streaming.server import (
    AttachRequest,
    ExecRequest,
    PortForwardRequest,
    StreamingServer,
)
from servin.engine.server.grpc.rpc import Context
from servin.errors import Conflict, Unavailable


class StreamingVerbs(Verbs):
    """The three streaming verbs."""

    def _server(self) -> StreamingServer:
        if self.streaming is None:
            raise Unavailable("the CRI streaming server is not running (see docs/cri.md)")
        return self.streaming

    async def _running(self, container_id: str) -> str:
        c = await self.cri_container(container_id)
        if c.state.status != RUNNING:
            raise Conflict(f"container {c.id} is not running")
        return c.id

    async def Exec(self, request: api_pb2.ExecRequest,
                   context: Context) -> api_pb2.ExecResponse:
        server = self._server()
        cid = await self._running(request.container_id)
        url = server.get_exec(ExecRequest(
            container_id=cid, cmd=tuple(request.cmd), tty=request.tty, stdin=request.stdin,
            stdout=request.stdout, stderr=request.stderr))
        return api_pb2.ExecResponse(url=url)

    async def Attach(self, request: api_pb2.AttachRequest,
                     context: Context) -> api_pb2.AttachResponse:
        server = self._server()
        cid = await self._running(request.container_id)
        url = server.get_attach(AttachRequest(
            container_id=cid, tty=request.tty, stdin=request.stdin, stdout=request.stdout,
            stderr=request.stderr))
        return api_pb2.AttachResponse(url=url)

    async def PortForward(self, request: api_pb2.PortForwardRequest,
                          context: Context) -> api_pb2.PortForwardResponse:
        server = self._server()
        sandbox = await self.cri_sandbox(request.pod_sandbox_id)
        url = server.get_port_forward(PortForwardRequest(
            pod_id=sandbox.pod.id, ports=tuple(int(p) for p in request.port)))
        return api_pb2.PortForwardResponse(url=url)
