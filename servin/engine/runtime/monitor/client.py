"""The daemon's side of the monitors: start the zygote, spawn monitors, talk to each one.

Everything but ``ensure_zygote`` is asyncio and meant for the daemon's event loop. Each call
opens its own connection to the monitor's socket (a unix connect costs microseconds), so a
daemon that restarts simply builds a ``MonitorClient`` for every state directory it finds.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import servin
from servin.engine.runtime.monitor.protocol import (
    FRAME_HEADER_SIZE,
    MAX_LINE,
    MONITOR_SOCK,
    ZYGOTE_DIR,
    ZYGOTE_LOCK,
    ZYGOTE_LOG,
    ZYGOTE_SOCK,
    ExitRecord,
    MonitorState,
    SpawnResult,
    SpawnSpec,
    code_fingerprint,
    encode_line,
    error_from_answer,
    monitor_alive,
    parse_frame_header,
    read_exit_record,
)
from servin.errors import Internal, InvalidArgument, ServinError, Unavailable

__all__ = [
    "Attachment",
    "ExitRecord",
    "MonitorClient",
    "MonitorState",
    "SpawnResult",
    "SpawnSpec",
    "ensure_zygote",
    "monitor_alive",
    "read_exit_record",
    "spawn",
    "stop_zygote",
]

ZYGOTE_START_TIMEOUT = 30.0
SPAWN_TIMEOUT = 60.0  # the runtime's create (a runc may be slow on a loaded machine)
CALL_TIMEOUT = 60.0
_UNIX_PATH_MAX = 107
ZYGOTE_MODULE = "servin.engine.runtime.monitor.zygote"
ZYGOTE_EXE_FD = "SERVIN_ZYGOTE_EXE_FD"  # the sealed executable's fd, for the zygote to close


# ----- the zygote --------------------------------------------------------------------------


def _ping(path: Path, timeout: float = 2.0) -> dict[str, Any] | None:
    """The zygote's ping answer, or None if nothing answers there."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(encode_line({"op": "ping"}))
            answer = sock.makefile("rb").readline(MAX_LINE)
    except OSError:
        return None
    try:
        obj = json.loads(answer)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) and obj.get("ok") else None


def _shutdown(path: Path) -> None:
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(2.0)
        sock.connect(str(path))
        sock.sendall(encode_line({"op": "shutdown"}))
        sock.makefile("rb").readline(MAX_LINE)


def _zygote_env() -> dict[str, str]:
    # The zygote runs with -S (no site, no .pth hooks: less memory in every monitor), so it
    # gets the daemon's import path explicitly, Servin's own tree first.
    root = str(Path(servin.__file__).resolve().parent.parent)
    paths = [root] + [p for p in sys.path if p and p != root and os.path.isdir(p)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    for name in ("PYTHONSTARTUP", "PYTHONINSPECT", "PYTHONHOME"):
        env.pop(name, None)
    return env


def ensure_zygote(exec_root: Path | str) -> Path:
    """Make sure a current monitor zygote answers under ``exec_root``; return its socket.

    A zygote left by an earlier daemon is reused; one running older code is asked to exit
    (its monitors carry on) and replaced. Blocking: call it in a thread from an event loop.
    """
    directory = Path(exec_root) / ZYGOTE_DIR
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / ZYGOTE_SOCK
    if len(str(path).encode()) > _UNIX_PATH_MAX:
        raise InvalidArgument(f"exec root {exec_root} is too long for a unix socket path")
    fingerprint = code_fingerprint()
    lock_fd = os.open(directory / ZYGOTE_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)  # one starter at a time, across daemons
        info = _ping(path)
        if info is not None and info.get("version") == fingerprint:
            return path
        if info is not None:
            _shutdown(path)
        _start_zygote(path, directory / ZYGOTE_LOG)
        info = _ping(path, timeout=ZYGOTE_START_TIMEOUT)
        if info is None:
            raise Unavailable(f"the monitor zygote at {path} does not answer")
        return path
    finally:
        os.close(lock_fd)


def stop_zygote(exec_root: Path | str) -> bool:
    """Ask the zygote under ``exec_root`` to exit (its monitors carry on); False if none ran.

    The daemon never needs this (a zygote outlives it on purpose); tests and uninstallers do.
    """
    # No ping first: a zygote busy forking its spare monitor (just after it started) may not
    # answer a ping within a second, and skipping the shutdown then left it running.
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10.0)
            sock.connect(str(Path(exec_root) / ZYGOTE_DIR / ZYGOTE_SOCK))
            sock.sendall(encode_line({"op": "shutdown"}))
            sock.makefile("rb").readline(MAX_LINE)
    except (FileNotFoundError, ConnectionRefusedError):
        return False  # no zygote listens there
    except OSError:
        pass  # the request is sent: the zygote reads it when it gets to it
    return True


