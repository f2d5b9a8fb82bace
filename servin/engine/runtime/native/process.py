"""The container process's identity and limits, applied in the init after pivot_root.

Order matters and follows what the kernel allows: rlimits and the oom score while still
root, then the bounding set (needs CAP_SETPCAP), then groups/gid/uid with KEEPCAPS so the
permitted set survives a switch to a non-root uid, then capset and the ambient set.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping

from servin.engine.linux import capabilities as caps
from servin.engine.linux import credentials, oom, prctl, rlimits, signals
from servin.engine.runtime.native.spec import Process
from servin.engine.runtime.oci import Stdio


class ExecError(OSError):
    """The process cannot be executed; ``kind`` says which servin error it maps to."""

    def __init__(self, errno: int, message: str, kind: str) -> None:
        super().__init__(errno, message)
        self.kind = kind


def apply_limits(process: Process) -> None:
    """rlimits (clamped to the current hard limits) and oom_score_adj (clamped)."""
    for limit in process.rlimits:
        rlimits.set_rlimit(limit.type, limit.soft, limit.hard)
    if process.oom_score_adj is not None:
        oom.set_oom_score_adj(process.oom_score_adj)


def apply_identity(process: Process) -> None:
    """Switch to the process's user and groups and set its capability sets."""
    wanted = process.capabilities
    if wanted is None:
        # No capabilities object: only the identity changes (the kernel's uid rules apply).
        credentials.set_groups(process.additional_gids)
        credentials.set_ids(process.uid, process.gid)
        return
    # What this host lets us give at all (e.g. no CAP_SYS_RESOURCE on some VMs): clamp to it
    # instead of failing, as a container cannot have what its runtime does not hold.
    current_bounding = caps.bounding_set()
    available = caps.capget().permitted & current_bounding
    bounding = wanted.bounding & available
    permitted = wanted.permitted & available
    effective = wanted.effective & permitted
    inheritable = wanted.inheritable & available
    ambient = wanted.ambient & permitted & inheritable
    caps.drop_bounding(bounding, current_bounding)
    switching = process.uid != 0
    if switching:
        prctl.set_keepcaps(True)
    credentials.set_groups(process.additional_gids)
    credentials.set_ids(process.uid, process.gid)
    if switching:
        prctl.set_keepcaps(False)
    caps.capset(caps.CapSets(effective=effective, permitted=permitted, inheritable=inheritable))
    if ambient:
        caps.set_ambient(ambient)


def change_directory(cwd: str) -> None:
    """chdir into the working directory, as the container's user, inside the pivoted root."""
    try:
        os.chdir(cwd)
    except OSError as exc:
        raise ExecError(exc.errno or 0, f"chdir to cwd ({cwd!r}) set in config.json failed: "
                                        f"{os.strerror(exc.errno or 0)}", "invalid_argument") \
            from None


def find_executable(process: Process) -> str:
    """Resolve ``args[0]`` against the container's PATH and check it can be executed."""
    name = process.args[0]
    if "/" in name:
        _check_executable(name, name)
        return name
    for directory in process.path_env.split(":"):
        candidate = os.path.join(directory or ".", name)
        try:
            mode = os.stat(candidate).st_mode
        except OSError:
            continue
        if stat.S_ISREG(mode) and os.access(candidate, os.X_OK):
            return candidate
    raise ExecError(2, f'exec: "{name}": executable file not found in $PATH', "not_found")


def _check_executable(name: str, path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        kind = "not_found" if exc.errno == 2 else "permission_denied"
        raise ExecError(exc.errno or 0, f'exec: "{name}": stat {path}: '
                                        f"{os.strerror(exc.errno or 0).lower()}", kind) from None
    if stat.S_ISDIR(mode):
        raise ExecError(21, f'exec: "{name}": is a directory', "permission_denied")
    if not os.access(path, os.X_OK):
        raise ExecError(13, f'exec: "{name}": permission denied', "permission_denied")


def restore_signals() -> None:
    """Give the program default dispositions for every signal and an empty mask (see
    ``servin.engine.linux.signals``)."""
    signals.reset_all()


def environment(env: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``KEY=VALUE`` entries as execve's environment (malformed entries dropped)."""
    result: dict[str, str] = {}
    for item in env:
        key, sep, value = item.partition("=")
        if sep and key:
            result[key] = value
    return result


def install_stdio(stdio: Stdio) -> None:
    """Make ``stdio`` the process's fds 0, 1 and 2."""
    import fcntl

    # Duplicate above 2 first: the caller's fds may themselves be 0, 1 or 2 in any order.
    copies = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
              for fd in (stdio.stdin, stdio.stdout, stdio.stderr)]
    for target, fd in enumerate(copies):
        os.dup2(fd, target, inheritable=True)
    for fd in copies:
        os.close(fd)


def load_seccomp(program: tuple[bytes, int]) -> None:
    """Install a seccomp program compiled by the creator before the fork."""
    # Imported (with libseccomp) by the creator, so nothing needs the disk after pivot_root.
    from servin.engine.linux.seccomp import load_program

    load_program(*program)


def exec_program(process: Process, executable: str, env: Mapping[str, str],
                 seccomp_program: tuple[bytes, int] | None) -> None:
    """The last steps before the user's program: umask, no_new_privs, seccomp, execve.

    Raises ExecError when execve fails (the caller reports it); never returns otherwise.
    """
    os.umask(process.umask)
    if process.no_new_privileges:
        prctl.set_no_new_privs()
    if seccomp_program is not None and process.no_new_privileges:
        load_seccomp(seccomp_program)
    try:
        os.execve(executable, list(process.args), env)
    except OSError as exc:
        kind = "not_found" if exc.errno == errno.ENOENT else "permission_denied"
        raise ExecError(exc.errno or 0, f'exec: "{process.args[0]}": '
                                        f"{os.strerror(exc.errno or 0).lower()}", kind) \
            from None


def error_kind(exc: BaseException) -> str:
    """The servin error kind a failure in the container's setup is reported as."""
    from servin.errors import ServinError

    if isinstance(exc, ExecError | ServinError):
        return exc.kind
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOENT:
            return "not_found"
        if exc.errno in (errno.EPERM, errno.EACCES):
            return "permission_denied"
    return "internal"


def describe_error(exc: BaseException) -> str:
    """One line saying what went wrong, for the creator to raise."""
    from servin.errors import ServinError

    if isinstance(exc, OSError) and exc.strerror and exc.filename is None:
        return exc.strerror
    if isinstance(exc, ServinError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"
