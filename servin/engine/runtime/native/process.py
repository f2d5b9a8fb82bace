"""The container process's identity and limits, applied in the init after pivot_root.

Order matters and follows what the kernel allows: rlimits and the oom score while still
root, then the bounding set (needs CAP_SETPCAP), then groups/gid/uid with KEEPCAPS so the
permitted set survives a switch to a non-root uid, then capset and the ambient set.
"""

from __future__ import annotations

import os
import signal
import stat

from servin.engine.linux import capabilities as caps
from servin.engine.linux import credentials, oom, prctl, rlimits
from servin.engine.runtime.native.spec import Process


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
    """Give the program default dispositions and an empty mask.

    Python ignores SIGPIPE and SIGXFSZ, and ignored signals survive execve: without this every
    container process would ignore SIGPIPE.
    """
    for signum in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
