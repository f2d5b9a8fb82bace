"""Attach and exec streams, protocol-neutral: what every door relays to its own wire format.

A door opens a session (``AttachService.attach`` for a container's streams,
``ExecService.start`` for an exec) and then runs ``session.relay(inputs)``: the door turns
its wire messages into ``StreamInput`` (stdin bytes, a terminal size, a stdin half-close) and
the session's ``StreamOutput`` back into its wire format (servin.v1 messages, the Docker API's
hijacked connection, the CRI's streaming channels). ``exit_code()`` tells how the process
ended. With a terminal, stdin is scanned for the detach keys: when typed, the relay ends with
``detached`` and the process keeps running with its stdin open (as docker does, keys are
only honoured with a terminal, so binary stdin through pipes is never cut).

Attach to a created container is docker's attach-then-start: ``attach`` returns once the
request is registered (the door tells its client, which may start the container then); the
session gets its monitor attachment when the container starts, before its program runs, so
no output is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from servin.engine.containers.detachkeys import DetachScanner, parse_detach_keys
from servin.engine.containers.locks import ContainerLocks
from servin.engine.containers.model import PAUSED, RUNNING, Container
from servin.engine.containers.monitors import Monitors, WaitingAttach
from servin.engine.containers.store import ContainerStore
from servin.engine.runtime.monitor.client import Attachment
from servin.errors import Conflict, ServinError

STDOUT = 1
STDERR = 2
OUTPUT_QUEUE = 64  # frames buffered towards a slow client before the monitor is not read
# What the relay's queue carries: output frames, then "end" or "detached".
_Item = tuple[int, bytes] | Literal["end", "detached"]


@dataclass(frozen=True)
class StreamInput:
    """One thing a client sends: stdin bytes, a terminal resize, or a stdin half-close."""

    data: bytes = b""
    rows: int = 0  # non-zero (with cols): the terminal's new size
    cols: int = 0
    close_stdin: bool = False


@dataclass(frozen=True)
class StreamOutput:
    """One thing the process sends: output bytes on a stream, or the detach notice."""

    stream: int = STDOUT  # 1 stdout, 2 stderr (a terminal merges both into 1)
    data: bytes = b""
    detached: bool = False  # last item: the client typed the detach keys


@dataclass(frozen=True)
class AttachOptions:
    """Which of a container's streams to attach."""

    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    detach_keys: str = ""  # docker's syntax; "" = ctrl-p,ctrl-q (honoured with a terminal)
    detachable: bool = True  # False: stdin is never scanned for detach keys (the CRI's)
    # Whether this client's end of stdin (or its going away) closes the process's stdin:
    # None = whenever it attaches stdin (servin's doors); docker's attach does it only for a
    # container created with StdinOnce and no terminal.
    close_stdin: bool | None = None


class StreamSession:
    """One attach or exec stream of a process in a container."""

    def __init__(
        self,
        attachment: Attachment | asyncio.Future[Attachment],
        *,
        stdin: bool,
        detach_keys: bytes | None,
        resize: Callable[[int, int], Awaitable[None]],
        detach: Callable[[Attachment], Awaitable[None]],
        exit_code: Callable[[], Awaitable[int]],
        streams: frozenset[int] = frozenset({STDOUT, STDERR}),
    ) -> None:
        self._attachment = attachment
        self.stdin = stdin
        self._keys = detach_keys
        self._resize = resize
        self._detach = detach
        self._exit_code = exit_code
        self._streams = streams

    async def resize(self, rows: int, cols: int) -> None:
        """Set the process's terminal size (ignored without a terminal)."""
        await self._resize(rows, cols)

    async def exit_code(self) -> int:
        """Wait for the process to end; its exit code."""
        return await self._exit_code()

    async def close(self) -> None:
        """Withdraw a pending attach, or close the stream (when ``relay`` was never run)."""
        if isinstance(self._attachment, asyncio.Future):
            if not self._attachment.done():
                self._attachment.cancel()
                return
            if self._attachment.cancelled() or self._attachment.exception() is not None:
                return
            await self._attachment.result().close()
        else:
            await self._attachment.close()

    async def _wait_attachment(self) -> Attachment:
        if not isinstance(self._attachment, asyncio.Future):
            return self._attachment
        try:
            return await self._attachment
        finally:
            self._attachment.cancel()  # a no-op once done; withdraws it if we were cancelled

    async def relay(self, inputs: AsyncIterator[StreamInput]
                    ) -> AsyncGenerator[StreamOutput, None]:
        """Relay until the output ends, the client detaches, or it goes away; the stream is
        closed on return. The last item is ``detached`` if the client detached."""
        attachment = await self._wait_attachment()
        queue: asyncio.Queue[_Item] = asyncio.Queue(OUTPUT_QUEUE)
        scanner = DetachScanner(self._keys) if self._keys and self.stdin else None

        async def pump_output() -> None:
            try:
                async for item in attachment:
                    await queue.put(item)
            finally:
                await queue.put("end")

        async def pump_input() -> None:
            try:
                async for msg in inputs:
                    if msg.data and self.stdin:
                        data, detached = scanner.feed(msg.data) if scanner else (msg.data, False)
                        if data:
                            await attachment.write(data)
                        if detached:
                            await self._detach(attachment)
                            await queue.put("detached")
                            return
                    if msg.rows and msg.cols:
                        with contextlib.suppress(ServinError):
                            await self._resize(msg.rows, msg.cols)
                    if msg.close_stdin and self.stdin:
                        await attachment.close_stdin()
                if self.stdin:
                    await attachment.close_stdin()
            except (ServinError, OSError):
                pass  # the process or its monitor is gone: the output side ends the stream

        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(pump_output()), loop.create_task(pump_input())]
        try:
            while True:
                item = await queue.get()
                if item == "end":
                    break
                if item == "detached":
                    yield StreamOutput(detached=True)
                    break
                stream, data = item
                if stream in self._streams:
                    yield StreamOutput(stream=stream, data=data)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await attachment.close()


