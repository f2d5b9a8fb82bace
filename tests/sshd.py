"""A throwaway OpenSSH server on 127.0.0.1 for tests of ssh:// hosts."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TestSSHD:
    """sshd with its own host key, accepting one throwaway client key for root."""

    __test__ = False  # not a test class

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.client_key = base / "id_ed25519"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> TestSSHD:
        if not Path(SSHD).exists():
            raise RuntimeError("openssh-server is not installed (scripts/bootstrap installs it)")
        self.base.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
        host_key = self.base / "host_ed25519"
        for key in (host_key, self.client_key):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
            )
        auth = self.base / "authorized_keys"
        shutil.copy(f"{self.client_key}.pub", auth)
        os.chmod(auth, 0o600)
        config = self.base / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
            f"AuthorizedKeysFile {auth}\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "StrictModes no\nAllowStreamLocalForwarding yes\n"
            f"PidFile {self.base / 'sshd.pid'}\n"
        )
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("sshd did not start")

    def ssh_command(self) -> str:
        """The SERVIN_SSH_COMMAND that reaches this server with the throwaway key."""
        known = self.base / "known_hosts"
        return (
            f"ssh -i {self.client_key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no "
            f"-o UserKnownHostsFile={known} -o LogLevel=ERROR"
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.base, ignore_errors=True)
