"""The short-lived setup process of a monitor: everything a monitor does only once.

The zygote forks a monitor per request; the monitor at once forks this setup process and
waits. Setup reads the request, and for a spawn: checks the spec, prepares the state
directory, binds the control socket, makes the stdio pipes (or receives the pty master),
creates the container through the OCI runtime, opens the log, writes the pid files, then
hands every file descriptor to the monitor (SCM_RIGHTS) with a small JSON description,
answers the client and exits.

Why a separate process: every Python object a process touches after the fork costs it a
private copy of the page it sits on. Spec parsing, pathlib, the runtime's code, subprocess
and the JSON of config.json touch thousands; done here, the pages are freed when setup exits
and the long-lived monitor keeps only what its event loop touches. The container's init is
not lost: the native runtime forks it from here and runc's is orphaned; either way it is
reparented to the monitor, which is a child subreaper.
"""

from __future__ import annotations

import _socket
import array
import contextlib
import json
import os
import signal
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from servin.engine.runtime.monitor.prctl import set_parent_death_signal, set_process_name
from servin.engine.runtime.monitor.protocol import (
    CONSOLE_SOCK,
    CONTAINER_PID,
    EXIT_RECORD,
    MAX_LINE,
    MONITOR_PID,
    MONITOR_SOCK,
    SpawnSpec,
    encode_line,
    error_answer,
    monitor_alive,
    proc_start_ticks,
    rfc3339_nano,
    write_file_atomic,
)
from servin.engine.runtime.monitor.runtimes import make_runtime
from servin.engine.runtime.oci import OCIRuntime, Stdio
from servin.errors import Conflict, Internal, InvalidArgument, ServinError

CONSOLE_TIMEOUT = 10.0  # how long the runtime may take to send the pty master
REQUEST_TIMEOUT = 5.0  # a client that connects and says nothing is dropped
UNIX_PATH_MAX = 107
SETUP_COMM = "servin-setup"
MAX_PASSED_FDS = 16  # attach streams passed with a spawn request

# Set by the zygote at start; read here to answer ``ping`` and ``shutdown``.
ZYGOTE: dict[str, Any] = {}


def _read_request(fd: int, passed: list[int]) -> dict[str, Any]:
    """The request line; file descriptors sent with it (SCM_RIGHTS) go to ``passed``."""
    os.set_blocking(fd, True)
    sock = socket.socket(fileno=os.dup(fd))
    try:
        sock.settimeout(REQUEST_TIMEOUT)
        buf = b""
        while b"\n" not in buf:
            chunk, fds, _, _ = socket.recv_fds(sock, 65536, MAX_PASSED_FDS,
                                               socket.MSG_CMSG_CLOEXEC)
            passed.extend(fds)
            if not chunk:
                break
            buf += chunk
            if len(buf) > MAX_LINE:
                raise InvalidArgument("request line too long")
    finally:
        sock.close()
    line = buf.split(b"\n", 1)[0]
    if not line:
        raise InvalidArgument("empty request")
    request = json.loads(line)
    if not isinstance(request, dict):
        raise InvalidArgument("a request is a JSON object")
    return request


def _answer(fd: int, answer: dict[str, Any]) -> None:
    data = encode_line(answer)
    try:
        while data:
            data = data[os.write(fd, data) :]
    except OSError:
        pass  # the daemon went away mid-request; it finds the monitor through the state dir


def take(listen_fd: int, taken_w: int, monitor: int, channel: _socket.socket) -> int:
    """In the setup process forked ahead: take the next connection on the zygote's socket,
    tell the zygote (``taken_w``: it forks the next monitor) and the monitor (``channel``),
    then serve the request (``run``)."""
    set_parent_death_signal(signal.SIGKILL)  # cleared below: until then, go with the monitor
    if os.getppid() != monitor:
        return 1
    set_process_name(SETUP_COMM)  # not to be taken for the monitor in ps
    listener = socket.socket(fileno=listen_fd)
    try:
        # The raw accept (an fd, no socket object), retried by Python on EINTR.
        client_fd, _ = listener._accept()  # type: ignore[attr-defined]
    finally:
        with contextlib.suppress(OSError):
            os.write(taken_w, b"t")  # taken, or failed: either way the zygote forks anew
        os.close(taken_w)
        listener.close()
    set_parent_death_signal(0)
    channel.send(b"taken")
    return run(client_fd, channel)


