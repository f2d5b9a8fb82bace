"""NativeRuntime: Servin's own OCI runtime, forking the container init straight from Python.

Where the init ends up: it is a **direct child of the caller**. For a new PID namespace the
calling thread does ``unshare(CLONE_NEWPID)`` (which only affects children forked later),
forks (the child is PID 1 of the new namespace), then ``setns`` back to its own PID namespace
so that its later forks are ordinary. No intermediate process exists, so no subreaper is
needed and the caller simply ``waitpid()``s the returned PID. Joining an existing PID
namespace (``path``) works the same way with ``setns`` instead of ``unshare``.

Only this thread's "PID namespace for children" changes, and only for the instant of the
fork, so other threads of a multi-threaded caller are unaffected.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import os
import select
import shutil
import signal as signals
import socket
import struct
import time
from pathlib import Path
from typing import Any, NoReturn

from servin.engine.linux import namespaces, prctl
from servin.engine.runtime.native.init import InitContext, run_init
from servin.engine.runtime.native.spec import ContainerSpec, cgroup_resources, load_spec
from servin.engine.runtime.native.state import (
    START_SOCKET,
    RecordedState,
    check_id,
    is_alive,
    process_start_time,
    read_state,
    write_state,
)
from servin.engine.runtime.oci import ContainerState, Status, Stdio
from servin.errors import (
    Conflict,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ServinError,
    Unavailable,
)

log = logging.getLogger(__name__)

EXEC_SECCOMP_FILE = "exec-seccomp.bin"  # the container's compiled filter, for its execs

_ERROR_KINDS: dict[str, type[ServinError]] = {
    "invalid_argument": InvalidArgument,
    "not_found": NotFound,
    "permission_denied": PermissionDenied,
    "conflict": Conflict,
    "unavailable": Unavailable,
    "internal": Internal,
}


class NativeRuntime:
    """The OCI runtime implemented in-process (see the module docstring for the process model).

    ``state_root`` holds one directory per container (e.g. ``<exec-root>/runtime/native``).
    ``cgroup_driver`` defaults to the one the monitor zygote found (``preload``), else
    ``servin.engine.linux.cgroups.detect_driver()``.
    """

    name = "native"

    def __init__(self, state_root: Path, *, cgroup_driver: Any | None = None,
                 setup_timeout: float = 60.0) -> None:
        self.state_root = Path(state_root)
        self.setup_timeout = setup_timeout
        self._driver = cgroup_driver
        self._cgroups: dict[str, Any] = {}

    # -- create -------------------------------------------------------------------------------

    def create(self, container_id: str, bundle: Path, stdio: Stdio | None, *,
               console_socket: Path | None = None) -> int:
        """Set the container up to the point of exec; return the init's host PID.

        On any failure nothing is left: the init is killed and reaped, its cgroup removed and
        the state directory deleted; the error carries the init's own message.
        """
        check_id(container_id)
        bundle = Path(bundle).absolute()
        spec = load_spec(bundle)
        if spec.process.terminal and console_socket is None:
            raise InvalidArgument("process.terminal is true but no console socket was given")
        if not spec.process.terminal and console_socket is not None:
            raise InvalidArgument("a console socket was given but process.terminal is false")
        seccomp_program = (_seccomp_program(spec.seccomp, self.state_root / "seccomp-cache")
                           if spec.seccomp is not None else None)
        self.state_root.mkdir(parents=True, exist_ok=True)
        directory = self._dir(container_id)
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            raise Conflict(f"container {container_id} already exists") from None

        opened: builtins.list[Any] = []  # fds and sockets to close in the caller whatever happens
        cgroup = None
        pid = 0
        try:
            ns_fds = self._open_namespaces(spec, opened)
            console = None
            if console_socket is not None:
                console = _connect_unix(Path(console_socket))
                opened.append(console)
            listener = _listen_unix(directory, START_SOCKET)
            opened.append(listener)
            parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            opened.append(parent_end)
            child_end = _above_stdio(child_end)
            opened.append(child_end)
            ctx = InitContext(spec=spec, sync=child_end, listener=listener,
                              seccomp_program=seccomp_program,
                              stdio=stdio, console=console,
                              namespace_fds={k: v for k, v in ns_fds.items() if k != "pid"})
            pid = self._fork_init(ctx, spec, ns_fds.get("pid"))
            for item in opened:
                if item is not parent_end:
                    _close(item)
            opened = [parent_end]
            # Made while the init already sets its namespaces and mounts up (it waits for "go"
            # only where it needs its cgroup): creating and joining a cgroup costs
            # milliseconds on v1 (an RCU grace period), now overlapped. A refusal here (bad
            # limits) is ours: the init, killed by the abort, has nothing to add.
            if spec.cgroups_path:
                cgroup = self._cgroup_driver().create(spec.cgroups_path, cgroup_resources(spec))
                self._cgroups[container_id] = cgroup
            try:
                if cgroup is not None:
                    cgroup.add_process(pid)
                parent_end.send(b'{"type": "go"}')
            except (OSError, ServinError) as exc:
                # The init may already have failed (it sets up in parallel with this) and
                # exited: its own message says why, so prefer it to this consequence.
                self._wait_ready(parent_end, container_id, timeout=1.0, fallback=exc)
                raise
            self._wait_ready(parent_end, container_id)
            start_time = process_start_time(pid)
            if start_time is None:
                raise Internal(f"container {container_id}: init exited right after setup")
            write_state(directory, RecordedState(
                id=container_id, pid=pid, start_time=start_time, bundle=str(bundle),
                rootfs=str(spec.root_path), created=time.time(),
                cgroups_path=spec.cgroups_path,
                own_pid_namespace=_own_pid_namespace(spec)))
            return pid
        except BaseException:
            self._abort_create(container_id, directory, pid, cgroup)
            raise
        finally:
            for item in opened:
                _close(item)

    def _open_namespaces(self, spec: ContainerSpec, opened: builtins.list[Any]) -> dict[str, int]:
        result: dict[str, int] = {}
        for ns in spec.namespaces:
            if ns.path:
                try:
                    fd = namespaces.open_namespace(ns.path)
                except OSError as exc:
                    cls = NotFound if exc.errno == 2 else Internal
                    raise cls(f"{ns.type} namespace {ns.path}: {os.strerror(exc.errno or 0)}") \
                        from None
                opened.append(fd)
                result[ns.type] = fd
        return result

    def _fork_init(self, ctx: InitContext, spec: ContainerSpec, pid_ns_fd: int | None) -> int:
        pid_ns = spec.namespace("pid")
        saved = None
        if pid_ns is not None:
            saved = os.open("/proc/thread-self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if pid_ns_fd is not None:
                    namespaces.setns(pid_ns_fd, namespaces.CLONE_NEWPID, path=pid_ns.path)
                else:
                    namespaces.unshare(namespaces.CLONE_NEWPID)
            except OSError as exc:
                os.close(saved)
                raise Internal(f"pid namespace: {exc.strerror}") from None
        try:
            # Non-dumpable until its execve, like an exec's process (see execproc): a
            # container sharing the PID namespace cannot open this interpreter through /proc.
            with prctl.non_dumpable():
                pid = os.fork()
                if pid == 0:
                    run_init(ctx)  # never returns
        except BaseException:
            _restore_pid_namespace(saved)
            raise
        _restore_pid_namespace(saved)
        return pid

    def _wait_ready(self, sock: socket.socket, container_id: str, *,
                    timeout: float | None = None, fallback: BaseException | None = None) -> None:
        """Wait for the init's "ready"; raise its error. With ``fallback``, a missing answer
        (the init is gone, or silent) returns so the caller can raise ``fallback`` instead."""
        sock.settimeout(self.setup_timeout if timeout is None else timeout)
        try:
            data = sock.recv(65536)
        except (TimeoutError, OSError):
            if fallback is not None:
                return
            raise Internal(f"container {container_id}: setup did not finish in "
                           f"{self.setup_timeout:g}s") from None
        if not data:
            if fallback is not None:
                return
            raise Internal(f"container {container_id}: init died during setup")
        message = json.loads(data)
        if message.get("type") == "ready":
            return
        cls = _ERROR_KINDS.get(message.get("kind", ""), Internal)
        raise cls(message.get("message", "container init failed"))

    def _abort_create(self, container_id: str, directory: Path, pid: int, cgroup: Any) -> None:
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signals.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        if cgroup is not None:
            self._cgroups.pop(container_id, None)
            try:
                cgroup.destroy()
            except Exception:  # keep the original error; this one is only logged
                log.exception("removing the cgroup of failed container %s", container_id)
        shutil.rmtree(directory, ignore_errors=True)

    # -- start --------------------------------------------------------------------------------

    def start(self, container_id: str) -> None:
        """Release the init blocked after create; returns once execve has succeeded."""
        directory = self._dir(container_id)
        recorded = self._load(container_id)
        status = _status(recorded)
        if status != "created":
            raise Conflict(f"container {container_id} is {status}, not created")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.setup_timeout)
            try:
                _connect_in(sock, directory, START_SOCKET)
            except (ConnectionRefusedError, FileNotFoundError):
                raise Conflict(f"container {container_id} is not waiting to start") from None
            sock.sendall(b"start")
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        finally:
            sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(directory / START_SOCKET)
        if reply:
            message = json.loads(reply)
            cls = _ERROR_KINDS.get(message.get("kind", ""), Internal)
            raise cls(message.get("message", "container start failed"))
        recorded.started = True
        write_state(directory, recorded)

    # -- state, kill, delete ------------------------------------------------------------------

    def state(self, container_id: str) -> ContainerState:
        """The container's status as seen now (its init alive, started or not)."""
        recorded = self._load(container_id)
        return ContainerState(id=recorded.id, status=_status(recorded), pid=recorded.pid,
                              bundle=Path(recorded.bundle))

    def kill(self, container_id: str, signal: int, *, all_processes: bool = False) -> None:
        """Send ``signal`` to the init, or to every process of the container."""
        recorded = self._load(container_id)
        if not is_alive(recorded):
            raise Conflict(f"container {container_id} is not running")
        if all_processes:
            self._signal_all(recorded, signal)
            # The init may have been outside the cgroup's list (it never is, but a PID
            # namespace without a cgroup relies on this).
            _signal_init(recorded, signal, missing_ok=True)
        else:
            _signal_init(recorded, signal)

    def delete(self, container_id: str, *, force: bool = False) -> None:
        """Remove a stopped (or created) container; with ``force`` kill a running one first."""
        recorded = self._load(container_id)
        if is_alive(recorded):
            if recorded.started and not force:
                raise Conflict(f"container {container_id} is running: stop it first or force")
            self._signal_all(recorded, signals.SIGKILL)
            _signal_init(recorded, signals.SIGKILL, missing_ok=True)
            _wait_exit(recorded, timeout=10.0)
        if recorded.cgroups_path:
            self._destroy_cgroup(container_id, recorded.cgroups_path)
        shutil.rmtree(self._dir(container_id), ignore_errors=True)

    # -- exec ---------------------------------------------------------------------------------

    def exec(self, container_id: str, process: dict[str, Any], stdio: Stdio | None, *,
             console_socket: Path | None = None) -> int:
        """Run one more process in the running container; return its host PID once exec'd.

        ``process`` is an OCI ``process`` object. The process joins every namespace and the
        cgroup of the container's init and gets the bundle's seccomp filter. With
        ``process.terminal`` the pty master is sent over ``console_socket`` (as for create).
        A program that cannot be run raises NotFound / PermissionDenied with its message.
        """
        from servin.engine.runtime.native import execproc

        recorded = self._load(container_id)
        if _status(recorded) != "running":
            raise Conflict(f"container {container_id} is not running")
        parsed = execproc.load_process(process, console_socket is not None)
        seccomp_program = self._exec_seccomp(container_id, Path(recorded.bundle))
        opened: builtins.list[Any] = []
        pid = 0
        try:
            ns_fds, pid_ns_fd = execproc.open_namespaces(recorded.pid)
            opened.extend(fd for fd, _, _ in ns_fds)
            if pid_ns_fd is not None:
                opened.append(pid_ns_fd)
            # The fds above name the init's namespaces only if the init is still that process.
            if process_start_time(recorded.pid) != recorded.start_time:
                raise Conflict(f"container {container_id} is not running")
            console = None
            if console_socket is not None:
                console = _connect_unix(Path(console_socket))
                opened.append(console)
            parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            opened.append(parent_end)
            child_end = _above_stdio(child_end)
            opened.append(child_end)
            ctx = execproc.ExecContext(process=parsed, sync=child_end, stdio=stdio,
                                       console=console, namespace_fds=ns_fds,
                                       seccomp_program=seccomp_program)
            pid = execproc.fork_exec(ctx, pid_ns_fd)
            for item in opened:
                if item is not parent_end:
                    _close(item)
            opened = [parent_end]
            if recorded.cgroups_path:
                cgroup = self._cgroup_of(container_id, recorded.cgroups_path)
                if cgroup is not None:
                    cgroup.add_process(pid)
            parent_end.send(b'{"type": "go"}')
            execproc.wait_exec(parent_end, self.setup_timeout)
            return pid
        except BaseException:
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signals.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            raise
        finally:
            for item in opened:
                _close(item)

    def exec_in_place(self, container_id: str, process: dict[str, Any], stdio: Stdio,
                      sync: socket.socket) -> NoReturn:
        """Become one more process of the running container (no terminal); never returns.

        For a caller that forked this process, non-dumpable, into the container's PID
        namespace (the monitor: one fork per exec instead of two). This process places
        itself in the container's cgroup, joins the other namespaces, gets the identity,
        limits and seccomp filter, and execs; ``sync`` (close-on-exec) then reads EOF. What
        stops it is raised (NotFound / PermissionDenied for a program that cannot run).
        """
        from servin.engine.runtime.native import execproc

        recorded = self._load(container_id)
        if _status(recorded) != "running":
            raise Conflict(f"container {container_id} is not running")
        parsed = execproc.load_process(process, False)
        seccomp_program = self._exec_seccomp(container_id, Path(recorded.bundle))
        ns_fds, pid_ns_fd = execproc.open_namespaces(recorded.pid)
        if pid_ns_fd is not None:
            raise Internal(f"exec: not started in the PID namespace of container {container_id}")
        # The fds above name the init's namespaces only if the init is still that process.
        if process_start_time(recorded.pid) != recorded.start_time:
            raise Conflict(f"container {container_id} is not running")
        if recorded.cgroups_path:
            cgroup = self._cgroup_of(container_id, recorded.cgroups_path)
            if cgroup is not None:
                cgroup.add_process(0)  # 0: the writer itself (its pid here is the container's)
        ctx = execproc.ExecContext(process=parsed, sync=sync, stdio=stdio, console=None,
                                   namespace_fds=ns_fds, seccomp_program=seccomp_program,
                                   placed=True)
        execproc.exec_in_place(ctx)

    # -- extras beyond the OCI command line ---------------------------------------------------

    def update(self, container_id: str, resources: dict[str, Any]) -> None:
        """Change the container's cgroup limits (OCI ``linux.resources`` form)."""
        recorded = self._load(container_id)
        self._require_cgroup(recorded).update(resources)

    def pause(self, container_id: str) -> None:
        """Freeze every process of the container."""
        recorded = self._load(container_id)
        self._require_cgroup(recorded).freeze()

    def resume(self, container_id: str) -> None:
        """Thaw a paused container."""
        recorded = self._load(container_id)
        self._require_cgroup(recorded).thaw()

    def list(self) -> builtins.list[str]:
        """The ids of every container this runtime holds state for."""
        if not self.state_root.is_dir():
            return []
        return sorted(p.name for p in self.state_root.iterdir() if (p / "state.json").exists())

    # -- helpers ------------------------------------------------------------------------------

    def _dir(self, container_id: str) -> Path:
        check_id(container_id)
        return self.state_root / container_id

    def _load(self, container_id: str) -> RecordedState:
        return read_state(self._dir(container_id), container_id)

    def _exec_seccomp(self, container_id: str, bundle: Path) -> tuple[bytes, int] | None:
        """The compiled filter of the bundle's ``linux.seccomp`` for an exec (None: none).

        Kept per container beside its state, keyed by the version of its config.json (the
        file's identity, size and modification time): an exec then reads one small file
        instead of parsing the bundle and the profile's cache entry.
        """
        from servin.engine.runtime.native import execproc

        config = bundle / "config.json"
        cache = self._dir(container_id) / EXEC_SECCOMP_FILE
        try:
            st = os.stat(config)
        except OSError as exc:
            raise Internal(f"exec: cannot read the container's config.json: {exc}") from None
        version = struct.pack("<QQQQ", st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with contextlib.suppress(OSError):
            data = cache.read_bytes()
            if data[:32] == version and len(data) >= 40:
                present, flags = struct.unpack_from("<II", data, 32)
                program = data[40:]
                if not present:
                    return None
                if program and len(program) % 8 == 0:
                    return program, flags
        profile = execproc.bundle_seccomp(bundle)
        found = (_seccomp_program(profile, self.state_root / "seccomp-cache")
                 if profile is not None else None)
        entry = version + struct.pack("<II", found is not None, found[1] if found else 0)
        try:
            tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
            tmp.write_bytes(entry + (found[0] if found else b""))
            os.replace(tmp, cache)
        except OSError:
            pass  # a cache that cannot be written only costs time
        return found

    def _cgroup_driver(self) -> Any:
        if self._driver is None:
            self._driver = preloaded_cgroup_driver()
        if self._driver is None:
            from servin.engine.linux.cgroups import detect_driver

            self._driver = detect_driver()
        return self._driver

    def _cgroup_of(self, container_id: str, path: str) -> Any | None:
        """The container's cgroup handle; None when the cgroup is already gone."""
        cgroup = self._cgroups.get(container_id)
        if cgroup is None:
            # Created by another process (or before a daemon restart): open the existing one.
            try:
                cgroup = self._cgroup_driver().open(path)
            except NotFound:
                return None
            self._cgroups[container_id] = cgroup
        return cgroup

    def _require_cgroup(self, recorded: RecordedState) -> Any:
        cgroup = None
        if recorded.cgroups_path:
            cgroup = self._cgroup_of(recorded.id, recorded.cgroups_path)
        if cgroup is None:
            raise Conflict(f"container {recorded.id} has no cgroup")
        return cgroup

    def _destroy_cgroup(self, container_id: str, path: str) -> None:
        cgroup = self._cgroup_of(container_id, path)
        if cgroup is not None:
            # destroy() kills what is left (processes that escaped the init's PID namespace)
            # and waits for them before removing the directories.
            cgroup.destroy()
        self._cgroups.pop(container_id, None)

    def _container_pids(self, recorded: RecordedState) -> builtins.list[int]:
        if recorded.cgroups_path:
            cgroup = self._cgroup_of(recorded.id, recorded.cgroups_path)
            if cgroup is not None:
                return list(cgroup.pids())
        if recorded.own_pid_namespace:
            return _pids_in_namespace_of(recorded.pid)
        return [recorded.pid]

    def _signal_all(self, recorded: RecordedState, signal: int) -> None:
        cgroup = None
        if recorded.cgroups_path:
            cgroup = self._cgroup_of(recorded.id, recorded.cgroups_path)
        if cgroup is not None:
            # The driver freezes the cgroup meanwhile, so nothing forks past the signal.
            cgroup.kill_all(signal)
        else:
            for pid in self._container_pids(recorded):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal)


