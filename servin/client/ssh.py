"""Reach a remote daemon through the system's ssh: its unix socket forwarded to a local one.

Only OpenSSH is needed on both ends (no servin binary on the remote side): ``ssh -L
LOCAL_SOCKET:REMOTE_SOCKET``. ``SERVIN_SSH_COMMAND`` replaces the ``ssh`` command line prefix
(like GIT_SSH_COMMAND), e.g. to pass ``-i key -o UserKnownHostsFile=...``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from servin.client.addresses import HostAddress
from servin.errors import Unavailable

SSH_COMMAND_ENV = "SERVIN_SSH_COMMAND"
CONNECT_TIMEOUT = 20.0


class SSHTunnel:
    """A running ``ssh -L`` forwarding a local socket to the remote daemon's socket."""

    def __init__(self, address: HostAddress) -> None:
        self.address = address
        self._dir = Path(tempfile.mkdtemp(prefix="servin-ssh-"))
        self.local_socket = self._dir / "servin.sock"
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The ssh command line this tunnel runs."""
        base = shlex.split(os.environ.get(SSH_COMMAND_ENV, "ssh"))
        target = (
            f"{self.address.user}@{self.address.host}" if self.address.user else self.address.host
        )
        cmd = [
            *base,
            "-nNT",
            "-o",
            "ExitOnForwardFailure=yes",
            "-o",
            "StreamLocalBindUnlink=yes",
            "-o",
            "ServerAliveInterval=30",
            "-L",
            f"{self.local_socket}:{self.address.path}",
        ]
        if not sys.stdin.isatty():
            cmd += ["-o", "BatchMode=yes"]
        if self.address.port:
            cmd += ["-p", str(self.address.port)]
        return [*cmd, target]

    def start(self) -> Path:
        """Start ssh and wait until the local socket exists; return its path."""
        cmd = self.command()
        if not shutil.which(cmd[0]):
            raise Unavailable(f"cannot reach {self.address.url}: {cmd[0]} is not installed")
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while time.monotonic() < deadline:
            if self.local_socket.exists():
                return self.local_socket
            if self._proc.poll() is not None:
                err = (self._proc.stderr.read() if self._proc.stderr else b"").decode().strip()
                self.close()
                last = err.splitlines()[-1] if err else f"ssh exited with {self._proc.returncode}"
                raise Unavailable(f"cannot reach {self.address.url} over ssh: {last}")
            time.sleep(0.02)
        self.close()
        raise Unavailable(f"cannot reach {self.address.url} over ssh: timed out")

    def close(self) -> None:
        """Stop ssh and remove the local socket."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc is not None and self._proc.stderr:
            self._proc.stderr.close()
        shutil.rmtree(self._dir, ignore_errors=True)
