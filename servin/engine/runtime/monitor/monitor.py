"""One container's monitor: a process forked from the zygote that outlives the daemon.

It is the container init's parent (or its subreaper), holds the container's stdio (pipes, or
the pty master), copies the output into the log file and to attached clients, and records the
exit status in ``exit.json`` before it tells anyone. One thread, one epoll set: no asyncio.

Memory is the constraint that shapes this module (target: under 2 MB PSS per monitor). A
forked child shares every page with the zygote until it writes to it, and in CPython 3.11
merely *using* an object writes to it (its reference count). So the monitor process runs as
little distinct Python as possible: creation happens in a short-lived child (``setup``),
runtime calls in short-lived forks (``_in_helper``), connections are raw fds (no socket
objects, no asyncio), signals go through ``_signal`` (not the enum-converting wrapper).

Control socket (``<state_dir>/monitor.sock``), one JSON request per line:
``state``, ``start``, ``kill {signal, all}``, ``wait``, ``attach {stdin, stdout, stderr,
stdin_once}`` (answers ``conn``, the stream's handle), ``detach {conn}`` (the end of that
stream will not close stdin: the client detached), ``resize {rows, cols}``, ``close_stdin``,
``reopen_log``.

Exec processes are the monitor's too: ``exec {exec_id, process, stdin, attach}`` starts one
(an OCI process object, through the runtime in a throwaway fork, see ``execsetup``); with
``attach`` that connection becomes its attach stream (same framing, raw stdin back; a
half-close closes the exec's stdin). ``exec_resize {exec_id, rows, cols}``, ``exec_state
{exec_id}``, ``exec_wait {exec_id}`` (answers ``exit_code`` when it has ended), ``exec_kill
{exec_id, signal}``. The monitor, a child subreaper, reaps them; the last EXEC_HISTORY ended
execs are remembered, in memory only.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C module: signal.py costs pages
import _socket
import fcntl
import gc
import os
import select
import struct
import sys
import termios
import time
import traceback
from collections.abc import Callable
from typing import Any

from servin.engine.runtime.monitor import execsetup, setup
from servin.engine.runtime.monitor.logfile import LogWriter
from servin.engine.runtime.monitor.prctl import (
    bare_fork,
    get_dumpable,
    set_child_subreaper,
    set_dumpable,
    set_parent_death_signal,
    set_process_name,
    setns,
)
from servin.engine.runtime.monitor.protocol import (
    EXIT_RECORD,
    MAX_LINE,
    MONITOR_COMM,
    MONITOR_PID,
    MONITOR_SOCK,
    STDERR,
    STDOUT,
    decode_line,
    encode_line,
    error_answer,
    error_from_answer,
    frame_header,
    rfc3339_nano,
    write_file_atomic,
)
from servin.errors import (
    Conflict,
    Internal,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    ServinError,
)

READ_CHUNK = 32 * 1024
# Output an attach client has not taken yet: past this, the container's output waits for it
# (as docker's attach does) unless it has taken nothing for STALL_GRACE seconds: then it is
# left behind (whole frames dropped for it), so a stuck client never stalls the container.
CLIENT_BUFFER_LIMIT = 1 << 20
STALL_GRACE = 2.0
STDIN_BUFFER_LIMIT = 256 * 1024  # past it stdin clients are not read (backpressure, no loss)
DRAIN_TIMEOUT = 1.0  # after the init exits, how long leftover writers may keep stdout open
LINGER_TIMEOUT = 5.0  # after the exit record, how long attach clients may take to drain
MAX_RUNNING_EXECS = 1024  # beyond, an exec is refused (each holds a few fds here)
EXEC_HISTORY = 64  # ended execs whose exit code is still answered
EXEC_SETUP_TIMEOUT = 60.0  # as the native runtime's: a process stuck before its execve is killed
_FDS_SPACE = _socket.CMSG_SPACE(16 * 4)

_IN = select.EPOLLIN
_OUT = select.EPOLLOUT
_ERR = select.EPOLLHUP | select.EPOLLERR
_SIGCHLD = _signal.SIGCHLD
_SIGKILL = _signal.SIGKILL
_CLONE_NEWPID = 0x20000000


class _Conn:
    """One client of the control socket (a raw fd)."""

    __slots__ = ("closing", "dropped", "exec", "fd", "inbuf", "mode", "outbuf", "progress_at",
                 "read_closed", "stdin", "stdin_once", "streams")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.mode = "cmd"  # cmd | wait | attach
        self.stdin = False
        self.stdin_once = False
        self.streams: tuple[int, ...] = ()
        self.read_closed = False
        self.closing = False  # close once outbuf is flushed
        self.dropped = 0  # frames not delivered because this client was too slow
        self.progress_at = 0.0  # when outbuf last shrank or was last empty (monotonic)
        self.exec: _Exec | None = None  # the exec this connection attaches to or waits for


class _Stdio:
    """A process's stdio ends as the monitor holds them (the init's or an exec's), what is
    waiting to go to its stdin, and the attach clients reading its output."""

    __slots__ = ("attached", "in_fd", "log", "master", "outputs", "stdin_buf", "stdin_closing",
                 "stdin_paused")

    def __init__(self, fds: list[int], names: dict[str, int], open_stdin: bool,
                 log: LogWriter | None) -> None:
        self.outputs: dict[int, int] = {}  # fd -> stream number
        self.in_fd = -1  # the stdin pipe's write end, or the pty master
        self.master = -1
        if "master" in names:
            self.master = fds[names["master"]]
            self.outputs[self.master] = STDOUT
            if open_stdin:
                self.in_fd = self.master
        else:
            self.outputs[fds[names["stdout"]]] = STDOUT
            self.outputs[fds[names["stderr"]]] = STDERR
            if "stdin" in names:
                self.in_fd = fds[names["stdin"]]
        for fd in (*self.outputs, self.in_fd):
            if fd >= 0:
                os.set_blocking(fd, False)
        self.stdin_buf = bytearray()
        self.stdin_closing = False
        self.stdin_paused = False  # clients' stdin is not read until the buffer drains
        self.attached: list[_Conn] = []
        self.log = log  # the init's output is logged; an exec's is not


class _Exec:
    """One exec process: its stdio, waiters and, once ended, its code."""

    __slots__ = ("deadline", "exit_code", "id", "io", "pid", "status", "tty", "waiters")

    def __init__(self, exec_id: str, pid: int, io: _Stdio) -> None:
        self.id = exec_id
        self.pid = pid
        self.io = io
        self.tty = io.master >= 0
        self.waiters: list[_Conn] = []
        self.status: int | None = None  # the wait status, once reaped
        self.deadline: float | None = None  # after the exit: when leftover output is cut
        self.exit_code: int | None = None  # set when it has ended and its output is drained


def _noop(signum: int, frame: object) -> None:
    """SIGCHLD handler: the wakeup fd does the work; a handler must exist for it to fire."""


def _close(fd: int) -> None:
    try:  # noqa: SIM105 (contextlib costs the monitor pages)
        os.close(fd)
    except OSError:
        pass


def _passed_fds(ancillary: list[tuple[int, int, bytes]]) -> list[int]:
    """The file descriptors an SCM_RIGHTS message carried."""
    fds: list[int] = []
    for level, kind, data in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds.extend(memoryview(data)[: len(data) // 4 * 4].cast("i").tolist())
    return fds


def _fork_exec_child(ours: _socket.socket, theirs: _socket.socket,
                     run: Callable[[str, str, dict[str, Any], _socket.socket], object],
                     spec: str, container_id: str, request: dict[str, Any], *,
                     exit_code: int) -> int:
    """Fork a child that runs ``run(spec, container_id, request, theirs)`` with the monitor's
    signal set-up undone, and exits with ``exit_code`` if ``run`` returns; its pid."""
    pid = bare_fork()
    if pid == 0:
        try:
            ours.close()
            _signal.set_wakeup_fd(-1)
            _signal.signal(_SIGCHLD, _signal.SIG_DFL)
            run(spec, container_id, request, theirs)
        finally:
            os._exit(exit_code)
    return pid


class Monitor:
    """The state and event loop of one container's monitor."""

    def __init__(self, state: dict[str, Any], fds: list[int], wake_r: int) -> None:
        names: dict[str, int] = state["fds"]
        self.id: str = state["id"]
        self.pid: int = state["pid"]
        self.state_dir: str = state["state_dir"]
        self.tty: bool = state["tty"]
        self.cgroups_path: str | None = state["cgroups_path"]
        self.spec: str = state["spec"]  # kept as JSON text: only helpers need it parsed
        # Whether execs without a terminal run in one fork (the native runtime's
        # exec_in_place) rather than through a helper that calls the runtime.
        self.native: bool = bool(state.get("native", False))
        self.log = LogWriter(state["log_path"], state["log_driver"], state["log_max_size"],
                             state["log_max_file"], fd=fds[names["log"]],
                             attrs=state.get("log_attrs"))
        self.listener = _socket.socket(fileno=fds[names["listener"]])
        self.listener.setblocking(False)
        self.wake_r = wake_r
        self.status: str = state.get("status", "created")
        self.started_at: str | None = state.get("started_at")
        self.finished_at: str | None = None
        self.exit_status: int | None = None
        self.record: dict[str, Any] | None = None
        self.ep = select.epoll()
        self.readers: dict[int, Callable[[], None]] = {}
        self.writers: dict[int, Callable[[], None]] = {}
        self.masks: dict[int, int] = {}
        self.io = _Stdio(fds, names, bool(state["open_stdin"]), self.log)
        self.conns: dict[int, _Conn] = {}
        self.waiters: list[_Conn] = []
        self.drain_deadline: float | None = None
        # Output fds not read while an attach client catches up: fd -> (owner's outputs, reader).
        self.held: dict[int, tuple[dict[int, int], Callable[[], None]]] = {}
        self.hold_deadline = 0.0
        self.linger_deadline: float | None = None
        self.execs: dict[str, _Exec] = {}  # running and recently ended, oldest first
        self.exec_pids: dict[int, _Exec] = {}  # the running ones
        self._ops: dict[str, Callable[[_Conn, dict[str, Any]], dict[str, Any] | None]] = {
            "state": self._op_state,
            "start": self._op_start,
            "kill": self._op_kill,
            "wait": self._op_wait,
            "attach": self._op_attach,
            "resize": self._op_resize,
            "close_stdin": self._op_close_stdin,
            "reopen_log": self._op_reopen_log,
            "detach": self._op_detach,
            "exec": self._op_exec,
            "exec_resize": self._op_exec_resize,
            "exec_state": self._op_exec_state,
            "exec_wait": self._op_exec_wait,
            "exec_kill": self._op_exec_kill,
        }
        self._watch_read(self.wake_r, self._on_wakeup)
        self._watch_read(self.listener.fileno(), self._on_accept)
        self._watch_outputs(self.io)
        # Attach streams the spawn brought: registered before any output is read.
        for index, options in state.get("attach", ()):
            conn = self._add_conn(fds[index])
            self._send(conn, self._op_attach(conn, options))

    # ----- runtime calls, in a throwaway fork ---------------------------------------------

    def _in_helper(self, what: str, call: str, *args: Any, **kwargs: Any) -> Any:
        """Run ``runtime.<call>(id, *args, **kwargs)`` in a short-lived fork; return its result.

        The runtime's code (spec parsing, subprocess, cgroup files) would otherwise leave
        hundreds of private pages in this long-lived process (see the module docstring).
        """
        r, w = os.pipe2(os.O_CLOEXEC)
        pid = bare_fork()
        if pid == 0:
            try:
                os.close(r)
                _signal.set_wakeup_fd(-1)
                _signal.signal(_SIGCHLD, _signal.SIG_DFL)
                try:
                    answer = {"ok": True, "result": self._runtime_call(call, args, kwargs)}
                except BaseException as e:
                    if not isinstance(e, ServinError):
                        traceback.print_exc(file=sys.stderr)
                    answer = error_answer(e)
                os.write(w, encode_line(answer))
            finally:
                os._exit(0)
        os.close(w)
        chunks = []
        try:
            while chunk := os.read(r, 65536):
                chunks.append(chunk)
        finally:
            os.close(r)
            os.waitpid(pid, 0)
        if not chunks:
            raise Internal(f"{what}: the runtime helper died")
        answer = decode_line(b"".join(chunks))
        if not answer.get("ok"):
            raise error_from_answer(answer)
        return answer.get("result")

    def _runtime_call(self, call: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """In the helper: ``runtime.<call>(id, *args, **kwargs)``."""
        return getattr(_make_runtime(self.spec), call)(self.id, *args, **kwargs)

    # ----- the event loop --------------------------------------------------------------------

    def _sync(self, fd: int) -> None:
        mask = (_IN if fd in self.readers else 0) | (_OUT if fd in self.writers else 0)
        old = self.masks.get(fd, 0)
        if mask == old:
            return
        if not mask:
            del self.masks[fd]
            try:  # noqa: SIM105 (contextlib costs the monitor pages)
                self.ep.unregister(fd)
            except OSError:
                pass
        elif not old:
            self.ep.register(fd, mask)
            self.masks[fd] = mask
        else:
            self.ep.modify(fd, mask)
            self.masks[fd] = mask

    def _watch_read(self, fd: int, callback: Callable[[], None] | None) -> None:
        if callback is None:
            self.readers.pop(fd, None)
        else:
            self.readers[fd] = callback
        self._sync(fd)

    def _watch_write(self, fd: int, callback: Callable[[], None] | None) -> None:
        if callback is None:
            self.writers.pop(fd, None)
        else:
            self.writers[fd] = callback
        self._sync(fd)

    # Callbacks bound to their object (closures, not lambdas with default arguments: typed).
    def _output_reader(self, io: _Stdio, fd: int) -> Callable[[], None]:
        return lambda: self._on_output(io, fd)

    def _stdin_writer(self, io: _Stdio) -> Callable[[], None]:
        return lambda: self._on_stdin_writable(io)

    def _conn_reader(self, conn: _Conn) -> Callable[[], None]:
        return lambda: self._on_conn_read(conn)

    def _conn_writer(self, conn: _Conn) -> Callable[[], None]:
        return lambda: self._on_conn_write(conn)

    def _forget(self, fd: int) -> None:
        self.readers.pop(fd, None)
        self.writers.pop(fd, None)
        self._sync(fd)

    def serve(self) -> None:
        """Run until the container has exited, its record is written and clients drained."""
        self._reap()  # the init may have died while setup still ran
        while True:
            timeout = -1.0
            deadline = self.drain_deadline if self.record is None else self.linger_deadline
            for ex in self.exec_pids.values():
                if ex.deadline is not None and (deadline is None or ex.deadline < deadline):
                    deadline = ex.deadline
            if self.held and (deadline is None or self.hold_deadline < deadline):
                deadline = self.hold_deadline
            if deadline is not None:
                timeout = max(0.0, deadline - time.monotonic())
            for fd, events in self.ep.poll(timeout):
                if events & (_IN | _ERR):
                    reader = self.readers.get(fd)
                    if reader is not None:
                        reader()
                if events & (_OUT | _ERR):
                    writer = self.writers.get(fd)
                    if writer is not None:
                        writer()
            if self.held and time.monotonic() >= self.hold_deadline:
                self._release()  # whoever is still behind is stuck: its frames are dropped
            if self.exec_pids:
                self._check_execs()
            if self.record is None:
                if self.exit_status is not None and (
                    not self.io.outputs or time.monotonic() >= (self.drain_deadline or 0.0)
                ):
                    self._finish()
            elif not self._draining() or time.monotonic() >= (self.linger_deadline or 0.0):
                break
        self._shutdown()

    def _draining(self) -> bool:
        """Whether a client still has output coming: an attach stream or an answer."""
        if self.io.attached:
            return True
        return any(conn.outbuf for conn in self.conns.values())

    def _on_wakeup(self) -> None:
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass
        self._reap()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.pid and self.exit_status is None:
                self.exit_status = status
                self.finished_at = rfc3339_nano()
                self.drain_deadline = time.monotonic() + DRAIN_TIMEOUT
                continue
            ex = self.exec_pids.get(pid)
            if ex is not None and ex.status is None:
                ex.status = status
                ex.deadline = time.monotonic() + DRAIN_TIMEOUT

    # ----- stdio of the init and of execs ------------------------------------------------

    def _watch_outputs(self, io: _Stdio) -> None:
        for fd in io.outputs:
            self._watch_read(fd, self._output_reader(io, fd))

    def _on_output(self, io: _Stdio, fd: int) -> None:
        stream = io.outputs.get(fd)
        if stream is None:
            return
        if io.attached and self._hold_for(io.attached, fd, io.outputs):
            return
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:  # EIO: the pty's last slave closed, its end of output
            data = b""
        if not data:
            self._close_output(io, fd)
            return
        if io.log is not None:
            io.log.write(stream, data)
        if io.attached:
            self._broadcast(stream, data, io.attached)

    def _broadcast(self, stream: int, data: bytes, targets: list[_Conn]) -> None:
        frame = frame_header(stream, len(data)) + data
        for conn in targets:
            if stream not in conn.streams or conn.closing:
                continue
            if (len(conn.outbuf) + len(frame) > CLIENT_BUFFER_LIMIT
                    and time.monotonic() - conn.progress_at >= STALL_GRACE):
                conn.dropped += 1  # stuck: never let it stall the container
                continue
            if not conn.outbuf:
                conn.progress_at = time.monotonic()
                self._watch_write(conn.fd, self._conn_writer(conn))
            conn.outbuf += frame

    def _hold_for(self, conns: list[_Conn], fd: int, outputs: dict[int, int]) -> bool:
        """Whether output fd must wait (a client it feeds is behind but still taking data);
        if so it is unwatched until that client catches up or turns out stuck."""
        now = time.monotonic()
        behind = [c.progress_at for c in conns if len(c.outbuf) >= CLIENT_BUFFER_LIMIT
                  and not c.closing and now - c.progress_at < STALL_GRACE]  # fmt: skip
        if not behind:
            return False
        reader = self.readers.get(fd)
        if reader is not None:
            self.held[fd] = (outputs, reader)
            self._watch_read(fd, None)
        deadline = min(behind) + STALL_GRACE
        self.hold_deadline = deadline if len(self.held) == 1 else min(self.hold_deadline, deadline)
        return True

    def _release(self) -> None:
        """Read held outputs again (each read checks afresh whether to wait)."""
        held, self.held = self.held, {}
        for fd, (outputs, reader) in held.items():
            if fd in outputs:
                self._watch_read(fd, reader)

    def _close_output(self, io: _Stdio, fd: int) -> None:
        self.held.pop(fd, None)
        self._forget(fd)
        del io.outputs[fd]
        if fd == io.master:
            io.master = -1
            if io.in_fd == fd:
                io.in_fd = -1
                io.stdin_buf.clear()
        _close(fd)
        self._end_attach_streams(io)

    def _drain_outputs(self, io: _Stdio) -> None:
        """Read what is still buffered in the output pipes without waiting for more, then
        close them."""
        for fd in list(io.outputs):
            while fd in io.outputs:
                try:
                    data = os.read(fd, READ_CHUNK)
                except BlockingIOError:
                    break
                except OSError:
                    data = b""
                if not data:
                    self._close_output(io, fd)
                    break
                if io.log is not None:
                    io.log.write(io.outputs[fd], data)
                self._broadcast(io.outputs[fd], data, io.attached)
        for fd in list(io.outputs):
            self._close_output(io, fd)

    def _stdin_data(self, conn: _Conn, io: _Stdio, data: bytes | bytearray) -> None:
        if not conn.stdin or io.in_fd < 0 or io.stdin_closing:
            return
        if not io.stdin_buf:
            self._watch_write(io.in_fd, self._stdin_writer(io))
        io.stdin_buf += data
        if len(io.stdin_buf) >= STDIN_BUFFER_LIMIT and not io.stdin_paused:
            io.stdin_paused = True  # backpressure: read no more until the process catches up
            for c in io.attached:
                if c.stdin and not c.read_closed:
                    self._watch_read(c.fd, None)

    def _on_stdin_writable(self, io: _Stdio) -> None:
        try:
            n = os.write(io.in_fd, io.stdin_buf)
        except BlockingIOError:
            return
        except OSError:  # EPIPE: the process closed its stdin
            io.stdin_buf.clear()
            self._close_stdin_now(io)
            return
        del io.stdin_buf[:n]
        if io.stdin_buf:
            return
        self._watch_write(io.in_fd, None)
        if io.stdin_closing:
            self._close_stdin_now(io)
        # Resume only once the buffer is empty, whatever sizes the writes had on the way.
        if io.stdin_paused:
            io.stdin_paused = False
            for c in io.attached:
                if c.stdin and not c.read_closed:
                    self._watch_read(c.fd, self._conn_reader(c))

    def _close_stdin(self, io: _Stdio) -> None:
        if io.stdin_buf:
            io.stdin_closing = True  # after what clients already sent has been written
        else:
            self._close_stdin_now(io)

    def _close_stdin_now(self, io: _Stdio) -> None:
        fd = io.in_fd
        if fd < 0:
            return
        io.in_fd = -1
        io.stdin_closing = False
        if fd == io.master:
            # A terminal has no half-close; the pty stays for output.
            self._watch_write(fd, None)
            return
        self._forget(fd)
        _close(fd)
        self._end_attach_streams(io)

    def _end_attach_streams(self, io: _Stdio) -> None:
        """Once a process's output is over, its attach streams end when they have what was
        read, except those still feeding its open stdin: a process may read on after closing
        its stdout and stderr (busybox ``dd of=FILE`` does), and cutting its stdin then would
        lose data. Those end with the stdin, or with the process."""
        if io.outputs:
            return
        for conn in list(io.attached):
            if not (conn.stdin and not conn.read_closed and io.in_fd >= 0):
                self._close_when_flushed(conn)

    def _resize(self, io: _Stdio, what: str, request: dict[str, Any]) -> dict[str, Any]:
        if io.master < 0:
            raise InvalidArgument(f"{what} has no terminal to resize")
        rows, cols = int(request["rows"]), int(request["cols"])
        if not (0 < rows < 65536 and 0 < cols < 65536):
            raise InvalidArgument(f"bad terminal size {rows}x{cols}")
        fcntl.ioctl(io.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        return {"ok": True}

    def _io_of(self, conn: _Conn) -> _Stdio:
        """The stdio an attach connection is attached to."""
        return conn.exec.io if conn.exec is not None else self.io

    # ----- control connections ---------------------------------------------------------------

    def _on_accept(self) -> None:
        # One accept per event (epoll is level-triggered: more pending, more events).
        try:
            fd, _ = self.listener._accept()  # type: ignore[attr-defined]  # raw fd, no object
        except OSError:
            return  # EAGAIN, or EMFILE and friends: the client sees its connection fail
        self._add_conn(fd)

    def _add_conn(self, fd: int) -> _Conn:
        os.set_blocking(fd, False)
        conn = _Conn(fd)
        self.conns[fd] = conn
        self._watch_read(fd, self._conn_reader(conn))
        return conn

    def _drop(self, conn: _Conn) -> None:
        if self.conns.pop(conn.fd, None) is None:
            return
        if self.held:
            self._release()
        self._forget(conn.fd)
        if conn in self.waiters:
            self.waiters.remove(conn)
        if conn.exec is not None and conn in conn.exec.waiters:
            conn.exec.waiters.remove(conn)
        io = self._io_of(conn)
        if conn in io.attached:
            io.attached.remove(conn)
            if conn.stdin and conn.stdin_once and not conn.read_closed:
                self._close_stdin(io)
        _close(conn.fd)

    def _close_when_flushed(self, conn: _Conn) -> None:
        conn.closing = True
        if not conn.outbuf:
            self._drop(conn)

    def _on_conn_read(self, conn: _Conn) -> None:
        try:
            data = os.read(conn.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            self._drop(conn)
            return
        if not data:
            self._on_conn_eof(conn)
            return
        if conn.mode == "attach":
            self._stdin_data(conn, self._io_of(conn), data)
            return
        if conn.mode == "wait":
            return  # nothing more is expected; the answer comes at exit
        conn.inbuf += data
        while conn.mode == "cmd" and not conn.closing:
            nl = conn.inbuf.find(b"\n")
            if nl < 0:
                if len(conn.inbuf) > MAX_LINE:
                    self._drop(conn)
                return
            line = bytes(conn.inbuf[:nl])
            del conn.inbuf[: nl + 1]
            self._request(conn, line)
        if conn.mode == "attach" and conn.inbuf:
            rest = bytes(conn.inbuf)
            conn.inbuf.clear()
            self._stdin_data(conn, self._io_of(conn), rest)

    def _on_conn_eof(self, conn: _Conn) -> None:
        conn.read_closed = True
        self._watch_read(conn.fd, None)
        if conn.mode == "attach":
            io = self._io_of(conn)
            if conn.stdin and conn.stdin_once:  # an exec's attach is always stdin_once
                self._close_stdin(io)
            self._end_attach_streams(io)
            return  # may be a half-close: keep streaming output until the send fails
        if conn.outbuf:
            conn.closing = True
        else:
            self._drop(conn)

    def _on_conn_write(self, conn: _Conn) -> None:
        try:
            n = os.write(conn.fd, conn.outbuf)
        except BlockingIOError:
            return
        except OSError:
            self._drop(conn)
            return
        del conn.outbuf[:n]
        conn.progress_at = time.monotonic()
        if self.held and len(conn.outbuf) < CLIENT_BUFFER_LIMIT // 2:
            self._release()
        if not conn.outbuf:
            self._watch_write(conn.fd, None)
            if conn.closing:
                self._drop(conn)

    def _send(self, conn: _Conn, answer: dict[str, Any]) -> None:
        if not conn.outbuf:
            conn.progress_at = time.monotonic()
            self._watch_write(conn.fd, self._conn_writer(conn))
        conn.outbuf += encode_line(answer)

    def _request(self, conn: _Conn, line: bytes) -> None:
        try:
            request = decode_line(line)
            op = self._ops.get(request.get("op"))
            if op is None:
                raise InvalidArgument(f"unknown monitor request {request.get('op')!r}")
            answer = op(conn, request)
        except Exception as e:
            answer = error_answer(e)
        if answer is not None:
            self._send(conn, answer)

    # ----- operations ------------------------------------------------------------------------

    def _op_state(self, conn: _Conn, request: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": True,
            "status": self.status,
            "pid": self.pid,
            "started_at": self.started_at,
            "finished_at": None,
        }
        if self.record is not None:
            out.update(self.record)
        return out

    def _op_start(self, conn: _Conn, request: dict[str, Any]) -> dict[str, Any]:
        if self.status != "created" or self.exit_status is not None:
            word = "stopped" if self.exit_status is not None else self.status
            raise Conflict(f"container {self.id} is {word}, cannot start")
        self._in_helper("start", "start")
        self.status = "running"
        self.started_at = rfc3339_nano()
        return {"ok": True}

    def _op_kill(self, conn: _Conn, request: dict[str, Any]) -> dict[str, Any]:
        sig = int(request.get("signal", _SIGKILL))
        if self.exit_status is not None or self.record is not None:
            raise Conflict(f"container {self.id} is not running")
        if request.get("all"):
            self._in_helper("kill", "kill", sig, all_processes=True)
        else:
            # Direct and race-free: only this process reaps the init, so its pid cannot have
            # been recycled while exit_status is still unset.
            os.kill(self.pid, sig)
        return {"ok": True}

    def _op_wait(self, conn: _Conn, request: dict[str, Any]) -> dict[str, Any] | None:
        if self.record is not None:
            return {"ok": True, **self.record}
        conn.mode = "wait"
        self.waiters.append(conn)
        return None

    def _op_attach(self, conn: _Conn, request: dict[str, Any]) -> dict[str, Any]:
        if self.record is not None or (self.exit_status is not None and not self.io.outputs):
            raise Conflict(f"container {self.id} is not running, cannot attach")
        streams = []
        if request.get("stdout", True):
            streams.append(STDOUT)
        if request.get("stderr", True):
            streams.append(STDERR)
        conn.mode = "attach"
        conn.streams = tuple(streams)
        conn.stdin = bool(request.get("stdin", False)) and self.io.in_fd >= 0
        conn.stdin_once = bool(request.get("stdin_once", False))
        self.io.attached.append(conn)
        if self.io.stdin_paused and conn.stdin:
            self._watch_read(conn.fd, None)
        return {"ok": True, "tty": self.tty, "conn": conn.fd}

    def _op_detach(self, conn: _Conn, request: dict[str, Any]) -> dict[str, Any]:
        # The client of attach stream ``conn`` typed the detach keys: its going away must not
        # close the process's stdin as a disconnection would (stdin_once).
        target = self.conns.get(int(request.get("conn", -1)))
        if target is not None and target.mode == "attach":
            target.stdin_once = False
        return {"ok": True}

    def _op_resize(self, conn: _Conn, request: dict[str, Any]) -> dict[str, Any]:
        return self._resize(self.io, f"container {self.id}", request)

    def _op_close_stdin(self, conn: _Conn, request: dict[str, Any]) -> dict[str, Any]:
        self._close_stdin(self.io)
        return {"ok": True}

    def _op_reopen_log(self, conn: _Conn, request: dict[str, Any]) -> dict[str, Any]:
        self.log.reopen()
        return {"ok": True}

    # ----- exec processes --------------------------------------------------------------------

    def _op_exec(self, conn: _Conn, request: dict[str, Any]) -> dict[str, Any]:
        if self.status != "running" or self.exit_status is not None or self.record is not None:
            raise Conflict(f"container {self.id} is not running")
        exec_id = execsetup.check_exec_id(request.get("exec_id"))
        if exec_id in self.execs:
            raise Conflict(f"exec {exec_id} already exists")
        if len(self.exec_pids) >= MAX_RUNNING_EXECS:
            raise ResourceExhausted(f"container {self.id} runs {MAX_RUNNING_EXECS} execs already")
        answer, fds = self._exec_helper(request)
        names: dict[str, int] = answer["fds"]
        stdin = bool(request.get("stdin"))
        ex = _Exec(exec_id, int(answer["pid"]), _Stdio(fds, names, stdin, None))
        self._watch_outputs(ex.io)
        self.execs[exec_id] = ex
        self.exec_pids[ex.pid] = ex
        if request.get("attach"):
            # Registered before the loop reads any of its output: nothing is missed.
            conn.mode = "attach"
            conn.exec = ex
            conn.streams = (STDOUT, STDERR)
            conn.stdin = stdin and ex.io.in_fd >= 0
            conn.stdin_once = True  # the client's EOF or disconnection closes its stdin
            ex.io.attached.append(conn)
        return {"ok": True, "pid": ex.pid, "tty": ex.tty, "conn": conn.fd}

    def _exec_helper(self, request: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        """Start the exec in a throwaway fork (see ``execsetup``); its answer and our fds."""
        process = request.get("process")
        if self.native and isinstance(process, dict) and not process.get("terminal"):
            return self._exec_in_place(request)
        ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        _fork_exec_child(ours, theirs, execsetup.run, self.spec, self.id, request, exit_code=0)
        theirs.close()
        try:
            message, ancillary, _, _ = ours.recvmsg(MAX_LINE, _FDS_SPACE,
                                                    _socket.MSG_CMSG_CLOEXEC)
        finally:
            ours.close()
        # Not waited for here: the helper's exit (tearing down a copy of this process) takes
        # about a millisecond. Its SIGCHLD wakes the loop, whose ``_reap`` collects it (an
        # unknown pid there), and its exec'd child, reparented to this subreaper, after it.
        fds = _passed_fds(ancillary)
        answer = decode_line(message) if message else {"ok": False, "kind": "internal",
                                                       "error": "exec: the runtime helper died"}
        if not answer.get("ok"):
            for fd in fds:
                _close(fd)
            raise error_from_answer(answer)
        return answer, fds

    def _exec_in_place(self, request: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        """One fork: the child, born non-dumpable in the container's PID namespace, becomes
        the exec (see ``execsetup.run_in_place``); our fds, then EOF once it has exec'd."""
        try:
            pid_ns = os.open(f"/proc/{self.pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:  # the init is gone (only this process reaps it: not reused)
            raise Conflict(f"container {self.id} is not running") from None
        try:
            own = os.open("/proc/thread-self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            _close(pid_ns)
            raise
        ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        dumpable = get_dumpable()
        try:
            if dumpable:
                set_dumpable(False)  # the child's first instant in the container: no /proc/PID/exe
            setns(pid_ns, _CLONE_NEWPID)  # for the children forked from now: the next one
            try:
                pid = _fork_exec_child(ours, theirs, execsetup.run_in_place, self.spec,
                                       self.id, request, exit_code=1)
            finally:
                setns(own, _CLONE_NEWPID)
        finally:
            if dumpable:
                set_dumpable(True)
            _close(pid_ns)
            _close(own)
            theirs.close()
        fds: list[int] = []
        answer: dict[str, Any] | None = None
        ours.settimeout(EXEC_SETUP_TIMEOUT)
        try:
            while True:  # the fds message, then EOF (exec'd) or an error answer
                try:
                    message, ancillary, _, _ = ours.recvmsg(MAX_LINE, _FDS_SPACE,
                                                            _socket.MSG_CMSG_CLOEXEC)
                except TimeoutError:
                    os.kill(pid, _SIGKILL)  # not reaped yet (only the loop reaps it): ours
                    answer = {"ok": False, "kind": "internal", "error":
                              f"exec: the process did not start in {EXEC_SETUP_TIMEOUT:g}s"}
                    break
                fds.extend(_passed_fds(ancillary))
                if not message:
                    break
                answer = decode_line(message)
                if not answer.get("ok"):
                    break
        finally:
            ours.close()
        if answer is None or not answer.get("ok") or "fds" not in answer:
            for fd in fds:
                _close(fd)
            # It is this process's child: reaped by the loop like any helper.
            raise error_from_answer(answer or {"ok": False, "kind": "internal",
                                               "error": "exec: the process died unstarted"})
        answer["pid"] = pid
        return answer, fds

    def _exec_of(self, request: dict[str, Any]) -> _Exec:
        ex = self.execs.get(str(request.get("exec_id")))
        if ex is None:
            raise NotFound(f"no such exec: {request.get('exec_id')}")
        return ex

    def _op_exec_resize(self, conn: _Conn, request: dict[str, Any]) -> dict[str, Any]:
        ex = self._exec_of(request)
        return self._resize(ex.io, f"exec {ex.id}", request)

    def _op_exec_state(self, conn: _Conn, request: dict[str, Any]) -> dict[str, Any]:
        ex = self._exec_of(request)
        return {"ok": True, "running": ex.exit_code is None, "pid": ex.pid,
                "exit_code": ex.exit_code, "tty": ex.tty}

    def _op_exec_wait(self, conn: _Conn, request: dict[str, Any]) -> dict[str, Any] | None:
        ex = self._exec_of(request)
        if ex.exit_code is not None:
            return {"ok": True, "exit_code": ex.exit_code}
        conn.mode = "wait"
        conn.exec = ex
        ex.waiters.append(conn)
        return None

    def _op_exec_kill(self, conn: _Conn, request: dict[str, Any]) -> dict[str, Any]:
        ex = self._exec_of(request)
        if ex.status is not None or ex.exit_code is not None:
            raise Conflict(f"exec {ex.id} is not running")
        # Not reaped yet, and only this process reaps it: the pid is still this process.
        os.kill(ex.pid, int(request.get("signal", _SIGKILL)))
        return {"ok": True}

    def _check_execs(self) -> None:
        now = time.monotonic()
        for ex in list(self.exec_pids.values()):
            if ex.status is not None and (not ex.io.outputs or now >= (ex.deadline or 0.0)):
                self._finish_exec(ex)

    def _finish_exec(self, ex: _Exec) -> None:
        """The exec has exited (or died with the container): drain, record, tell."""
        self._drain_outputs(ex.io)
        ex.io.stdin_buf.clear()
        self._close_stdin_now(ex.io)
        status = ex.status
        if status is None:
            ex.exit_code = 128 + _SIGKILL  # still unreaped when its container went
        elif os.WIFSIGNALED(status):
            ex.exit_code = 128 + os.WTERMSIG(status)
        else:
            ex.exit_code = os.WEXITSTATUS(status)
        self.exec_pids.pop(ex.pid, None)
        for conn in list(ex.waiters):
            self._send(conn, {"ok": True, "exit_code": ex.exit_code})
            self._close_when_flushed(conn)
        ex.waiters.clear()
        for conn in list(ex.io.attached):
            self._close_when_flushed(conn)
        ended = [e for e in self.execs.values() if e.exit_code is not None]
        for old in ended[: max(0, len(ended) - EXEC_HISTORY)]:
            del self.execs[old.id]

    # ----- the end ---------------------------------------------------------------------------

    def _finish(self) -> None:
        """The init has exited: log the rest, write the exit record, then tell waiters."""
        self._drain_outputs(self.io)
        # Every line is in the kernel before the record exists (the writer has no buffer of
        # its own). No fdatasync: that guards against a machine crash, which also takes the
        # record (it lives in the volatile exec root), and costs milliseconds per exit.
        self.log.finish()
        status = self.exit_status
        assert status is not None
        sig: int | None = None
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            code = 128 + sig
        else:
            code = os.WEXITSTATUS(status)
        record = {
            "exit_code": code,
            "signal": sig,
            "oom_killed": self._oom_killed(),
            "finished_at": self.finished_at,
            "started_at": self.started_at,
            "pid": self.pid,
        }
        # Not fsynced: the record lives in the exec root, which a crash of the machine wipes
        # along with the container; a crash of the daemon or this process loses nothing.
        write_file_atomic(os.path.join(self.state_dir, EXIT_RECORD), encode_line(record),
                          durable=False)
        # The runtime's state goes before anyone hears of the exit, so a daemon that reacts
        # by creating the container again (restart policy) finds the id free.
        self._delete_container()
        # Execs die with the container's PID namespace (or were killed with its cgroup).
        self._reap()
        for ex in list(self.exec_pids.values()):
            self._finish_exec(ex)
        self.record = record
        self.status = "stopped"
        self._close_stdin_now(self.io)
        for conn in list(self.io.attached):  # the ones that were still feeding stdin
            self._close_when_flushed(conn)
        for conn in list(self.waiters):
            self._send(conn, {"ok": True, **record})
            self._close_when_flushed(conn)
        self.waiters.clear()
        self.linger_deadline = time.monotonic() + LINGER_TIMEOUT

    def _delete_container(self) -> None:
        # This process is about to exit: no need for a helper fork to keep its memory small.
        try:
            _make_runtime(self.spec).delete(self.id)
        except Exception as e:
            print(f"servin-monitor {self.id}: delete: {e}", file=sys.stderr, flush=True)
            try:  # noqa: SIM105 (contextlib costs the monitor pages)
                _make_runtime(self.spec).delete(self.id, force=True)
            except Exception:
                pass

    def _oom_killed(self) -> bool:
        native: Any = sys.modules.get("servin.engine.runtime.native.runtime")  # preloaded
        cgroups: Any = sys.modules.get("servin.engine.linux.cgroups")
        if cgroups is None or not self.cgroups_path:
            return False
        try:
            driver = (native.preloaded_cgroup_driver() if native is not None else None) \
                or cgroups.detect_driver()
            return bool(driver.open(self.cgroups_path).oom_killed())
        except Exception:
            return False

    def _shutdown(self) -> None:
        for conn in list(self.conns.values()):
            self._drop(conn)
        for name in (MONITOR_SOCK, MONITOR_PID):
            try:  # noqa: SIM105 (contextlib costs the monitor pages)
                os.unlink(os.path.join(self.state_dir, name))
            except FileNotFoundError:
                pass
        self.listener.close()
        self.log.close()


def _make_runtime(spec_text: str) -> Any:
    from servin.engine.runtime.monitor.protocol import SpawnSpec
    from servin.engine.runtime.monitor.runtimes import make_runtime

    spec = SpawnSpec.from_json(decode_line(spec_text.encode()))
    return make_runtime(spec.runtime, spec.state_dir)


def main(listen_fd: int, taken_w: int) -> int:
    """The monitor's life, in the child the zygote forked ahead of a request; returns its
    exit status.

    Everything a monitor does before it knows its container is done at once: its setup
    child is forked too and waits in ``accept`` on the zygote's socket (``setup.take``).
    Until a connection is taken both die with their parent (a waiting monitor must not
    outlive its zygote); after that, a monitor outlives everything.
    """
    try:
        set_parent_death_signal(_SIGKILL)
        if os.getppid() != setup.ZYGOTE.get("pid", os.getppid()):
            return 0  # the zygote is gone already
        # The zygote's dispositions are not ours: its SIGTERM handler would release its
        # socket, and an ignored signal would stay ignored down to the container's process.
        _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)
        os.setsid()
        set_child_subreaper()
        gc.enable()
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        _signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        _signal.signal(_SIGCHLD, _noop)
        ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        me = os.getpid()
        setup_pid = bare_fork()
        if setup_pid == 0:
            code = 1
            try:
                ours.close()
                _signal.set_wakeup_fd(-1)
                _signal.signal(_SIGCHLD, _signal.SIG_DFL)
                os.close(wake_r)
                os.close(wake_w)
                code = setup.take(listen_fd, taken_w, me, theirs)
            finally:
                os._exit(code)
        theirs.close()
        os.close(listen_fd)
        os.close(taken_w)
        # Setup says when it has taken a connection: from then on this process is a monitor
        # (or about to exit), never to be killed with the zygote.
        ours.recv(16)
        set_parent_death_signal(0)
        set_process_name(MONITOR_COMM)
        message, ancillary, _, _ = ours.recvmsg(MAX_LINE, _FDS_SPACE, _socket.MSG_CMSG_CLOEXEC)
        ours.close()
        if not message:
            os.waitpid(setup_pid, 0)  # a ping, or a failed spawn: setup answered, we go
            return 0
        fds = _passed_fds(ancillary)
        monitor = Monitor(decode_line(message), fds, wake_r)
    except BaseException:
        traceback.print_exc(file=sys.stderr)
        return 1
    try:
        monitor.serve()
    except BaseException:
        traceback.print_exc(file=sys.stderr)
        return 1
    return 0
