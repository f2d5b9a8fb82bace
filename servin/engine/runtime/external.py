"""ExternalRuntime: runc, crun (or any OCI runtime) through the standard command line.

    <binary> --root STATE --log LOG --log-format json create --bundle B --pid-file F
             [--console-socket S] ID
    <binary> --root STATE start|state|kill [--all] ID [SIG]|delete [--force] ID

``runc create`` forks the container init and exits, so the init is reparented: ``create``
makes the calling process a child subreaper (PR_SET_CHILD_SUBREAPER) first, after which the
caller can ``waitpid()`` the PID it returns, exactly as with the native runtime.

Without a terminal the runtime passes its own stdio through to the container, so the
runtime's own messages cannot be read from stderr: they are read from its JSON ``--log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from servin.engine.linux.prctl import is_child_subreaper, set_child_subreaper
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

_STATUSES: dict[str, Status] = {
    "creating": "creating", "created": "created", "running": "running", "stopped": "stopped",
    # Status has no "paused": a frozen container still runs as far as its lifecycle goes.
    "paused": "running", "pausing": "running",
}

# Substrings of runc/crun messages -> the servin error they mean (first match wins).
_MESSAGE_KINDS: tuple[tuple[str, type[ServinError]], ...] = (
    ("executable file not found", NotFound),
    ("no such file or directory", NotFound),
    ("does not exist", NotFound),
    ("not found", NotFound),
    ("already exists", Conflict),
    ("not running", Conflict),
    ("not stopped", Conflict),
    ("is running", Conflict),
    ("cannot delete", Conflict),
    ("cannot start", Conflict),
    ("permission denied", PermissionDenied),
    ("operation not permitted", PermissionDenied),
    ("invalid", InvalidArgument),
)


class ExternalRuntime:
    """An OCI runtime binary (runc, crun, ...) driven through its command line.

    ``root`` is the runtime's state directory (its ``--root``), private to this engine.
    """

    def __init__(self, name: str, binary: str, root: Path, *, timeout: float = 60.0) -> None:
        self.name = name
        self.binary = binary
        self.root = Path(root)
        self.timeout = timeout

    def create(self, container_id: str, bundle: Path, stdio: Stdio | None, *,
               console_socket: Path | None = None) -> int:
        """``create``; returns the init's PID (the caller is made a child subreaper)."""
        if not is_child_subreaper():
            set_child_subreaper(True)
        self.root.mkdir(parents=True, exist_ok=True)
        fd, pid_file = tempfile.mkstemp(prefix=f"{container_id}-", suffix=".pid",
                                        dir=self.root.parent)
        os.close(fd)
        os.unlink(pid_file)  # runc refuses nothing here, but crun wants to create it itself
        args = ["create", "--bundle", str(Path(bundle).absolute()), "--pid-file", pid_file]
        if console_socket is not None:
            args += ["--console-socket", str(console_socket)]
        args.append(container_id)
        try:
            self._run(args, stdio=stdio, what=f"create {container_id}", passes_stdio=True)
            try:
                with open(pid_file, encoding="ascii") as file:
                    return int(file.read().strip())
            except (OSError, ValueError) as exc:
                raise Internal(f"{self.name} create {container_id}: no pid file: {exc}") \
                    from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(pid_file)

    def exec(self, container_id: str, process: dict[str, Any], stdio: Stdio | None, *,
             console_socket: Path | None = None) -> int:
        """``exec --process F --detach --pid-file P [--console-socket S] ID``; the PID.

        The runtime joins the container's namespaces and cgroup and applies its seccomp
        filter itself; with --detach it exits once the process runs, leaving it to the
        nearest child subreaper (the caller is made one, as for create).
        """
        if not is_child_subreaper():
            set_child_subreaper(True)
        self.root.mkdir(parents=True, exist_ok=True)
        fd, process_file = tempfile.mkstemp(prefix=f"{container_id}-", suffix=".process.json",
                                            dir=self.root.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(process, file)
        fd, pid_file = tempfile.mkstemp(prefix=f"{container_id}-", suffix=".exec.pid",
                                        dir=self.root.parent)
        os.close(fd)
        os.unlink(pid_file)
        args = ["exec", "--process", process_file, "--detach", "--pid-file", pid_file]
        if console_socket is not None:
            args += ["--console-socket", str(console_socket)]
        args.append(container_id)
        try:
            self._run(args, stdio=stdio, what=f"exec {container_id}", passes_stdio=True)
            try:
                with open(pid_file, encoding="ascii") as file:
                    return int(file.read().strip())
            except (OSError, ValueError) as exc:
                raise Internal(f"{self.name} exec {container_id}: no pid file: {exc}") from None
        finally:
            for path in (process_file, pid_file):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    def start(self, container_id: str) -> None:
        """``start``."""
        self._run(["start", container_id], what=f"start {container_id}")

    def state(self, container_id: str) -> ContainerState:
        """``state``, parsed."""
        output = self._run(["state", container_id], what=f"state {container_id}")
        try:
            raw: dict[str, Any] = json.loads(output)
        except ValueError:
            raise Internal(f"{self.name} state {container_id}: not JSON: {output!r}") from None
        return ContainerState(
            id=str(raw.get("id", container_id)),
            status=_STATUSES.get(str(raw.get("status")), "stopped"),
            pid=int(raw.get("pid") or 0),
            bundle=Path(str(raw.get("bundle", ""))),
        )

    def kill(self, container_id: str, signal: int, *, all_processes: bool = False) -> None:
        """``kill [--all] ID SIGNAL``."""
        args = ["kill"]
        if all_processes:
            args.append("--all")
        self._run([*args, container_id, str(int(signal))], what=f"kill {container_id}")

    def delete(self, container_id: str, *, force: bool = False) -> None:
        """``delete [--force]``."""
        args = ["delete"]
        if force:
            args.append("--force")
        self._run([*args, container_id], what=f"delete {container_id}")

    def pause(self, container_id: str) -> None:
        """``pause``: freeze every process of the container."""
        self._run(["pause", container_id], what=f"pause {container_id}")

    def resume(self, container_id: str) -> None:
        """``resume``: thaw a paused container."""
        self._run(["resume", container_id], what=f"resume {container_id}")

    def update(self, container_id: str, resources: dict[str, Any]) -> None:
        """``update --resources FILE``: change the cgroup limits (OCI ``linux.resources``)."""
        fd, path = tempfile.mkstemp(prefix=f"{self.name}-update-", suffix=".json",
                                    dir=self.root.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(resources, f)
            self._run(["update", "--resources", path, container_id],
                      what=f"update {container_id}")
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _run(self, args: list[str], *, stdio: Stdio | None = None, what: str,
             passes_stdio: bool = False) -> str:
        """Run the binary; return its stdout or raise a servin error.

        With ``passes_stdio`` (create) the runtime hands its own stdio to the container: that
        is ``stdio`` when given, else /dev/null and a file, never a pipe this call would wait
        on until the container exits.
        """
        fd, log_path = tempfile.mkstemp(prefix=f"{self.name}-", suffix=".log",
                                        dir=self.root.parent)
        os.close(fd)
        command = [self.binary, "--root", str(self.root), "--log", log_path,
                   "--log-format", "json", *args]
        try:
            with tempfile.TemporaryFile() as errors:
                try:
                    if stdio is not None:
                        result = subprocess.run(
                            command, stdin=stdio.stdin, stdout=stdio.stdout,
                            stderr=stdio.stderr, timeout=self.timeout, check=False)
                        output = ""
                    elif passes_stdio:
                        result = subprocess.run(
                            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=errors, timeout=self.timeout, check=False)
                        output = ""
                    else:
                        result = subprocess.run(
                            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=errors, timeout=self.timeout, check=False)
                        output = result.stdout.decode(errors="replace")
                except FileNotFoundError:
                    raise Unavailable(f"OCI runtime {self.name}: {self.binary} not found") \
                        from None
                except subprocess.TimeoutExpired:
                    raise Unavailable(f"{self.name} {what}: no answer in {self.timeout:g}s") \
                        from None
                if result.returncode == 0:
                    return output
                errors.seek(0)
                stderr = errors.read().decode(errors="replace")
            raise _error(self.name, what, _log_message(log_path) or stderr.strip()
                         or f"exit status {result.returncode}")
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(log_path)


def _log_message(path: str) -> str:
    """The last error-level message of a runc/crun JSON log."""
    message = ""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            for line in file:
                line = line.strip()
                if not line:
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    message = line  # crun may write plain text before it parses --log-format
                    continue
                if entry.get("level") in ("error", "fatal", "panic"):
                    message = str(entry.get("msg", line))
    except OSError:
        return ""
    return message


def _error(runtime: str, what: str, message: str) -> ServinError:
    lowered = message.lower()
    for needle, cls in _MESSAGE_KINDS:
        if needle in lowered:
            return cls(f"{runtime} {what}: {message}")
    return Internal(f"{runtime} {what}: {message}")
