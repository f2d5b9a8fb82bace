"""The daemon process: sockets, locking, signals, logs, and the client's unreachable error."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

from tests.daemon import DaemonProcess, run_cli


def test_version_and_info_round_trip(daemon: DaemonProcess) -> None:
    out = daemon.cli("version", "--format", "json", check=True)
    data = json.loads(out.stdout)
    assert data["Client"]["Version"] == data["Server"]["Version"]
    assert data["Server"]["ApiVersion"] == "1.0"
    assert data["Server"]["KernelVersion"] == os.uname().release

    info = json.loads(daemon.cli("info", "--format", "json", check=True).stdout)
    assert info["ServinRootDir"] == str(daemon.root)
    assert info["ExecRoot"] == str(daemon.exec_root)
    assert info["Socket"] == str(daemon.socket)
    assert info["DaemonPid"] == daemon.proc.pid
    assert info["Images"] == 0
    assert (info["Containers"], info["ContainersRunning"], info["ContainersStopped"]) == (0, 0, 0)
    assert info["NCPU"] == os.cpu_count()
    assert "native" in info["Runtimes"]

    text = daemon.cli("info", check=True).stdout
    assert f"Servin Root Dir: {daemon.root}" in text
    templ = daemon.cli("info", "--format", "{{.Driver}}/{{.CgroupVersion}}", check=True).stdout
    assert templ.strip() in ("overlay/1", "overlay/2")


def test_socket_is_0660(daemon: DaemonProcess) -> None:
    mode = stat.S_IMODE(os.stat(daemon.socket).st_mode)
    assert mode == 0o660


def test_two_daemons_on_two_roots_at_once(daemon_factory: type[DaemonProcess], busybox_tar) -> None:
    a = daemon_factory().start()
    b = daemon_factory().start()
    a.cli("import", str(busybox_tar), "only-in-a", check=True)
    assert "only-in-a" in a.cli("images", check=True).stdout
    assert "only-in-a" not in b.cli("images", check=True).stdout
    assert json.loads(b.cli("info", "--format", "json", check=True).stdout)["Images"] == 0


def test_second_daemon_on_same_root_is_refused(daemon: DaemonProcess, scratch: Path) -> None:
    other_run = scratch
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "servin",
            "daemon",
            "--root",
            str(daemon.root),
            "--exec-root",
            str(other_run),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "another servin daemon" in lines[0]
    assert str(daemon.proc.pid) in lines[0]
    assert daemon.ping()  # the first one is unharmed


def test_socket_of_a_live_daemon_is_not_stolen(daemon: DaemonProcess, scratch: Path) -> None:
    other = scratch
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "servin",
            "daemon",
            "--root",
            str(other / "root"),
            "--exec-root",
            str(other / "run"),
            "--host",
            daemon.host,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "in use by another daemon" in proc.stderr
    assert daemon.ping()


def test_sigterm_shuts_down_cleanly(daemon_factory: type[DaemonProcess]) -> None:
    d = daemon_factory().start()
    assert d.stop(signal.SIGTERM) == 0
    assert not d.socket.exists()
    # The lock was released: a new daemon takes the same root.
    d.start()
    assert d.ping()
    assert d.stop(signal.SIGINT) == 0


def test_json_logs(daemon_factory: type[DaemonProcess]) -> None:
    d = daemon_factory(extra_args=["--log-format", "json"]).start()
    d.stop()
    records = [json.loads(line) for line in d.log().splitlines() if line.startswith("{")]
    ready = [r for r in records if r["msg"] == "servin daemon ready"]
    assert ready and ready[0]["level"] == "info" and ready[0]["root"] == str(d.root)


def test_unreachable_socket_gives_one_line_and_exit_1(scratch: Path) -> None:
    missing = scratch / "nothing.sock"
    for args in (["images"], ["info"], ["image", "rm", "x"]):
        out = run_cli("-H", f"unix://{missing}", *args)
        assert out.returncode == 1
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1, out.stderr
        assert f"unix://{missing}" in lines[0]
        assert "Is the daemon running?" in lines[0]


def test_servin_host_env_is_used(daemon: DaemonProcess) -> None:
    out = run_cli("info", "--format", "{{.ServinRootDir}}", env={"SERVIN_HOST": daemon.host})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(daemon.root)


def test_bad_config_is_one_clear_line(tmp_path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('log_level = "loud"\n')
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "servin",
            "daemon",
            "--config",
            str(cfg),
            "--root",
            str(tmp_path / "r"),
            "--exec-root",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == "Error: invalid log level 'loud'"
    assert not (tmp_path / "r").exists()