def sealed_interpreter() -> int:
    """A sealed memfd holding a copy of this Python's executable (an fd, close-on-exec).

    The zygote is executed from it, so every monitor, runtime helper, container init and exec
    process forked from it has that copy, not the host's binary, as ``/proc/self/exe``. A
    container that makes the runtime execute ``/proc/self/exe`` (a ``#!/proc/self/exe`` script
    or a symlink to it) or opens ``/proc/PID/exe`` of a process joining it reaches only the
    sealed copy, which nothing can write (CVE-2019-5736, as runc's memfd clone).
    """
    source = os.path.realpath(sys.executable)
    fd = os.memfd_create("servin-runtime", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        with open(source, "rb") as binary:
            while chunk := binary.read(1 << 20):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK
                    | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _start_zygote(path: Path, log_path: Path) -> None:
    # argv[0] stays the real path: Python finds its prefix (and venv) from it.
    argv = [sys.executable, "-S", "-m", ZYGOTE_MODULE, "--socket", str(path)]
    exe = sealed_interpreter()
    env = _zygote_env()
    env[ZYGOTE_EXE_FD] = str(exe)  # the zygote closes it: nothing below needs the fd
    try:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                argv,
                executable=f"/proc/self/fd/{exe}",
                pass_fds=(exe,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd="/",
                env=env,
                start_new_session=True,
            )
    finally:
        os.close(exe)
    try:
        # The launcher exits 0 once the zygote listens, leaving the zygote in the background.
        code = proc.wait(timeout=ZYGOTE_START_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise Unavailable("the monitor zygote did not start in time") from None
    if code != 0:
        raise Internal(f"the monitor zygote failed to start ({code}): {_tail(log_path)}")


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else "no log"


# ----- connections -------------------------------------------------------------------------


@contextlib.contextmanager
def _address(path: Path) -> Iterator[str]:
    """A connectable address for a unix socket, even one whose path is longer than
    sockaddr_un allows (through a /proc/self/fd link to its directory)."""
    if len(str(path).encode()) <= _UNIX_PATH_MAX:
        yield str(path)
        return
    dir_fd = os.open(path.parent, os.O_PATH | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{dir_fd}/{path.name}"
    finally:
        os.close(dir_fd)


async def _connect(path: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to a unix socket."""
    with _address(path) as address:
        return await asyncio.open_unix_connection(address, limit=MAX_LINE)


async def _connect_sending_fds(path: Path, data: bytes, fds: list[int],
                               ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to a unix socket and send ``data`` with ``fds`` (SCM_RIGHTS) first."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        with _address(path) as address:
            await loop.sock_connect(sock, address)
        # A fresh connection's buffer takes a request line whole; the rest, if any, below.
        sent = socket.send_fds(sock, [data], fds)
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=MAX_LINE)
    except BaseException:
        sock.close()
        raise
    if sent < len(data):
        writer.write(data[sent:])
    return reader, writer


async def _read_answer(reader: asyncio.StreamReader) -> dict[str, Any]:
    line = await reader.readline()
    if not line.endswith(b"\n"):
        raise ConnectionResetError("connection closed before an answer")
    answer: dict[str, Any] = json.loads(line)
    if not answer.get("ok"):
        raise error_from_answer(answer)
    return answer


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def spawn(zygote_socket: Path | str, spec: SpawnSpec | Mapping[str, Any],
                attach: Sequence[Mapping[str, bool]] = ()) -> SpawnResult:
    """Have the zygote fork a monitor that creates the container ``spec`` describes.

    Returns once the container is created (with ``spec.start``: started). On failure raises
    the runtime's error (one line) and nothing is left running. ``attach``: attach streams
    (each with the options of ``MonitorClient.attach``) that the monitor registers before it
    reads any output, so a spawn that also starts misses nothing; they come back as
    ``SpawnResult.attachments``, in order.
    """
    if isinstance(spec, SpawnSpec):
        spec_json = spec.to_json()
    else:
        spec_json = SpawnSpec.from_json(spec).to_json()  # fail here, not in the monitor
    request: dict[str, Any] = {"op": "spawn", "spec": spec_json}
    if attach:
        request["attach"] = [_attach_request(**options) for options in attach]
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) for _ in attach]
    ours = [mine for mine, _ in pairs]
    attachments: list[Attachment] = []
    try:
        try:
            reader, writer = await _connect_sending_fds(
                Path(zygote_socket), encode_line(request), [theirs.fileno() for _, theirs in pairs])
        except OSError as e:
            raise Unavailable(f"monitor zygote at {zygote_socket}: {e.strerror or e}") from None
        finally:
            for _, theirs in pairs:
                theirs.close()  # the monitor gets its own copies
        try:
            await writer.drain()
            answer = await asyncio.wait_for(_read_answer(reader), SPAWN_TIMEOUT)
        except (OSError, ValueError, TimeoutError) as e:
            raise Unavailable(f"monitor zygote gave no answer for {spec_json['id']}: {e}") \
                from None
        finally:
            await _close(writer)
        while ours:
            r, w = await asyncio.open_unix_connection(sock=ours.pop(0), limit=MAX_LINE)
            try:
                reply = await asyncio.wait_for(_read_answer(r), CALL_TIMEOUT)
            except BaseException:
                await _close(w)
                raise
            attachments.append(Attachment(r, w, bool(reply.get("tty")),
                                          int(reply.get("conn", -1))))
    except BaseException:
        for sock in ours:
            sock.close()
        for made in attachments:
            await made.close()
        raise
    return SpawnResult(monitor_pid=int(answer["monitor_pid"]), pid=int(answer["pid"]),
                       attachments=tuple(attachments))


def _attach_request(*, stdin: bool = False, stdout: bool = True, stderr: bool = True,
                    stdin_once: bool = False) -> dict[str, Any]:
    return {"op": "attach", "stdin": bool(stdin), "stdout": bool(stdout),
            "stderr": bool(stderr), "stdin_once": bool(stdin_once)}


# ----- one monitor -------------------------------------------------------------------------


class Attachment:
    """An attach stream: iterate for ``(stream number, bytes)``; ``write`` feeds stdin."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tty: bool,
        handle: int = -1,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.tty = tty
        self.handle = handle  # the monitor's name for this stream (for ``detach``)

    def __aiter__(self) -> AsyncIterator[tuple[int, bytes]]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[tuple[int, bytes]]:
        while True:
            try:
                header = await self._reader.readexactly(FRAME_HEADER_SIZE)
                stream, length = parse_frame_header(header)
                data = await self._reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            yield stream, data

    async def write(self, data: bytes) -> None:
        """Send bytes to the container's stdin (if attached with stdin and it is open)."""
        self._writer.write(data)
        await self._writer.drain()

    async def close_stdin(self) -> None:
        """Half-close: with ``stdin_once`` the monitor then closes the container's stdin."""
        if self._writer.can_write_eof():
            self._writer.write_eof()
            await self._writer.drain()

    async def close(self) -> None:
        """Detach."""
        await _close(self._writer)


class MonitorClient:
    """Talks to the monitor of the container whose state directory is ``state_dir``."""

    def __init__(self, state_dir: Path | str) -> None:
        self.state_dir = Path(state_dir)
        self.socket_path = self.state_dir / MONITOR_SOCK

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await _connect(self.socket_path)
        except OSError as e:
            raise Unavailable(
                f"monitor of {self.state_dir.name} is not running ({e.strerror or e})"
            ) from None

    async def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        reader, writer = await self._open()
        try:
            writer.write(encode_line(request))
            await writer.drain()
            return await asyncio.wait_for(_read_answer(reader), CALL_TIMEOUT)
        except ServinError:
            raise
        except (OSError, ValueError, TimeoutError) as e:
            raise Unavailable(f"monitor of {self.state_dir.name}: {e}") from None
        finally:
            await _close(writer)

    async def state(self) -> MonitorState:
        """The container's status and, once stopped, its exit.

        A monitor that has already exited answers through its exit record on disk.
        """
        try:
            return MonitorState.from_json(await self._call({"op": "state"}))
        except Unavailable:
            record = read_exit_record(self.state_dir)
            if record is None:
                raise
        return MonitorState(status="stopped", pid=record.pid or 0, started_at=record.started_at,
                            finished_at=record.finished_at, exit_code=record.exit_code,
                            signal=record.signal, oom_killed=record.oom_killed)

    async def start(self) -> None:
        """Start the created container."""
        await self._call({"op": "start"})

    async def kill(self, sig: int, all: bool = False) -> None:
        """Signal the container's init, or with ``all`` every process in it."""
        await self._call({"op": "kill", "signal": int(sig), "all": bool(all)})

    async def resize(self, rows: int, cols: int) -> None:
        """Set the container terminal's size."""
        await self._call({"op": "resize", "rows": int(rows), "cols": int(cols)})

    async def close_stdin(self) -> None:
        """Close the container's stdin once what was written has been delivered."""
        await self._call({"op": "close_stdin"})

    async def reopen_log(self) -> None:
        """Reopen the log file after an outside rotation (CRI ReopenContainerLog)."""
        await self._call({"op": "reopen_log"})

    async def wait(self) -> ExitRecord:
        """Wait for the container to exit; its exit record.

        If the monitor is gone (it exits shortly after the container does) the record is
        read from disk; Unavailable if there is neither monitor nor record.
        """
        try:
            reader, writer = await _connect(self.socket_path)
        except OSError:
            return self._record_or_raise()
        try:
            writer.write(encode_line({"op": "wait"}))
            await writer.drain()
            return ExitRecord.from_json(await _read_answer(reader))
        except (OSError, ValueError, KeyError):
            return self._record_or_raise()
        finally:
            await _close(writer)

    def _record_or_raise(self) -> ExitRecord:
        record = read_exit_record(self.state_dir)
        if record is not None:
            return record
        # The monitor may be exiting: its record is on disk before its socket goes away.
        if monitor_alive(self.state_dir):
            raise Unavailable(f"monitor of {self.state_dir.name} does not answer")
        raise Unavailable(f"monitor of {self.state_dir.name} is gone and left no exit record")

    async def wait_gone(self, timeout: float = 10.0) -> bool:
        """Wait until the monitor process has exited (after its container); False on timeout.

        For the daemon's delete: the state directory is the monitor's until it is gone.
        """
        deadline = time.monotonic() + timeout
        while await asyncio.to_thread(monitor_alive, self.state_dir):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def attach(
        self,
        *,
        stdin: bool = False,
        stdout: bool = True,
        stderr: bool = True,
        stdin_once: bool = False,
    ) -> Attachment:
        """Attach to the container's streams from now on (several clients may attach)."""
        reader, writer = await self._open()
        try:
            writer.write(encode_line(_attach_request(stdin=stdin, stdout=stdout, stderr=stderr,
                                                     stdin_once=stdin_once)))
            await writer.drain()
            answer = await asyncio.wait_for(_read_answer(reader), CALL_TIMEOUT)
        except BaseException:
            await _close(writer)
            raise
        return Attachment(reader, writer, bool(answer.get("tty")), int(answer.get("conn", -1)))

    async def detach(self, attachment: Attachment) -> None:
        """Mark ``attachment`` as detached: closing it then leaves the process's stdin open."""
        if attachment.handle >= 0:
            await self._call({"op": "detach", "conn": attachment.handle})

    # -- exec processes -----------------------------------------------------------------

    async def exec(
        self,
        exec_id: str,
        process: Mapping[str, Any],
        *,
        stdin: bool = False,
        attach: bool = True,
    ) -> tuple[int, Attachment | None]:
        """Start an exec (an OCI ``process`` object) in the running container.

        Returns its host PID and, with ``attach``, its attach stream, registered before any
        of its output was read. A program that cannot run raises NotFound/PermissionDenied.
        """
        request = {"op": "exec", "exec_id": exec_id, "process": dict(process),
                   "stdin": bool(stdin), "attach": bool(attach)}
        if not attach:
            answer = await self._call(request)
            return int(answer["pid"]), None
        reader, writer = await self._open()
        try:
            writer.write(encode_line(request))
            await writer.drain()
            answer = await asyncio.wait_for(_read_answer(reader), CALL_TIMEOUT)
        except BaseException as e:
            await _close(writer)
            if isinstance(e, (OSError, ValueError, TimeoutError)):
                raise Unavailable(f"monitor of {self.state_dir.name}: {e}") from None
            raise
        return int(answer["pid"]), Attachment(reader, writer, bool(answer.get("tty")),
                                              int(answer.get("conn", -1)))

    async def exec_resize(self, exec_id: str, rows: int, cols: int) -> None:
        """Set an exec's terminal size."""
        await self._call({"op": "exec_resize", "exec_id": exec_id, "rows": int(rows),
                          "cols": int(cols)})

    async def exec_state(self, exec_id: str) -> dict[str, Any]:
        """``{running, pid, exit_code, tty}`` of an exec the monitor knows."""
        return await self._call({"op": "exec_state", "exec_id": exec_id})

    async def exec_kill(self, exec_id: str, sig: int) -> None:
        """Signal a running exec."""
        await self._call({"op": "exec_kill", "exec_id": exec_id, "signal": int(sig)})

    async def exec_wait(self, exec_id: str) -> int:
        """Wait until the exec has ended and its output is drained; its exit code."""
        reader, writer = await self._open()
        try:
            writer.write(encode_line({"op": "exec_wait", "exec_id": exec_id}))
            await writer.drain()
            answer = await _read_answer(reader)
        except (OSError, ValueError) as e:
            raise Unavailable(f"monitor of {self.state_dir.name}: {e}") from None
        finally:
            await _close(writer)
        return int(answer["exit_code"])
