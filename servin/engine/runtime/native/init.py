"""The container's init: what the forked child does between fork() and execve().

The child is forked by :mod:`servin.engine.runtime.native.runtime` already inside its new PID
namespace (it is PID 1 there). It talks to its creator over ``sync``, a SOCK_SEQPACKET
socketpair, with one JSON message per datagram:

    creator -> init   {"type": "go"}                 the init has been placed in its cgroup
    init -> creator   {"type": "ready"}              set up; now waiting for start
    init -> creator   {"type": "error", "kind": K, "message": M}

After "ready" the init blocks in accept() on ``listener``, the state directory's start.sock.
``start`` (from any process) connects and sends b"start"; the init then execs. The accepted
connection is close-on-exec, so the starter reads EOF exactly when execve succeeded, or an
error message when it failed.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import os
import signal
import socket
from dataclasses import dataclass, field
from typing import NoReturn

from servin.engine.linux import fds, namespaces, prctl, terminal, uts
from servin.engine.linux.netdev import set_link_up
from servin.engine.runtime.native import process as proc
from servin.engine.runtime.native.rootfs import RootfsError, prepare_rootfs
from servin.engine.runtime.native.spec import ContainerSpec
from servin.engine.runtime.oci import Stdio

# The order to join existing namespaces in: network before uts/ipc does not matter to the
# kernel, but all of them must happen before the mount namespace work.
_JOIN_ORDER = ("ipc", "uts", "network")
_NEW_FIRST = ("mount", "uts", "ipc", "network")


@dataclass
class InitContext:
    """What the init inherits from its creator (all fds are close-on-exec)."""

    spec: ContainerSpec
    sync: socket.socket
    listener: socket.socket
    stdio: Stdio | None
    console: socket.socket | None = None
    namespace_fds: dict[str, int] = field(default_factory=dict)
    seccomp_program: tuple[bytes, int] | None = None  # compiled by the creator


class _Reporter:
    """Where an error goes: the creator before "ready", the starter after it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock: socket.socket | None = sock

    def send(self, message: dict[str, str]) -> None:
        if self.sock is None:
            return
        # If the other side is gone, nothing more can be said.
        with contextlib.suppress(OSError):
            self.sock.send(json.dumps(message).encode(), socket.MSG_NOSIGNAL)


def run_init(ctx: InitContext) -> NoReturn:
    """Set the container up and exec its process. Never returns."""
    # Objects inherited from the creator may own fds that are closed (and reused) below; a
    # cyclic collection finalizing one of them would close one of ours.
    gc.disable()
    reporter = _Reporter(ctx.sync)
    try:
        _setup_and_exec(ctx, reporter)
    except BaseException as exc:  # every failure must reach the creator, then exit
        reporter.send({"type": "error", "kind": _kind(exc), "message": proc.describe_error(exc)})
    os._exit(1)


