"""ExecSync: run a command in a container and answer its output and exit code.

Over the core's execs. With a timeout, the process is killed when it runs out (containerd
does the same; leaving it running is what made critest's "execSync with timeout" fail for
other runtimes) and the call fails with DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator

from servin.api.cri.runtime.v1 import api_pb2
from servin.engine.containers.streams import StreamInput
from servin.engine.server.cri.base import Verbs
from servin.engine.server.grpc.rpc import Context
from servin.errors import DeadlineExceeded, InvalidArgument, ServinError

# What one ExecSync answers at most per stream (the kubelet's gRPC message limit is 16 MiB).
MAX_OUTPUT = 16 * 1024 * 1024 - 64 * 1024


async def _no_input() -> AsyncIterator[StreamInput]:
    return
    yield  # an async generator that yields nothing


class ExecSyncVerbs(Verbs):
    """ExecSync."""

    async def ExecSync(self, request: api_pb2.ExecSyncRequest,
                       context: Context) -> api_pb2.ExecSyncResponse:
        if not request.cmd:
            raise InvalidArgument("ExecSync: cmd is required")
        if request.timeout < 0:
            raise InvalidArgument("ExecSync: timeout must not be negative")
        c = await self.cri_container(request.container_id)
        record = await self.core.execs.create(c.id, list(request.cmd), attach_stdin=False,
                                              attach_stdout=True, attach_stderr=True)
        try:
            session = await self.core.execs.start(record.id)
        except ServinError as exc:
            # A command that cannot be run ends as a shell would report it (126/127).
            code = (await self.core.execs.inspect(record.id)).exit_code
            if code is None:
                raise
            return api_pb2.ExecSyncResponse(stderr=f"{exc.message}\n".encode(), exit_code=code)
        assert session is not None
        out = {1: bytearray(), 2: bytearray()}

        async def collect() -> int:
            async for item in session.relay(_no_input()):
                buf = out.get(item.stream)
                if buf is not None and len(buf) < MAX_OUTPUT:
                    buf.extend(item.data[: MAX_OUTPUT - len(buf)])
            return await session.exit_code()

        try:
            if request.timeout > 0:
                code = await asyncio.wait_for(collect(), request.timeout)
            else:
                code = await collect()
        except TimeoutError:
            await self.core.execs.kill(record.id, signal.SIGKILL)
            raise DeadlineExceeded(
                f"command {list(request.cmd)!r} timed out after {request.timeout}s "
                "(the process was killed)") from None
        except BaseException:
            # The client went away: the process must not outlive its call.
            with contextlib.suppress(ServinError):
                await asyncio.shield(self.core.execs.kill(record.id, signal.SIGKILL))
            raise
        finally:
            await session.close()
        return api_pb2.ExecSyncResponse(stdout=bytes(out[1]), stderr=bytes(out[2]),
                                        exit_code=code)
