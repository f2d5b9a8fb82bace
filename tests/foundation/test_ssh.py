"""ssh://user@host hosts: the client tunnels through the system ssh to the remote socket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.daemon import DaemonProcess, run_cli, short_tmpdir
from tests.sshd import TestSSHD


@pytest.fixture
def sshd() -> Iterator[TestSSHD]:
    server = TestSSHD(short_tmpdir("sv-ssh-")).start()
    try:
        yield server
    finally:
        server.stop()


def test_ssh_host_reaches_the_same_daemon(
    daemon: DaemonProcess, busybox_image: str, sshd: TestSSHD
) -> None:
    url = f"ssh://root@127.0.0.1:{sshd.port}{daemon.socket}"
    env = {"SERVIN_SSH_COMMAND": sshd.ssh_command()}
    remote = run_cli("-H", url, "images", "-q", "--no-trunc", env=env)
    assert remote.returncode == 0, remote.stderr
    local = daemon.cli("images", "-q", "--no-trunc", check=True)
    assert remote.stdout == local.stdout
    assert remote.stdout.strip() == busybox_image
    info = run_cli("-H", url, "info", "--format", "{{.ServinRootDir}}", env=env)
    assert info.stdout.strip() == str(daemon.root)


def test_ssh_failure_is_one_line(sshd: TestSSHD) -> None:
    env = {"SERVIN_SSH_COMMAND": sshd.ssh_command()}
    # Wrong user: authentication fails.
    out = run_cli(
        "-H", f"ssh://nobody@127.0.0.1:{sshd.port}/run/servin/servin.sock", "images", env=env
    )
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "over ssh" in lines[0], out.stderr
