"""HostProcessBackend: a StreamingBackend for tests that runs plain host processes.

Until the CRI door exists, the streaming server's tests need something real behind it: execs
run ``argv`` on the host (with a pty for TTY sessions), "containers" for attach are long-running
host processes this backend started, and pods are network namespaces the test made (port-forward
goes through the real ``servin.engine.linux.netns_socket`` helper). Test code only.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import signal
import struct
import termios
from collections.abc import Sequence

from servin.engine.linux.netns_socket import open_connection_in_netns
from servin.errors import NotFound


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


class _Process:
    """A host process with its stdio on a pty or on pipes; output fans out to listeners."""

    def __init__(self, argv: Sequence[str], tty: bool, env: dict[str, str] | None = None):
        self.argv = list(argv)
        self.tty = tty
        self.env = env
        self.listeners: set[asyncio.Queue] = set()
        self.master = -1
        self.proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task] = []
        self.output_done = asyncio.Event()

    async def start(self) -> None:
        env = {**os.environ, "TERM": "xterm", **(self.env or {})}
        if self.tty:
            master, slave = pty.openpty()
            self.master = master
            try:
                self.proc = await asyncio.create_subprocess_exec(
                    *self.argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                    start_new_session=True,
                    preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
            finally:
                os.close(slave)
            os.set_blocking(master, False)
            self._readers.append(asyncio.create_task(self._read_pty()))
        else:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)
            assert self.proc.stdout and self.proc.stderr
            self._readers += [asyncio.create_task(self._read_pipe("stdout", self.proc.stdout)),
                              asyncio.create_task(self._read_pipe("stderr", self.proc.stderr))]
        self._watcher = asyncio.create_task(self._watch_output())

    async def _watch_output(self) -> None:
        await asyncio.gather(*self._readers, return_exceptions=True)
        self.output_done.set()
        for q in list(self.listeners):
            q.put_nowait(None)

    def _emit(self, name: str, data: bytes) -> None:
        for q in list(self.listeners):
            q.put_nowait((name, data))

    async def _read_pipe(self, name: str, stream: asyncio.StreamReader) -> None:
        while data := await stream.read(65536):
            self._emit(name, data)

    async def _read_pty(self) -> None:
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(self.master, readable.set)
        try:
            while True:
                await readable.wait()
                readable.clear()
                try:
                    data = os.read(self.master, 65536)
                except BlockingIOError:
                    continue
                except OSError:  # EIO: every slave end closed
                    return
                if not data:
                    return
                self._emit("stdout", data)
        finally:
            loop.remove_reader(self.master)

    async def write(self, data: bytes) -> None:
        if self.tty:
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(self.master, view):]
                except BlockingIOError:
                    await asyncio.sleep(0.005)
        else:
            assert self.proc and self.proc.stdin
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.tty:
            await self.write(b"\x04")  # the terminal's end of file
        elif self.proc and self.proc.stdin and not self.proc.stdin.is_closing():
            self.proc.stdin.close()

    def resize(self, width: int, height: int) -> None:
        if self.tty:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
            if self.proc and self.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGWINCH)

    async def wait(self) -> int:
        assert self.proc
        return _exit_code(await self.proc.wait())

    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def kill(self) -> None:
        if self.running():
            assert self.proc
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()
        await self.release()

    async def release(self) -> None:
        await self.output_done.wait()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1


class HostSession:
    """An exec (owns its process) or an attachment (listens to a shared one)."""

    def __init__(self, process: _Process, owns: bool, backend: HostProcessBackend) -> None:
        self.process = process
        self.owns = owns
        self.backend = backend
        self.queue: asyncio.Queue = asyncio.Queue()
        process.listeners.add(self.queue)
        if process.output_done.is_set():
            self.queue.put_nowait(None)
        self.closed = False

    async def write_stdin(self, data: bytes) -> None:
        await self.process.write(data)

    async def close_stdin(self) -> None:
        await self.process.close_stdin()

    async def read_output(self) -> tuple[str, bytes] | None:
        return await self.queue.get()

    async def resize(self, width: int, height: int) -> None:
        self.backend.resizes.append((width, height))
        self.process.resize(width, height)

    async def wait(self) -> int:
        return await self.process.wait()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.process.listeners.discard(self.queue)
        self.backend.closed_sessions += 1
        if self.owns:
            if self.process.running():
                self.backend.killed += 1
            await self.process.kill()
        self.backend.sessions.discard(self)


class HostProcessBackend:
    """Execs and attaches run as host processes; pods are network namespaces by path."""

    def __init__(self) -> None:
        self.containers: dict[str, _Process | None] = {}
        self.pods: dict[str, str] = {}
        self.sessions: set[HostSession] = set()
        self.resizes: list[tuple[int, int]] = []
        self.closed_sessions = 0
        self.killed = 0

    def add_container(self, container_id: str) -> None:
        """A container for exec only (no main process to attach to)."""
        self.containers[container_id] = None

    async def start_container(self, container_id: str, argv: Sequence[str], tty: bool) -> None:
        """A container whose main process (argv) attach reaches."""
        process = _Process(argv, tty)
        await process.start()
        self.containers[container_id] = process

    async def stop_all(self) -> None:
        for process in self.containers.values():
            if process is not None:
                await process.kill()

    def add_pod(self, pod_id: str, netns_path: str) -> None:
        self.pods[pod_id] = netns_path

    async def exec(self, container_id: str, cmd: Sequence[str], *, tty: bool, stdin: bool,
                   stdout: bool, stderr: bool) -> HostSession:
        if container_id not in self.containers:
            raise NotFound(f"no such container: {container_id}")
        process = _Process(cmd, tty)
        try:
            await process.start()
        except OSError as exc:
            raise NotFound(f"{cmd[0]}: {exc.strerror}") from None
        session = HostSession(process, owns=True, backend=self)
        self.sessions.add(session)
        return session

    async def attach(self, container_id: str, *, tty: bool, stdin: bool, stdout: bool,
                     stderr: bool) -> HostSession:
        process = self.containers.get(container_id)
        if process is None:
            raise NotFound(f"no such container: {container_id}")
        session = HostSession(process, owns=False, backend=self)
        self.sessions.add(session)
        return session

    async def port_forward(self, pod_id: str,
                           port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        path = self.pods.get(pod_id)
        if path is None:
            raise NotFound(f"no such pod: {pod_id}")
        return await open_connection_in_netns(path, port)
