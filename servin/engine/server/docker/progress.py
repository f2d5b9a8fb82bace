"""Long operations answered as docker's JSON message streams (pull, push, load, build).

dockerd sends its response head with the first progress message, so an operation that fails
before it has anything to say (a bad reference, an unknown image, a refused login) gets a
plain error response with its status; once the stream has started, a failure is the final
``{"errorDetail": ...}`` message. ``stream_operation`` does both: it runs the operation as a
task fed by a reporter, waits for its first event or its end, and only then answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

from servin.engine.server.docker.http import Request
from servin.engine.server.docker.streams import JSONMessages
from servin.errors import ServinError

E = TypeVar("E")
R = TypeVar("R")

_END = object()


class Operation(Generic[E, R]):
    """A running operation: its events in order, then its result (or its error)."""

    def __init__(self, run: Callable[[Callable[[E], None]], Coroutine[Any, Any, R]]) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self.task: asyncio.Task[R] = asyncio.ensure_future(run(self._queue.put_nowait))
        self.task.add_done_callback(lambda _: self._queue.put_nowait(_END))

    async def next(self) -> tuple[bool, Any]:
        """(True, event) for the next event, or (False, None) once the operation ended."""
        item = await self._queue.get()
        if item is _END:
            return False, None
        return True, item

    async def cancel(self) -> None:
        """Stop the operation (the client left) and wait for it to unwind."""
        if not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def stream_operation(
    req: Request,
    run: Callable[[Callable[[E], None]], Coroutine[Any, Any, R]],
    on_event: Callable[[JSONMessages, E], Awaitable[None]],
    on_result: Callable[[JSONMessages, R], Awaitable[None]],
    *,
    hold: int = 1,
    content_type: str = "application/json",
) -> None:
    """Run ``run(report)``; answer with its events as JSON messages, then its result.

    The response starts once ``hold`` events have come (a pull's "Pulling from" line comes
    before the registry has said whether the image exists: ``hold=2`` waits for more); an
    error raised before that is raised here (a normal error response with its status), one
    raised later ends the stream with docker's error message.
    """
    op: Operation[E, R] = Operation(run)
    try:
        held: list[Any] = []
        more = True
        while more and len(held) < hold:
            more, event = await op.next()
            if more:
                held.append(event)
        if not more:
            result = op.task.result()  # raises the operation's error before any output
        out = JSONMessages((await req.stream(200, content_type)).write)
        for event in held:
            await on_event(out, event)
        while more:
            more, event = await op.next()
            if more:
                await on_event(out, event)
        try:
            result = op.task.result()
        except ServinError as exc:
            await out.error(exc.message)
            return
        await on_result(out, result)
    finally:
        await op.cancel()
