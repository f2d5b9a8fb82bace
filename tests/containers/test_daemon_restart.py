"""Containers outlive the daemon: SIGKILL it and nothing is lost."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.daemon import DaemonProcess


def test_sigkill_daemon_keeps_container_logs_and_exit_code(
    daemon_factory: type[DaemonProcess], busybox_tar: Path
) -> None:
    d = daemon_factory().start()
    d.cli("import", str(busybox_tar), "busybox", check=True)
    d.cli(
        "run",
        "-d",
        "--name",
        "counter",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 60 ]; do echo $i; i=$((i+1)); sleep 0.05; done; exit 5",
        check=True,
    )
    time.sleep(0.8)
    d.stop(signal.SIGKILL)
    time.sleep(0.5)  # the container keeps counting while no daemon runs
    d.start()
    status = d.cli("inspect", "-f", "{{.State.Status}}", "counter", check=True).stdout.strip()
    assert status in ("running", "exited")
    assert d.cli("wait", "counter", check=True, timeout=60).stdout.strip() == "5"
    lines = d.cli("logs", "counter", check=True).stdout.split()
    assert lines == [str(i) for i in range(60)]
    assert (
        d.cli("inspect", "-f", "{{.State.ExitCode}}", "counter", check=True).stdout.strip() == "5"
    )


def test_exit_while_daemon_is_down_is_recorded(
    daemon_factory: type[DaemonProcess], busybox_tar: Path
) -> None:
    d = daemon_factory().start()
    d.cli("import", str(busybox_tar), "busybox", check=True)
    d.cli(
        "run",
        "-d",
        "--name",
        "brief",
        "busybox",
        "sh",
        "-c",
        "sleep 1; echo bye; exit 9",
        check=True,
    )
    d.stop(signal.SIGKILL)
    time.sleep(2)
    d.start()
    assert d.cli(
        "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "brief", check=True
    ).stdout.split() == ["exited", "9"]
    assert d.cli("logs", "brief", check=True).stdout == "bye\n"