# The host's cgroup driver as the monitor zygote found it (``preload``): every creation and
# every monitor's exit would otherwise look the hierarchies up again (a directory scan and a
# realpath per controller).
_PRELOADED: list[Any] = []


def preload() -> None:
    """Find the host's cgroup driver once, for every runtime made after (in the zygote)."""
    from servin.engine.linux.cgroups import detect_driver

    _PRELOADED[:] = [detect_driver()]


def preloaded_cgroup_driver() -> Any | None:
    """The driver ``preload`` found (None outside the zygote's children)."""
    return _PRELOADED[0] if _PRELOADED else None


def _seccomp_program(profile: dict[str, Any], cache_dir: Path) -> tuple[bytes, int]:
    """Compile the profile in the creator, before the fork (cached: see ``program_for``).

    The init installs the ready program after pivot_root, where neither this package nor
    libseccomp.so could be found on disk any more.
    """
    from servin.engine.linux import seccomp

    try:
        return seccomp.program_for(profile, cache_dir)
    except OSError as exc:
        raise Unavailable(f"seccomp: cannot load libseccomp.so.2: {exc}") from None


def _status(recorded: RecordedState) -> Status:
    if not is_alive(recorded):
        return "stopped"
    return "running" if recorded.started else "created"


def _own_pid_namespace(spec: ContainerSpec) -> bool:
    ns = spec.namespace("pid")
    return ns is not None and ns.path is None


