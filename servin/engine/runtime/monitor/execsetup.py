"""Starting an exec for a monitor, in a throwaway fork of it (see monitor.py on memory).

The fork makes the process's stdio (pipes, or a console socket the runtime sends the pty
master to), asks the OCI runtime to ``exec``, then hands the monitor's ends of the stdio to
the monitor over a SOCK_SEQPACKET socket (SCM_RIGHTS) with one JSON line:
``{"ok": true, "pid": P, "fds": {"stdout": 0, "stderr": 1, "stdin": 2} | {"master": 0}}``
or an ``ok: false`` error answer. When the fork exits, the exec'd process is reparented to
the monitor, a child subreaper, which reaps it and records its exit status.

With the native runtime and no terminal there is one fork, not two (``run_in_place``): the
monitor forks this process, non-dumpable, into the container's PID namespace; it sends the
monitor's ends of the stdio pipes first (``{"ok": true, "fds": ...}``), then becomes the
exec'd program itself (the monitor reads EOF once ``execve`` succeeded) or sends an error
answer. The monitor's own child from the start: nothing to reparent, no helper to wait for.
"""

from __future__ import annotations

import array
import contextlib
import os
import re
import socket
import sys
import traceback
from pathlib import Path
from typing import Any

from servin.engine.runtime.monitor.protocol import (
    SpawnSpec,
    decode_line,
    encode_line,
    error_answer,
    one_line,
)
from servin.engine.runtime.monitor.runtimes import make_runtime
from servin.engine.runtime.oci import Stdio
from servin.errors import Internal, InvalidArgument, ServinError

CONSOLE_TIMEOUT = 10.0
UNIX_PATH_MAX = 107
EXEC_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_exec_id(exec_id: object) -> str:
    """An exec id safe to use in a file name."""
    if not isinstance(exec_id, str) or not EXEC_ID.match(exec_id):
        raise InvalidArgument(f"invalid exec id {exec_id!r}")
    return exec_id


def run(spec_text: str, container_id: str, request: dict[str, Any], channel: Any) -> None:
    """Start the exec ``request`` describes; answer the monitor on ``channel``."""
    fds: list[int] = []
    theirs: list[int] = []
    names: dict[str, int] = {}
    console: socket.socket | None = None
    console_path = ""
    try:
        spec = SpawnSpec.from_json(decode_line(spec_text.encode()))
        exec_id = check_exec_id(request.get("exec_id"))
        process = request.get("process")
        if not isinstance(process, dict):
            raise InvalidArgument("exec: process must be an OCI process object")
        tty = bool(process.get("terminal", False))
        stdio = None
        if tty:
            console, console_path = _listen(spec.state_dir, f"exec-{exec_id}.sock")
        else:
            stdio = _pipes(bool(request.get("stdin")), names, fds, theirs)
        runtime: Any = make_runtime(spec.runtime, spec.state_dir)
        pid = runtime.exec(container_id, process, stdio,
                           console_socket=Path(console_path) if console else None)
        for fd in theirs:
            os.close(fd)
        theirs = []
        if console is not None:
            names["master"] = len(fds)
            fds.append(_receive_console(console))
        channel.sendmsg([encode_line({"ok": True, "pid": pid, "fds": names})],
                        [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    except BaseException as exc:
        if not isinstance(exc, ServinError):
            traceback.print_exc(file=sys.stderr)
        with contextlib.suppress(OSError):
            channel.sendmsg([encode_line(error_answer(exc))])
    finally:
        for fd in fds + theirs:
            with contextlib.suppress(OSError):
                os.close(fd)
        if console is not None:
            console.close()
            with contextlib.suppress(OSError):
                os.unlink(Path(spec.state_dir) / f"exec-{request.get('exec_id')}.sock")


def run_in_place(spec_text: str, container_id: str, request: dict[str, Any],
                 channel: Any) -> None:
    """Become the exec ``request`` describes (native runtime, no terminal); returns only
    after telling the monitor on ``channel`` why it could not."""
    fds: list[int] = []
    theirs: list[int] = []
    names: dict[str, int] = {}
    try:
        spec = SpawnSpec.from_json(decode_line(spec_text.encode()))
        check_exec_id(request.get("exec_id"))
        process = request.get("process")
        if not isinstance(process, dict) or process.get("terminal"):
            raise InvalidArgument("exec: process must be an OCI process object, no terminal")
        stdio = _pipes(bool(request.get("stdin")), names, fds, theirs)
        channel.sendmsg([encode_line({"ok": True, "fds": names})],
                        [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        for fd in fds:
            os.close(fd)
        fds = []
        runtime: Any = make_runtime(spec.runtime, spec.state_dir)
        runtime.exec_in_place(container_id, process, stdio, channel)
    except BaseException as exc:
        from servin.engine.runtime.native.process import describe_error, error_kind

        # No traceback: past its stdio's set-up, this process's stderr is the exec's own.
        answer = {"ok": False, "kind": error_kind(exc), "error": one_line(describe_error(exc))}
        with contextlib.suppress(OSError):
            channel.sendmsg([encode_line(answer)])
    finally:
        for fd in fds + theirs:
            with contextlib.suppress(OSError):
                os.close(fd)


def _pipes(stdin: bool, names: dict[str, int], fds: list[int], theirs: list[int]) -> Stdio:
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    names["stdout"] = len(fds)
    fds.append(out_r)
    theirs.append(out_w)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    names["stderr"] = len(fds)
    fds.append(err_r)
    theirs.append(err_w)
    if stdin:
        in_r, in_w = os.pipe2(os.O_CLOEXEC)
        names["stdin"] = len(fds)
        fds.append(in_w)
    else:
        in_r = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    theirs.append(in_r)
    return Stdio(stdin=in_r, stdout=out_w, stderr=err_w)


def _listen(state_dir: Path, name: str) -> tuple[socket.socket, str]:
    """A listening socket at ``state_dir/name``; the path to give the runtime."""
    path = str(Path(state_dir) / name)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    if len(path.encode()) > UNIX_PATH_MAX:
        # Through a directory fd of this process: short, and valid for its children.
        dir_fd = os.open(state_dir, os.O_PATH | os.O_DIRECTORY)
        path = f"/proc/{os.getpid()}/fd/{dir_fd}/{name}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(Path(state_dir) / name, 0o600)
        sock.listen(1)
    except BaseException:
        sock.close()
        raise
    return sock, path


def _receive_console(console: socket.socket) -> int:
    console.settimeout(CONSOLE_TIMEOUT)
    try:
        conn, _ = console.accept()
    except TimeoutError:
        raise Internal("the runtime did not send the exec's terminal") from None
    with conn:
        conn.settimeout(CONSOLE_TIMEOUT)
        _, received, _, _ = socket.recv_fds(conn, 4096, 1, socket.MSG_CMSG_CLOEXEC)
    if not received:
        raise Internal("the runtime sent no terminal for the exec")
    return received[0]
