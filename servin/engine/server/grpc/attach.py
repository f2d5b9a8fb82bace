"""Relaying one attach or exec stream between a gRPC client and a monitor attachment.

Output frames go to the client as ``AttachOutput``; the client's messages (``AttachInput``
or ``ExecInput``: ``data``, ``rows``/``cols``, ``close_stdin``) go to the process. With a
terminal, stdin is scanned for the detach keys: when typed, the stream ends with
``detached=True`` and the process keeps running with its stdin open (as docker does, keys are
only honoured with a terminal, so binary stdin through pipes is never cut).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from servin.api.servin.v1 import containers_pb2
from servin.engine.containers.detachkeys import DetachScanner
from servin.engine.runtime.monitor.client import Attachment
from servin.errors import ServinError

_END = object()
_DETACHED = object()
OUTPUT_QUEUE = 64  # frames buffered towards a slow client before the monitor is not read


async def relay(
    attachment: Attachment,
    messages: AsyncIterator[Any],
    *,
    stdin: bool,
    detach_keys: bytes | None,
    resize: Callable[[int, int], Awaitable[None]],
    detach: Callable[[], Awaitable[None]],
) -> AsyncIterator[containers_pb2.AttachOutput]:
    """Relay until the process's output ends, the client detaches, or it goes away.

    Yields the output; the last message is ``detached=True`` if the client detached. The
    attachment is closed on return.
    """
    queue: asyncio.Queue[object] = asyncio.Queue(OUTPUT_QUEUE)
    scanner = DetachScanner(detach_keys) if detach_keys and stdin else None

    async def pump_output() -> None:
        try:
            async for item in attachment:
                await queue.put(item)
        finally:
            await queue.put(_END)

    async def pump_input() -> None:
        try:
            async for msg in messages:
                if msg.data and stdin:
                    data, detached = scanner.feed(msg.data) if scanner else (msg.data, False)
                    if data:
                        await attachment.write(data)
                    if detached:
                        await detach()
                        await queue.put(_DETACHED)
                        return
                if msg.rows and msg.cols:
                    with contextlib.suppress(ServinError):
                        await resize(msg.rows, msg.cols)
                if msg.close_stdin and stdin:
                    await attachment.close_stdin()
            if stdin:
                await attachment.close_stdin()
        except (ServinError, OSError):
            pass  # the process or its monitor is gone: the output side ends the stream

    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(pump_output()), loop.create_task(pump_input())]
    try:
        while True:
            item = await queue.get()
            if item is _END:
                break
            if item is _DETACHED:
                yield containers_pb2.AttachOutput(detached=True)
                break
            stream, data = item  # type: ignore[misc]
            yield containers_pb2.AttachOutput(stream=stream, data=data)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await attachment.close()