def _setup_and_exec(ctx: InitContext, reporter: _Reporter) -> None:
    spec = ctx.spec
    process = spec.process
    if ctx.stdio is not None:
        proc.install_stdio(ctx.stdio)
    keep = [ctx.sync.fileno(), ctx.listener.fileno(), *ctx.namespace_fds.values()]
    if ctx.console is not None:
        keep.append(ctx.console.fileno())
    # Nothing of the creator's (sockets, database files, other containers' pipes) may leak.
    fds.close_all_except(keep)
    os.umask(0)
    # If the creator dies during setup, do not linger half-built. Cleared before "ready".
    prctl.set_pdeathsig(signal.SIGKILL)
    os.setsid()

    _enter_namespaces(ctx)
    network = spec.namespace("network")
    if network is not None and not network.path:
        # A new network namespace starts with lo down; runc and crun bring it up too.
        set_link_up("lo")
    _write_sysctls(spec.sysctl)
    if spec.hostname:
        uts.set_hostname(spec.hostname)
    if spec.domainname:
        uts.set_domainname(spec.domainname)

    placement = _Placement(ctx.sync)
    # The creator makes the cgroup and moves the init into it meanwhile (milliseconds on v1): the
    # mounts run in parallel until one needs the cgroup (see prepare_rootfs).
    # Without a cgroup of its own the container is shown none (not the creator's).
    prepare_rootfs(spec, placement.own_cgroups if spec.cgroups_path else list)
    placement.wait()
    cgroup_ns = spec.namespace("cgroup")
    if cgroup_ns is not None:
        # After the cgroup placement, so the namespace's root is the container's cgroup.
        if cgroup_ns.path:
            namespaces.setns(ctx.namespace_fds["cgroup"], namespaces.CLONE_NEWCGROUP,
                             path=cgroup_ns.path)
        else:
            namespaces.unshare(namespaces.CLONE_NEWCGROUP)
    for fd in ctx.namespace_fds.values():
        os.close(fd)
    if process.terminal:
        _setup_terminal(ctx, process.uid, process.console_size)

    proc.apply_limits(process)
    if ctx.seccomp_program is not None and not process.no_new_privileges:
        # Without no_new_privs the filter can only be loaded with CAP_SYS_ADMIN, which the
        # identity switch below gives up.
        proc.load_seccomp(ctx.seccomp_program)
    proc.apply_identity(process)
    # Only the two sockets stay open from here on, so a cwd like /proc/self/fd/N cannot name
    # anything of the host; chdir runs as the container's user with its final capabilities.
    fds.close_all_except([ctx.sync.fileno(), ctx.listener.fileno()])
    proc.change_directory(process.cwd)
    executable = proc.find_executable(process)
    env = proc.environment(process.env)

    prctl.set_pdeathsig(0)
    reporter.send({"type": "ready"})
    ctx.sync.close()

    conn = _wait_for_start(ctx.listener)
    reporter.sock = conn
    proc.restore_signals()
    proc.exec_program(process, executable, env,
                      ctx.seccomp_program if spec.seccomp is not None else None)


def _enter_namespaces(ctx: InitContext) -> None:
    spec = ctx.spec
    for kind in _JOIN_ORDER:
        ns = spec.namespace(kind)
        if ns is not None and ns.path:
            namespaces.setns(ctx.namespace_fds[kind], ns.flag, path=ns.path)
    flags = 0
    for kind in _NEW_FIRST:
        ns = spec.namespace(kind)
        if ns is not None and not ns.path:
            flags |= ns.flag
    namespaces.unshare(flags)


class _Placement:
    """The creator's "go" (the init is in its cgroup), awaited once, as late as possible."""

    def __init__(self, sync: socket.socket) -> None:
        self.sync = sync
        self.done = False

    def wait(self) -> None:
        if self.done:
            return
        data = self.sync.recv(4096)
        if not data:
            raise OSError(errno.EPIPE, "the creator went away before the container was placed")
        message = json.loads(data)
        if message.get("type") != "go":
            raise OSError(errno.EPROTO, f"unexpected message from the creator: {message!r}")
        self.done = True

    def own_cgroups(self) -> list[str]:
        """/proc/self/cgroup once placed (read before the cgroup namespace is unshared)."""
        self.wait()
        with open("/proc/self/cgroup", encoding="utf-8") as file:
            return file.readlines()


def _write_sysctls(sysctl: dict[str, str]) -> None:
    for key, value in sysctl.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, value.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            raise OSError(exc.errno, f"sysctl {key}={value}: {os.strerror(exc.errno or 0)}") \
                from None


def _setup_terminal(ctx: InitContext, uid: int, size: tuple[int, int] | None) -> None:
    """Allocate the pty in the container's devpts, hand the master to the console socket."""
    assert ctx.console is not None
    master, slave, name = terminal.open_pty("/dev/ptmx")
    try:
        if uid != 0:
            os.fchown(slave, uid, -1)  # the container's user owns its terminal
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


def _wait_for_start(listener: socket.socket) -> socket.socket:
    while True:
        conn, _ = listener.accept()
        data = conn.recv(64)
        if data == b"start":
            listener.close()
            return conn
        conn.close()  # a stray connection (e.g. a liveness probe): keep waiting


def _kind(exc: BaseException) -> str:
    return "invalid_argument" if isinstance(exc, RootfsError) else proc.error_kind(exc)

