"""The contract every OCI runtime behind Servin fulfils: the native one, runc and crun.

The engine writes a standard OCI bundle (``config.json`` + rootfs) and drives it through
this interface, which mirrors the OCI runtime command line (create, start, state, kill,
delete). The monitor is the caller: after ``create`` returns, the container's init process
must be waitable by the calling process, either as its direct child or because ``create``
made the caller a child subreaper (PR_SET_CHILD_SUBREAPER) before the init was reparented.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

Status = Literal["creating", "created", "running", "stopped"]


@dataclass(frozen=True)
class Stdio:
    """The file descriptors the container's process gets as 0, 1 and 2 (no terminal)."""

    stdin: int
    stdout: int
    stderr: int


@dataclass(frozen=True)
class ContainerState:
    """The OCI ``state`` of one container."""

    id: str
    status: Status
    pid: int
    bundle: Path


class OCIRuntime(Protocol):
    """One OCI runtime. Every method raises a ``servin.errors.ServinError`` on failure."""

    name: str

    def create(
        self,
        container_id: str,
        bundle: Path,
        stdio: Stdio | None,
        *,
        console_socket: Path | None = None,
    ) -> int:
        """Create the container from ``bundle/config.json``; return the host PID of its init.

        The process is set up (namespaces, mounts, cgroup, ...) but has not exec'd the user's
        program yet. With ``process.terminal`` true, ``stdio`` is None and the pty master is sent
        over ``console_socket`` (SCM_RIGHTS) as runc does.
        """
        ...

    def start(self, container_id: str) -> None:
        """Let the created container exec its program."""
        ...

    def exec(
        self,
        container_id: str,
        process: dict[str, Any],
        stdio: Stdio | None,
        *,
        console_socket: Path | None = None,
    ) -> int:
        """Run one more process (an OCI ``process`` object) in the running container.

        It joins the container's namespaces and cgroup with the container's seccomp filter;
        returns its host PID once it has exec'd. When the caller exits, the process goes to
        the nearest child subreaper. Terminal handling is as for ``create``.
        """
        ...

    def state(self, container_id: str) -> ContainerState:
        """The container's state as the runtime sees it."""
        ...

    def kill(self, container_id: str, signal: int, *, all_processes: bool = False) -> None:
        """Send ``signal`` to the init (or to every process of the container)."""
        ...

    def delete(self, container_id: str, *, force: bool = False) -> None:
        """Release everything the runtime holds for a stopped container (cgroup, state dir)."""
        ...

    def pause(self, container_id: str) -> None:
        """Freeze every process of the container (cgroup freezer)."""
        ...

    def resume(self, container_id: str) -> None:
        """Thaw a paused container."""
        ...

    def update(self, container_id: str, resources: dict[str, Any]) -> None:
        """Change a running container's cgroup limits (OCI ``linux.resources`` form)."""
        ...
