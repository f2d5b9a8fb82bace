"""The streaming server's backend over the core API: exec, attach and port-forward for real.

Exec and attach are the core's protocol-neutral stream sessions (``execs.start``,
``attach.attach``): one task runs the session's ``relay`` and queues its output for
``read_output``; stdin, resizes and the stdin half-close are fed to the relay as
``StreamInput``. The input iterator ends only when the session is closed, never by itself,
so a client that vanishes does not close an attached container's stdin; closing a session
kills an exec that still runs and detaches an attachment. Port-forward asks the core for the
network namespace of the pod (its pinned netns or its infra's) and connects inside it
(``netns_socket.open_connection_in_netns``): no iptables, nothing started in the pod.

CRI clients have no detach keys, so stdin is never scanned for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from servin.engine.containers.streams import STDERR, AttachOptions, StreamInput
from servin.engine.containers.streams import StreamSession as CoreSession
from servin.engine.engine import CoreAPI
from servin.engine.linux.netns_socket import open_connection_in_netns
from servin.errors import Conflict, NotFound, ServinError, Unavailable

log = logging.getLogger(__name__)

# Output chunks held for a slow client before the relay stops reading the process.
OUTPUT_QUEUE = 16
INPUT_QUEUE = 16
# How long an attachment whose output ended waits for the container's exit code.
ATTACH_EXIT_WAIT = 2.0


class CoreStreamSession:
    """A core stream session seen through the streaming server's ``StreamSession`` protocol."""

    def __init__(self, core: CoreSession, *, on_close: Callable[[], Awaitable[None]] | None,
                 exit_code: Callable[[], Awaitable[int]]) -> None:
        self._core = core
        self._on_close = on_close
        self._exit_code = exit_code
        # Bounded: a client writing faster than the process reads waits (back-pressure), its
        # data is never piled up here.
        self._inputs: asyncio.Queue[StreamInput] = asyncio.Queue(INPUT_QUEUE)
        self._outputs: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue(OUTPUT_QUEUE)
        self._ended = False
        self._closed = False
        self._pump = asyncio.get_running_loop().create_task(self._run())

    async def _input_stream(self) -> AsyncIterator[StreamInput]:
        # Never ends by itself (an ended iterator would close the process's stdin): the relay
        # is cancelled when the session closes.
        while True:
            yield await self._inputs.get()

    async def _run(self) -> None:
        try:
            async for out in self._core.relay(self._input_stream()):
                if out.detached:  # not reachable without detach keys; end cleanly anyway
                    break
                await self._outputs.put(("stderr" if out.stream == STDERR else "stdout",
                                         out.data))
        except (ServinError, OSError) as exc:
            log.info("streaming: the session's stream ended: %s", exc)
        finally:
            self._ended = True
            with contextlib.suppress(asyncio.QueueFull):
                self._outputs.put_nowait(None)

    async def _send(self, item: StreamInput) -> None:
        if not (self._closed or self._ended):
            await self._inputs.put(item)

    async def write_stdin(self, data: bytes) -> None:
        """Pass bytes to the process's stdin (waits while the process does not read)."""
        await self._send(StreamInput(data=data))

    async def close_stdin(self) -> None:
        """The client ended its input: the process's stdin gets EOF."""
        await self._send(StreamInput(close_stdin=True))

    async def read_output(self) -> tuple[str, bytes] | None:
        """The next output chunk; None once the output ended."""
        if self._ended and self._outputs.empty():
            return None
        return await self._outputs.get()

    async def resize(self, width: int, height: int) -> None:
        """The client's terminal size (rows = height, cols = width)."""
        if width > 0 and height > 0:
            await self._send(StreamInput(rows=height, cols=width))

    async def wait(self) -> int:
        """The process's exit code."""
        return await self._exit_code()

    async def close(self) -> None:
        """Kill a running exec / detach an attachment; release the stream. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._on_close is not None:
            with contextlib.suppress(ServinError, OSError):
                await self._on_close()
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._pump
        # A session that was never relayed (cancelled early) still holds its stream.
        with contextlib.suppress(ServinError, OSError):
            await self._core.close()


class CoreStreamingBackend:
    """``StreamingBackend`` over ``CoreAPI``: what the daemon gives its streaming server."""

    def __init__(self, api: CoreAPI) -> None:
        self.api = api

    async def pod_netns(self, pod_id: str) -> str:
        """The network namespace file of a pod (the CRI's sandbox): the pinned one the CRI
        made for it, else its infra container's. An ID that names no pod is taken as a
        container's (a port-forward into a lone container)."""
        try:
            pod = await self.api.pods.get(pod_id)
        except NotFound:
            return await self.api.containers.netns_path(pod_id)
        if pod.config.netns_path:
            return pod.config.netns_path
        if not pod.infra_id:
            raise Conflict(f"pod {pod.name} has no infra container")
        try:
            return await self.api.containers.netns_path(pod.infra_id)
        except Conflict:
            raise Conflict(f"pod {pod.name} is not running") from None

    async def exec(self, container_id: str, cmd: Sequence[str], *, tty: bool, stdin: bool,
                   stdout: bool, stderr: bool) -> CoreStreamSession:
        """Start ``cmd`` in the running container; its session."""
        execs = self.api.execs
        record = await execs.create(container_id, list(cmd), tty=tty, attach_stdin=stdin,
                                    attach_stdout=stdout, attach_stderr=stderr,
                                    detachable=False)
        session = await execs.start(record.id)
        if session is None:  # only a detached start has none
            raise Conflict(f"exec {record.id} started without its streams")

        async def kill() -> None:
            await execs.kill(record.id)

        async def exit_code() -> int:
            return await execs.wait(record.id)

        return CoreStreamSession(session, on_close=kill, exit_code=exit_code)

    async def attach(self, container_id: str, *, tty: bool, stdin: bool, stdout: bool,
                     stderr: bool) -> CoreStreamSession:
        """Attach to the running container's main process."""
        c = await self.api.containers.get(container_id)
        if not c.state.running:
            raise Conflict(f"container {c.id} is not running")
        session = await self.api.attach.attach(
            c.id, AttachOptions(stdin=stdin, stdout=stdout, stderr=stderr, detachable=False,
                                close_stdin=c.config.stdin_once))

        async def exit_code() -> int:
            # The output ended: the container exited (its code follows shortly) or the
            # attachment ended otherwise (0, as the kubelet reports an ended attach).
            try:
                return await asyncio.wait_for(session.exit_code(), ATTACH_EXIT_WAIT)
            except (TimeoutError, ServinError):
                return 0

        return CoreStreamSession(session, on_close=None, exit_code=exit_code)

    async def port_forward(self, pod_id: str,
                           port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to ``port`` on the pod's loopback, made inside its network namespace."""
        path = await self.pod_netns(pod_id)
        try:
            return await open_connection_in_netns(path, port)
        except OSError as exc:
            raise Unavailable(f"failed to connect to localhost:{port} inside namespace of "
                              f"{pod_id}: {exc.strerror or exc}") from None