def run(client_fd: int, channel: _socket.socket) -> int:
    """Serve one zygote request in the setup process; return its exit status.

    For a successful spawn the monitor receives the container's fds on ``channel`` before
    the client hears of it; otherwise the monitor sees ``channel`` close and exits.
    """
    passed: list[int] = []
    try:
        request = _read_request(client_fd, passed)
        op = request.get("op")
        if op == "ping":
            _answer(client_fd, {"ok": True, **ZYGOTE.get("info", {})})
            return 0
        if op == "shutdown":
            _shutdown_zygote()
            _answer(client_fd, {"ok": True})
            return 0
        if op != "spawn":
            raise InvalidArgument(f"unknown zygote request {op!r}")
        spec = SpawnSpec.from_json(request.get("spec") or {})
        attach = _attach_requests(request.get("attach") or [], len(passed))
    except Exception as e:
        for fd in passed:
            os.close(fd)
        _answer(client_fd, error_answer(e))
        return 1
    creation = _Creation(spec, list(zip(passed, attach, strict=True)))
    try:
        state, fds = creation.run()
        channel.sendmsg(
            [encode_line(state)],
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))],
        )
    except BaseException as e:
        if not isinstance(e, ServinError):
            traceback.print_exc(file=sys.stderr)
        creation.abort()
        _answer(client_fd, error_answer(e))
        return 1
    for fd in fds:
        os.close(fd)
    _answer(client_fd, {"ok": True, "monitor_pid": os.getppid(), "pid": state["pid"]})
    return 0


def _attach_requests(requests: Any, count: int) -> list[dict[str, Any]]:
    """The attach options sent with a spawn, one per passed connection."""
    asked = len(requests) if isinstance(requests, list) else 0
    if not isinstance(requests, list) or asked != count:
        raise InvalidArgument(f"a spawn passed {count} connections for {asked} attach streams")
    for request in requests:
        if not isinstance(request, dict):
            raise InvalidArgument("an attach stream's options are a JSON object")
    return requests


def _shutdown_zygote() -> None:
    """Make the zygote give up its socket path and exit; its monitors are unaffected."""
    path, inode, pid = ZYGOTE.get("socket"), ZYGOTE.get("inode"), ZYGOTE.get("pid")
    try:
        if path and os.stat(path).st_ino == inode:
            os.unlink(path)  # before answering: the caller may bind a new zygote there
    except OSError:
        pass
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


