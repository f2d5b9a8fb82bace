"""``exec`` for the native runtime: one more process inside a running container.

The new process joins everything its container's init has: every namespace (read from
``/proc/<init>/ns/*``, so a namespace the container shares with the host or another container
is joined as it is), its cgroup, and it gets the identity, capabilities, rlimits,
no_new_privs and seccomp filter its OCI ``process`` object and the bundle's ``linux.seccomp``
say. As for the init, the caller's thread enters the container's PID namespace only for the
instant of the fork, so the child is born inside it.

Sync with the child, over a SOCK_SEQPACKET socketpair (one JSON message per datagram):

    caller -> child   {"type": "go"}        the child has been placed in the cgroup
    child -> caller   {"type": "error", "kind": K, "message": M}

The child's end is close-on-exec: the caller reads EOF exactly when ``execve`` succeeded.
The caller gets the child's host PID; once the caller exits, the process is reparented to
the nearest child subreaper (the container's monitor) or to the host's init.

``exec_in_place`` is the same without the fork: a process that its parent (the monitor) has
already forked into the container's PID namespace, non-dumpable, places itself in the cgroup,
joins the rest and becomes the program (one fork per exec instead of two).
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from servin.engine.linux import fds, namespaces, prctl, terminal
from servin.engine.runtime.native import process as proc
from servin.engine.runtime.native.spec import Process, parse_process
from servin.engine.runtime.oci import Stdio
from servin.errors import Conflict, Internal, InvalidArgument

# /proc/<pid>/ns/<name> -> setns type, in the order they are joined. The mount namespace comes
# last: after it, /proc and /sys are the container's. pid is handled apart (before the fork).
_JOIN = (
    ("ipc", namespaces.CLONE_NEWIPC),
    ("uts", namespaces.CLONE_NEWUTS),
    ("net", namespaces.CLONE_NEWNET),
    ("cgroup", namespaces.CLONE_NEWCGROUP),
    ("mnt", namespaces.CLONE_NEWNS),
)


@dataclass
class ExecContext:
    """What the forked child inherits from the caller (all fds close-on-exec)."""

    process: Process
    sync: socket.socket
    stdio: Stdio | None
    console: socket.socket | None
    namespace_fds: list[tuple[int, int, str]]  # (fd, CLONE_NEW*, name)
    seccomp_program: tuple[bytes, int] | None
    placed: bool = False  # already in the container's cgroup: no "go" to wait for


def open_namespaces(pid: int) -> tuple[list[tuple[int, int, str]], int | None]:
    """Open the init's namespaces that differ from the caller's; (joinable ones, pid ns fd)."""
    opened: list[tuple[int, int, str]] = []
    pid_fd: int | None = None
    try:
        for name, flag in _JOIN:
            fd = _open_if_different(pid, name, name)
            if fd is not None:
                opened.append((fd, flag, name))
        pid_fd = _open_if_different(pid, "pid", "pid")
    except BaseException:
        for fd, _, _ in opened:
            os.close(fd)
        raise
    return opened, pid_fd


def _open_if_different(pid: int, name: str, own: str) -> int | None:
    path = f"/proc/{pid}/ns/{name}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        if name == "cgroup":
            return None  # a kernel without cgroup namespaces
        raise Conflict(f"process {pid} is gone") from None
    except ProcessLookupError:
        raise Conflict(f"process {pid} is gone") from None
    theirs = os.fstat(fd)
    mine = os.stat(f"/proc/thread-self/ns/{own}")
    if (theirs.st_dev, theirs.st_ino) == (mine.st_dev, mine.st_ino):
        os.close(fd)  # shared with the caller: nothing to join
        return None
    return fd


def fork_exec(ctx: ExecContext, pid_ns_fd: int | None) -> int:
    """Fork the child (inside the container's PID namespace); return its host PID."""
    saved = None
    if pid_ns_fd is not None:
        saved = os.open("/proc/thread-self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            namespaces.setns(pid_ns_fd, namespaces.CLONE_NEWPID, path="container pid namespace")
        except OSError as exc:
            os.close(saved)
            raise Internal(f"pid namespace: {exc.strerror}") from None
    try:
        # Born non-dumpable: from its first instant in the container's PID namespace until
        # execve its /proc/PID/exe (this interpreter) cannot be opened from the container.
        with prctl.non_dumpable():
            pid = os.fork()
            if pid == 0:
                run_child(ctx)  # never returns
    finally:
        if saved is not None:
            try:
                namespaces.setns(saved, namespaces.CLONE_NEWPID, path="own pid namespace")
            finally:
                os.close(saved)
    return pid


def wait_exec(sock: socket.socket, timeout: float) -> None:
    """Wait until the child has exec'd (EOF) or failed (its message, raised as its error)."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except TimeoutError:
        raise Internal(f"exec: the process did not start in {timeout:g}s") from None
    if not data:
        return
    # The child exits by itself after its message; the caller reaps it (until then its pid
    # cannot be reused, so the caller's SIGKILL on failure is safe).
    try:
        message = json.loads(data)
    except ValueError:
        raise Internal(f"exec: unreadable message from the process: {data[:200]!r}") from None
    from servin.errors import ERROR_TABLE

    kinds = {m.cls.kind: m.cls for m in ERROR_TABLE}
    cls = kinds.get(str(message.get("kind")), Internal)
    raise cls(str(message.get("message", "exec failed")))


def load_process(raw: dict[str, Any], terminal_expected: bool) -> Process:
    """Parse and check the OCI ``process`` object of an exec."""
    process = parse_process(raw)
    if process.terminal != terminal_expected:
        raise InvalidArgument("process.terminal and the console socket must go together")
    return process


# ----- in the child --------------------------------------------------------------------------


def run_child(ctx: ExecContext) -> NoReturn:
    """Join the container and exec the process. Never returns."""
    gc.disable()  # inherited objects may own fds closed below (see init.run_init)
    try:
        _join_and_exec(ctx)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            report = {"type": "error", "kind": proc.error_kind(exc),
                      "message": proc.describe_error(exc)}
            ctx.sync.send(json.dumps(report).encode(), socket.MSG_NOSIGNAL)
    os._exit(1)


def exec_in_place(ctx: ExecContext) -> NoReturn:
    """Join the container and exec the process in this very process (see the module doc).

    The caller has checked that this process was born in the container's PID namespace
    and has placed it in the container's cgroup. Raises what stops it; never returns.
    """
    gc.disable()  # as in run_child: inherited objects may own fds closed below
    _join_and_exec(ctx)
    raise Internal("exec: the program returned")  # exec_program never returns


def _join_and_exec(ctx: ExecContext) -> None:
    process = ctx.process
    if ctx.stdio is not None:
        proc.install_stdio(ctx.stdio)
    keep = [ctx.sync.fileno(), *(fd for fd, _, _ in ctx.namespace_fds)]
    if ctx.console is not None:
        keep.append(ctx.console.fileno())
    fds.close_all_except(keep)
    os.setsid()
    if not ctx.placed:
        data = ctx.sync.recv(4096)  # "go": the caller has put us in the container's cgroup
        if not data:
            raise OSError(errno.EPIPE, "the caller went away before the process was placed")
    for fd, flag, name in ctx.namespace_fds:
        namespaces.setns(fd, flag, path=f"the container's {name} namespace")
        os.close(fd)
    # setns(CLONE_NEWNS) left root and cwd at the namespace's root: the container's rootfs.
    if process.terminal:
        _setup_terminal(ctx, process)
    proc.apply_limits(process)
    if ctx.seccomp_program is not None and not process.no_new_privileges:
        proc.load_seccomp(ctx.seccomp_program)  # needs CAP_SYS_ADMIN, given up just below
    proc.apply_identity(process)
    fds.close_all_except([ctx.sync.fileno()])
    proc.change_directory(process.cwd)
    executable = proc.find_executable(process)
    env = proc.environment(process.env)
    proc.restore_signals()
    proc.exec_program(process, executable, env, ctx.seccomp_program)


def _setup_terminal(ctx: ExecContext, process: Process) -> None:
    """A new pty from the container's devpts; the master goes to the console socket."""
    assert ctx.console is not None
    master, slave, name = terminal.open_pty("/dev/ptmx")
    try:
        if process.uid != 0:
            os.fchown(slave, process.uid, -1)
        size = process.console_size
        if size is not None and size[0] and size[1]:
            terminal.set_window_size(slave, size[0], size[1])
        terminal.send_fd(ctx.console, master, name.encode())
    finally:
        os.close(master)
    ctx.console.close()
    terminal.set_controlling_terminal(slave)
    for target in (0, 1, 2):
        os.dup2(slave, target, inheritable=True)
    os.close(slave)


def bundle_seccomp(bundle: Path) -> dict[str, Any] | None:
    """The bundle's ``linux.seccomp`` profile (the container's filter), if it has one."""
    try:
        with open(bundle / "config.json", "rb") as file:
            raw = json.load(file)
    except (OSError, ValueError) as exc:
        raise Internal(f"exec: cannot read the container's config.json: {exc}") from None
    return (raw.get("linux") or {}).get("seccomp") or None
