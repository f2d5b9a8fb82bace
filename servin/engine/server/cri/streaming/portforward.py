"""Kubernetes port-forward (``portforward.k8s.io``) over SPDY and over WebSocket channels.

- SPDY (also tunnelled in a WebSocket as ``SPDY/3.1+portforward.k8s.io``): for every forwarded
  connection the client opens an ``error`` and a ``data`` stream carrying the same ``port`` and
  ``requestID`` headers (without ``requestID``, the kubelet pairs an error stream N with the
  data stream N+2); any number of pairs share one session.
- WebSocket channels: the ports come with the request; port i uses channel 2i for data and 2i+1
  for errors, and the server first writes the port (2 bytes, little-endian) on both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Coroutine, Sequence
from typing import Any

from servin.engine.server.cri.streaming.backend import StreamingBackend
from servin.engine.server.cri.streaming.channels import ChannelSession
from servin.engine.server.cri.streaming.spdy import RstStatus
from servin.engine.server.cri.streaming.spdysession import SpdyStream
from servin.engine.server.cri.streaming.transport import InStream, OutStream, StreamClosedError

log = logging.getLogger(__name__)

PROTOCOL = "portforward.k8s.io"
TUNNEL_PROTOCOL = "SPDY/3.1+" + PROTOCOL
# WebSocket channel protocols of port-forward ("" when the client names none).
WS_CHANNEL_PROTOCOLS = {"": False, PROTOCOL: False, "v4.channel.k8s.io": False,
                        "v4.base64.channel.k8s.io": True}


async def forward(backend: StreamingBackend, pod_id: str, port: int, data_in: InStream,
                  data_out: OutStream) -> None:
    """Copy between the client's data stream and ``port`` in the pod until both sides end."""
    reader, writer = await backend.port_forward(pod_id, port)

    async def upstream() -> None:
        try:
            while data := await data_in.read():
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError) as exc:
            log.debug("port-forward %s:%d upstream ended: %s", pod_id, port, exc)

    async def downstream() -> None:
        try:
            while data := await reader.read(64 * 1024):
                await data_out.write(data)
        except (ConnectionError, OSError) as exc:
            log.debug("port-forward %s:%d downstream ended: %s", pod_id, port, exc)
        with contextlib.suppress(StreamClosedError):
            await data_out.close()

    up = asyncio.create_task(upstream())
    try:
        await downstream()
        # The pod side is done; the client may still be sending: give it a moment (as
        # containerd does), not forever.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(up), 1.0)
    finally:
        up.cancel()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _error_message(pod_id: str, port: int, exc: BaseException) -> bytes:
    return f"error forwarding port {port} to pod {pod_id}, uid : {exc}".encode()


class SpdyPortForward:
    """Pairs the data and error streams of a SPDY port-forward session and runs each pair."""

    def __init__(self, backend: StreamingBackend, pod_id: str,
                 creation_timeout: float) -> None:
        self.backend = backend
        self.pod_id = pod_id
        self.creation_timeout = creation_timeout
        self._pairs: dict[str, dict[str, SpdyStream]] = {}
        self._timers: dict[str, asyncio.Task[Any]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()

    def on_stream(self, stream: SpdyStream) -> bool:
        """Validate a new stream (port and streamType headers) and pair it."""
        port_text = stream.header("port")
        kind = stream.header("streamtype")
        try:
            port = int(port_text)
        except ValueError:
            log.info("port-forward stream with a bad port header %r refused", port_text)
            return False
        if not 0 < port < 65536 or kind not in ("data", "error"):
            log.info("port-forward stream (port %r, type %r) refused", port_text, kind)
            return False
        request_id = stream.header("requestid")
        if not request_id:
            request_id = str(stream.id if kind == "error" else stream.id - 2)
        pair = self._pairs.get(request_id)
        if pair is None:
            pair = self._pairs[request_id] = {}
            self._timers[request_id] = self._spawn(self._expire(request_id))
        if kind in pair:
            log.info("port-forward request %s: second %s stream refused", request_id, kind)
            return False
        pair[kind] = stream
        if kind == "error":
            stream.discard()  # the server only writes there
        if len(pair) == 2:
            del self._pairs[request_id]
            self._timers.pop(request_id).cancel()
            self._spawn(self._run_pair(pair["data"], pair["error"], port))
        return True

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _expire(self, request_id: str) -> None:
        await asyncio.sleep(self.creation_timeout)
        pair = self._pairs.pop(request_id, None)
        self._timers.pop(request_id, None)
        if pair is None:
            return
        error = pair.get("error")
        if error is not None:
            with contextlib.suppress(StreamClosedError):
                await error.write(f"timed out waiting for streams of request {request_id}"
                                  .encode())
        for stream in pair.values():
            stream.reset()

    async def _run_pair(self, data: SpdyStream, error: SpdyStream, port: int) -> None:
        try:
            await forward(self.backend, self.pod_id, port, data, data)
        except Exception as exc:
            log.info("port-forward to %s:%d failed: %s", self.pod_id, port, exc)
            with contextlib.suppress(StreamClosedError):
                await error.write(_error_message(self.pod_id, port, exc))
            data.reset(RstStatus.CANCEL)
            error.reset(RstStatus.CANCEL)
            return
        with contextlib.suppress(StreamClosedError):
            await error.close()

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def websocket_forward(backend: StreamingBackend, pod_id: str, ports: Sequence[int],
                            channels: ChannelSession) -> None:
    """Forward every port of the request over its channel pair; returns when all are done."""

    async def one(index: int, port: int) -> None:
        data_out = channels.writer(2 * index)
        error_out = channels.writer(2 * index + 1)
        prefix = struct.pack("<H", port)
        await data_out.write(prefix)
        await error_out.write(prefix)
        try:
            await forward(backend, pod_id, port, channels.reader(2 * index), data_out)
        except Exception as exc:
            log.info("port-forward to %s:%d failed: %s", pod_id, port, exc)
            with contextlib.suppress(StreamClosedError):
                await error_out.write(_error_message(pod_id, port, exc))

    await asyncio.gather(*(one(i, p) for i, p in enumerate(ports)))