def _restore_pid_namespace(saved: int | None) -> None:
    if saved is None:
        return
    try:
        namespaces.setns(saved, namespaces.CLONE_NEWPID, path="own pid namespace")
    except OSError as exc:
        raise Internal(f"cannot return to the caller's pid namespace: {exc.strerror}") from None
    finally:
        os.close(saved)


def _signal_init(recorded: RecordedState, signal: int, *, missing_ok: bool = False) -> None:
    """Signal the init through a pidfd, so a recycled PID is never signalled by mistake."""
    try:
        pidfd = os.pidfd_open(recorded.pid)
    except ProcessLookupError:
        if missing_ok:
            return
        raise Conflict(f"container {recorded.id} is not running") from None
    try:
        if process_start_time(recorded.pid) != recorded.start_time:
            if missing_ok:
                return
            raise Conflict(f"container {recorded.id} is not running")
        signals.pidfd_send_signal(pidfd, signal)
    except ProcessLookupError:
        if not missing_ok:
            raise Conflict(f"container {recorded.id} is not running") from None
    finally:
        os.close(pidfd)


def _wait_exit(recorded: RecordedState, timeout: float) -> None:
    """Wait until the init has exited (a zombie counts: its reaper is the caller)."""
    try:
        pidfd = os.pidfd_open(recorded.pid)
    except ProcessLookupError:
        return
    try:
        if process_start_time(recorded.pid) != recorded.start_time:
            return
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            raise Internal(f"container {recorded.id}: init {recorded.pid} did not die")
    finally:
        os.close(pidfd)