class _Creation:
    """One container's creation, and its undoing if any step fails."""

    def __init__(self, spec: SpawnSpec, attach: list[tuple[int, dict[str, Any]]]) -> None:
        self.spec = spec
        self.attach = attach  # (connection fd, options): handed to the monitor
        self.state_dir = spec.state_dir
        self._runtime: OCIRuntime | None = None
        self.pid = 0
        self.dir_fd = -1
        self.made_dir = False
        self.create_called = False
        self.owned: list[str] = []  # files made in the state dir, removed on failure
        self.fds: list[int] = []  # ours, handed to the monitor or closed on failure
        self.their_fds: list[int] = []  # the container's stdio ends, closed after create
        self.made_log = False

    @property
    def runtime(self) -> OCIRuntime:
        if self._runtime is None:
            self._runtime = make_runtime(self.spec.runtime, self.state_dir)
        return self._runtime

    def _path(self, name: str) -> Path:
        return self.state_dir / name

    def _socket_path(self, name: str) -> str:
        """A path to ``name`` in the state dir that fits a sockaddr_un, for any process."""
        full = str(self._path(name))
        if len(full.encode()) <= UNIX_PATH_MAX:
            return full
        # Through the magic link of a directory fd: short, and valid for other processes.
        return f"/proc/{os.getpid()}/fd/{self.dir_fd}/{name}"

    def run(self) -> tuple[dict[str, Any], list[int]]:
        """Create the container; return the monitor's description of it and its fds."""
        spec = self.spec
        self._prepare_state_dir()
        listener = self._listen(MONITOR_SOCK)
        self.fds.append(listener.detach())
        cgroups_path = self._read_bundle()
        console: socket.socket | None = None
        names: dict[str, int] = {"listener": 0}
        stdio = None
        try:
            if spec.tty:
                console = self._listen(CONSOLE_SOCK)
                console.setblocking(True)
            else:
                stdio = self._make_pipes(names)
            console_path = Path(self._socket_path(CONSOLE_SOCK)) if console else None
            self.create_called = True
            self.pid = self.runtime.create(spec.id, spec.bundle, stdio, console_socket=console_path)
            for fd in self.their_fds:
                os.close(fd)
            self.their_fds = []
            if console is not None:
                names["master"] = len(self.fds)
                self.fds.append(self._receive_console(console))
        finally:
            if console is not None:
                console.close()
                self._unlink(CONSOLE_SOCK)
        started_at = None
        if spec.start:
            # The program's output waits in its pipe (or pty) until the monitor, which
            # registers the attach streams first, reads it: nobody misses any.
            self.runtime.start(spec.id)
            started_at = rfc3339_nano()
        attach = []
        for fd, options in self.attach:
            attach.append([len(self.fds), options])
            self.fds.append(fd)
        self.attach = []
        names["log"] = len(self.fds)
        self.made_log = not spec.log.path.exists()
        spec.log.path.parent.mkdir(parents=True, exist_ok=True)
        self.fds.append(os.open(spec.log.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND
                                | os.O_CLOEXEC, 0o640))
        self.owned.append(CONTAINER_PID)
        # Atomic but not fsynced: the state dir is volatile (/run); a crash of the machine
        # takes these files with it, so fsync would only cost time on every spawn.
        write_file_atomic(self._path(CONTAINER_PID), f"{self.pid}\n".encode(), durable=False)
        monitor = os.getppid()
        self.owned.append(MONITOR_PID)
        write_file_atomic(self._path(MONITOR_PID),
                          f"{monitor}\n{proc_start_ticks(monitor)}\n".encode(), durable=False)
        os.close(self.dir_fd)
        self.dir_fd = -1
        # Flat, and the spec as text: the monitor parses as little as it can.
        state = {
            "id": spec.id,
            "pid": self.pid,
            "state_dir": str(self.state_dir),
            "tty": spec.tty,
            "open_stdin": spec.open_stdin,
            "cgroups_path": cgroups_path,
            "log_path": str(spec.log.path),
            "log_driver": spec.log.driver,
            "log_max_size": spec.log.max_size,
            "log_max_file": spec.log.max_file,
            "log_attrs": dict(spec.log.attrs),
            "spec": encode_line(spec.to_json()).decode(),
            # The native runtime runs an exec in the monitor's own fork (exec_in_place).
            "native": spec.runtime.name == "native",
            "fds": names,
            "status": "running" if spec.start else "created",
            "started_at": started_at,
            "attach": attach,
        }
        return state, self.fds

    def _prepare_state_dir(self) -> None:
        if not self.state_dir.is_dir():
            self.state_dir.mkdir(parents=True, mode=0o700)
            self.made_dir = True
        elif monitor_alive(self.state_dir):
            raise Conflict(f"container {self.spec.id} already has a running monitor")
        else:
            # Leftovers of an earlier run of this container: never let a stale exit record
            # answer for this one.
            for name in (EXIT_RECORD, MONITOR_SOCK, MONITOR_PID, CONTAINER_PID, CONSOLE_SOCK):
                self._unlink(name)
        self.dir_fd = os.open(self.state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def _unlink(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(name))

    def _listen(self, name: str) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self._socket_path(name))
            self.owned.append(name)
            os.chmod(self._path(name), 0o600)
            sock.listen(128)
        except BaseException:
            sock.close()
            raise
        sock.setblocking(False)
        return sock

    def _read_bundle(self) -> str | None:
        """Check the bundle against the spec; the cgroup path, to report OOM kills from."""
        bundle = self.spec.bundle
        try:
            with open(bundle / "config.json", "rb") as f:
                config = json.load(f)
        except FileNotFoundError:
            raise InvalidArgument(f"no config.json in bundle {bundle}") from None
        except ValueError as e:
            raise InvalidArgument(f"bad config.json in bundle {bundle}: {e}") from None
        terminal = bool((config.get("process") or {}).get("terminal", False))
        if terminal != self.spec.tty:
            raise InvalidArgument(
                f"monitor tty={self.spec.tty} but config.json process.terminal={terminal}"
            )
        path = (config.get("linux") or {}).get("cgroupsPath")
        return str(path) if path else None

    def _make_pipes(self, names: dict[str, int]) -> Stdio:
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        self.their_fds.append(out_w)
        names["stdout"] = len(self.fds)
        self.fds.append(out_r)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        self.their_fds.append(err_w)
        names["stderr"] = len(self.fds)
        self.fds.append(err_r)
        if self.spec.open_stdin:
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
            names["stdin"] = len(self.fds)
            self.fds.append(in_w)
        else:
            in_r = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        self.their_fds.append(in_r)
        return Stdio(stdin=in_r, stdout=out_w, stderr=err_w)

    def _receive_console(self, console: socket.socket) -> int:
        console.settimeout(CONSOLE_TIMEOUT)
        try:
            conn, _ = console.accept()
        except TimeoutError:
            raise Internal("the runtime did not send the container's terminal") from None
        with conn:
            conn.settimeout(CONSOLE_TIMEOUT)
            _, fds, _, _ = socket.recv_fds(conn, 4096, 1, socket.MSG_CMSG_CLOEXEC)
        if not fds:
            raise Internal("the runtime sent no terminal over the console socket")
        return fds[0]

    def abort(self) -> None:
        """Undo a failed creation: no process, no runtime state, no files of ours."""
        if self.pid:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
        if self.create_called:
            # Runtimes clean up a failed create themselves; this catches one that did not.
            with contextlib.suppress(Exception):
                self.runtime.delete(self.spec.id, force=True)
        _kill_and_reap_children()
        for fd in self.fds + self.their_fds + [fd for fd, _ in self.attach]:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []
        self.their_fds = []
        self.attach = []
        for name in self.owned:
            self._unlink(name)
        if self.made_log:
            with contextlib.suppress(OSError):
                os.unlink(self.spec.log.path)
        if self.dir_fd >= 0:
            os.close(self.dir_fd)
            self.dir_fd = -1
        if self.made_dir:
            with contextlib.suppress(OSError):
                self.state_dir.rmdir()


def _kill_and_reap_children() -> None:
    """SIGKILL every child left (a half-created container) and reap them all."""
    deadline = time.monotonic() + 5.0
    while True:
        for pid in _children():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                return
            time.sleep(0.002)


def _children() -> list[int]:
    pids: list[int] = []
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children") as f:
                pids.extend(int(p) for p in f.read().split())
    except OSError:
        pass
    return pids