class AttachService:
    """Attach sessions to containers' main processes, and their terminal size."""

    def __init__(self, store: ContainerStore, monitors: Monitors, locks: ContainerLocks) -> None:
        self.store = store
        self.monitors = monitors
        self.locks = locks
        # Attach requests waiting for a created container to start: each gets a monitor
        # attachment after the monitor exists and before the program runs.
        self._pending: dict[str, list[WaitingAttach]] = {}

    async def attach(self, ref: str, options: AttachOptions) -> StreamSession:
        """A session on the container's streams: now if it runs, else from its next start.

        Returns once the request is registered (a client may start the container then).
        """
        c = await asyncio.to_thread(self.store.resolve, ref)
        keys = (parse_detach_keys(options.detach_keys)
                if c.config.tty and options.detachable else None)
        # None named: both outputs; else exactly the streams asked for (run -a stdout).
        default = not (options.stdin or options.stdout or options.stderr)
        request = {"stdin": options.stdin, "stdout": options.stdout or default,
                   "stderr": options.stderr or default,
                   "stdin_once": options.stdin and options.close_stdin is not False}
        attachment: Attachment | asyncio.Future[Attachment]
        if c.state.running:
            attachment = await self._attach_running(c, request)
        else:
            attachment = self._attach_on_start(c, request)
        monitor = self.monitors.client(c.id)

        async def resize(rows: int, cols: int) -> None:
            await self.resize(c.id, rows, cols)

        async def exit_code() -> int:
            return await self._exit_code(c.id)

        return StreamSession(attachment, stdin=options.stdin, detach_keys=keys, resize=resize,
                             detach=monitor.detach, exit_code=exit_code)

    async def _exit_code(self, container_id: str) -> int:
        """Wait until the container's process ends (a session's stream ends with it)."""
        current = await asyncio.to_thread(self.store.get, container_id)
        if current.state.running:
            await self.locks.exit_event(container_id).wait()
        last = self.locks.last_exit(container_id)
        if last is None:
            last = (await asyncio.to_thread(self.store.get, container_id)).state
        return last.exit_code

    async def _attach_running(self, c: Container, request: dict[str, bool]) -> Attachment:
        if c.state.status not in (RUNNING, PAUSED):
            raise Conflict(f"You cannot attach to a stopped container {c.name}, start it first")
        try:
            return await self.monitors.client(c.id).attach(**request)
        except OSError:
            # The program ended as we asked (its monitor went with it): the same answer as
            # for a stopped container, not an internal error, once its exit is recorded.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.locks.exit_event(c.id).wait(), 5)
            current = await asyncio.to_thread(self.store.get, c.id)
            if current.state.running:
                raise
            raise Conflict(f"You cannot attach to a stopped container {c.name}, start it "
                           "first") from None

    def _attach_on_start(self, c: Container,
                         request: dict[str, bool]) -> asyncio.Future[Attachment]:
        future: asyncio.Future[Attachment] = asyncio.get_running_loop().create_future()
        waiters = self._pending.setdefault(c.id, [])
        entry = (future, request)
        waiters.append(entry)
        def withdraw(_: object) -> None:
            if entry in waiters:
                waiters.remove(entry)

        future.add_done_callback(withdraw)
        return future

    def waiting(self, container_id: str) -> list[WaitingAttach]:
        """The requests waiting now (to pass along with a spawn that also starts)."""
        return [(f, o) for f, o in self._pending.get(container_id, []) if not f.done()]

    async def hand_spawned(self, container_id: str, waiting: list[WaitingAttach],
                           attachments: Sequence[Attachment]) -> None:
        """Give requests the streams the spawn made for them."""
        entries = self._pending.get(container_id, [])
        for entry, attachment in zip(waiting, attachments, strict=True):
            if entry in entries:
                entries.remove(entry)
            future = entry[0]
            if future.done():
                await attachment.close()
            else:
                future.set_result(attachment)

    async def hand_over(self, container_id: str) -> None:
        """The container's monitor exists and its program has not run yet: give every
        waiting request its attachment."""
        client = self.monitors.client(container_id)
        for future, request in self._pending.pop(container_id, []):
            if future.done():
                continue
            try:
                future.set_result(await client.attach(**request))
            except ServinError as exc:
                future.set_exception(exc)

    async def resize(self, ref: str, rows: int, cols: int) -> None:
        """Resize the container's terminal (ignored without one)."""
        c = await asyncio.to_thread(self.store.resolve, ref)
        if not c.config.tty:
            return
        await self.monitors.client(c.id).resize(rows, cols)