def _pids_in_namespace_of(pid: int) -> list[int]:
    try:
        target = os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return []
    result = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{name}/ns/pid") == target:
                    result.append(int(name))
    return result


def _above_stdio(sock: socket.socket) -> socket.socket:
    """Make sure an fd the init keeps is not 0, 1 or 2 (the init installs its stdio there)."""
    if sock.fileno() > 2:
        return sock
    import fcntl

    moved = socket.socket(fileno=fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD_CLOEXEC, 3))
    sock.close()
    return moved


def _listen_unix(directory: Path, name: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dir_fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # Through the directory fd: a unix socket path is limited to 108 bytes.
        sock.bind(f"/proc/self/fd/{dir_fd}/{name}")
        sock.listen(4)
    except BaseException:
        sock.close()
        raise
    finally:
        os.close(dir_fd)
    return _above_stdio(sock)


def _connect_in(sock: socket.socket, directory: Path, name: str) -> None:
    dir_fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sock.connect(f"/proc/self/fd/{dir_fd}/{name}")
    finally:
        os.close(dir_fd)


def _connect_unix(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        _connect_in(sock, path.parent, path.name)
    except OSError as exc:
        sock.close()
        raise InvalidArgument(f"console socket {path}: {os.strerror(exc.errno or 0)}") from None
    return _above_stdio(sock)


def _close(item: Any) -> None:
    with contextlib.suppress(OSError):
        if isinstance(item, int):
            os.close(item)
        else:
            item.close()
