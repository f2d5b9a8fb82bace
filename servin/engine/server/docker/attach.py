"""Attach, logs and resize of containers on the Docker API.

Attach hijacks the connection (``101 UPGRADED``): the client's bytes are the container's
stdin (its half-close closes stdin), the container's output goes back in 8-byte multiplexed
frames, or raw with a terminal. Logs stream the json-file log the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from servin.engine.containers.model import PAUSED, RUNNING
from servin.engine.containers.streams import AttachOptions, StreamInput, StreamSession
from servin.engine.engine import CoreAPI
from servin.engine.server.docker import params
from servin.engine.server.docker.http import (
    MULTIPLEXED_STREAM,
    RAW_STREAM,
    Hijacked,
    Request,
    Response,
)
from servin.engine.server.docker.router import Router
from servin.engine.server.docker.streams import MuxWriter, encode_frame
from servin.engine.server.docker.versions import version_at_least
from servin.errors import Conflict, InvalidArgument

OutputWriter = Callable[[int, bytes], Awaitable[None]]


async def stdin_inputs(chunks: AsyncIterator[bytes], eof: asyncio.Event | None
                       ) -> AsyncIterator[StreamInput]:
    """The client's bytes as stdin. Their end (the client's half-close) ends the inputs (the
    process's stdin is closed), or with ``eof`` sets it instead (the attach ends)."""
    async for data in chunks:
        yield StreamInput(data=data)
    if eof is not None:
        eof.set()
        await asyncio.Event().wait()  # until the relay is closed


async def relay_session(session: StreamSession, chunks: AsyncIterator[bytes],
                        write: OutputWriter, *, end_on_eof: bool = False) -> bool:
    """Pump a stream session between a client's stdin bytes and ``write(stream, data)``
    until the output ends, the client detaches (True then) or, with ``end_on_eof``, its
    stdin ends (dockerd's attach of a container without StdinOnce, or with a terminal)."""
    eof = asyncio.Event() if end_on_eof and session.stdin else None

    async def pump() -> bool:
        # Closed at once on every way out: its end detaches from the process.
        async with contextlib.aclosing(session.relay(stdin_inputs(chunks, eof))) as outs:
            async for out in outs:
                if out.detached:
                    return True
                await write(out.stream, out.data)
        return False

    if eof is None:
        return await pump()
    loop = asyncio.get_running_loop()
    task = loop.create_task(pump())
    ended = loop.create_task(eof.wait())
    try:
        await asyncio.wait((task, ended), return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return task.result() if not task.cancelled() else False


async def relay_hijacked(session: StreamSession, conn: Hijacked, tty: bool, *,
                         end_on_eof: bool = False) -> bool:
    """``relay_session`` over a hijacked connection: multiplexed frames without a terminal,
    raw bytes with one."""
    writer = conn.writer

    async def write(stream: int, data: bytes) -> None:
        await writer.write(data if tty else encode_frame(stream, data))

    detached = await relay_session(session, aiter(conn.reader), write, end_on_eof=end_on_eof)
    await writer.drain()
    return detached


def log_stream_type(req: Request, tty: bool) -> str:
    """The content type of a logs response (API >= 1.42 says whether it is multiplexed)."""
    if not tty and version_at_least(req.api_version, "1.42"):
        return MULTIPLEXED_STREAM
    return RAW_STREAM


def log_time(ns: int) -> bytes:
    """A log line's timestamp as dockerd writes it (RFC 3339 with 9 fixed decimals)."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{nanos:09d}Z".encode()


def _tail(req: Request) -> int:
    text = req.query_value("tail", "all").strip()
    if text in ("", "all"):
        return -1
    try:
        value = int(text)
    except ValueError:
        raise InvalidArgument(f"invalid value for tail: {text!r}") from None
    return value if value >= 0 else -1


class AttachRoutes:
    """POST /containers/{name}/attach, /resize and GET /logs."""

    def __init__(self, core: CoreAPI) -> None:
        self.core = core

    def register(self, router: Router) -> None:
        """Declare the routes."""
        router.add("POST", "/containers/{name}/attach", self.attach)
        router.add("POST", "/containers/{name}/resize", self.resize)
        router.add("GET", "/containers/{name}/logs", self.logs)

    async def attach(self, req: Request) -> Response | None:
        """POST /containers/{name}/attach?stream=&logs=&stdin=&stdout=&stderr=&detachKeys="""
        name = req.params["name"]
        c = await self.core.containers.get(name)
        stream = params.bool_value(req, "stream")
        logs = params.bool_value(req, "logs")
        if not stream and not logs:
            raise InvalidArgument("Bad parameters: you must choose at least one stream")
        if c.state.status == PAUSED and stream:
            raise InvalidArgument(f"container {c.id} is paused, unpause the container before "
                                  "attach")
        stdin = params.bool_value(req, "stdin")
        stdout = params.bool_value(req, "stdout")
        stderr = params.bool_value(req, "stderr")
        tty = c.config.tty
        session = None
        close_stdin = False
        if stream:
            # dockerd: the client's end of stdin closes the container's only for a
            # container created with StdinOnce and no terminal; else it ends the attach.
            close_stdin = c.config.stdin_once and not tty
            session = await self.core.attach.attach(c.id, AttachOptions(
                stdin=stdin, stdout=stdout, stderr=stderr,
                detach_keys=req.query_value("detachKeys"), close_stdin=close_stdin))
        try:
            conn = await req.hijack(multiplexed=not tty)
            if logs and (stdout or stderr):
                mux = MuxWriter(conn.writer.write)
                async for chunk in self.core.logs.read(c.id, stdout=stdout, stderr=stderr):
                    for number, _, data in chunk.records():
                        if tty:
                            await conn.writer.write(bytes(data))
                        else:
                            await mux.add_and_maybe_flush(number, bytes(data))
                await mux.flush()
            if session is not None:
                await relay_hijacked(session, conn, tty, end_on_eof=not close_stdin)
                session = None
        finally:
            if session is not None:
                await session.close()
        return None

    async def resize(self, req: Request) -> Response:
        """POST /containers/{name}/resize?h=&w="""
        rows, cols = params.terminal_size(req)
        c = await self.core.containers.get(req.params["name"])
        if c.state.status not in (RUNNING, PAUSED):
            raise Conflict(f"Container {c.id} is not running")
        await self.core.attach.resize(c.id, rows, cols)
        return Response(200, content_type="text/plain; charset=utf-8")

    async def logs(self, req: Request) -> Response | None:
        """GET /containers/{name}/logs?stdout=&stderr=&follow=&since=&until=&timestamps=
        &tail=&details="""
        stdout = params.bool_value(req, "stdout")
        stderr = params.bool_value(req, "stderr")
        if not (stdout or stderr):
            raise InvalidArgument("Bad parameters: you must choose at least one stream")
        c = await self.core.containers.get(req.params["name"])
        timestamps = params.bool_value(req, "timestamps")
        details = params.bool_value(req, "details")
        until = params.timestamp(req, "until")
        follow = params.bool_value(req, "follow")
        chunks = self.core.logs.read(
            c.id, follow=follow, tail=_tail(req),
            since_ns=params.timestamp(req, "since"), until_ns=until, stdout=stdout,
            stderr=stderr, timestamps=timestamps, details=details)
        # A log that cannot be read is an error before the status line: the first chunk is
        # read first; when following (which may wait for output), an empty read checks.
        if follow:
            async for _ in self.core.logs.read(c.id, tail=0, stdout=stdout, stderr=stderr):
                pass
            first = None
        else:
            first = await anext(chunks, None)
        tty = c.config.tty
        out = await req.stream(200, log_stream_type(req, tty))
        mux = MuxWriter(out.write)
        try:
            chunk = first if not follow else await anext(chunks, None)
            while chunk is not None:
                prefix_attrs = ""
                if details and chunk.attrs:
                    prefix_attrs = ",".join(f"{k}={v}" for k, v in chunk.attrs.items()) + " "
                for number, time_ns, data in chunk.records():
                    payload = bytes(data)
                    if details:
                        payload = prefix_attrs.encode() + payload
                    if timestamps:
                        payload = log_time(time_ns) + b" " + payload
                    if tty:
                        await out.write(payload)
                    else:
                        await mux.add_and_maybe_flush(number, payload)
                await mux.flush()
                chunk = await anext(chunks, None)
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]  # an async generator
        return None
