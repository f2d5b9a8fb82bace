"""Joining namespaces (container:NAME, host) and cgroup limits as the kernel sees them."""

from __future__ import annotations

import os
from pathlib import Path

from tests.containers.helpers import cgroup_dirs
from tests.daemon import DaemonProcess


def _out(engine: DaemonProcess, *args: str) -> str:
    result = engine.cli("run", "--rm", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_join_another_containers_namespaces(engine: DaemonProcess) -> None:
    engine.cli(
        "run",
        "-d",
        "--name",
        "anchor",
        "--hostname",
        "anchor-host",
        "busybox",
        "sleep",
        "60",
        check=True,
    )
    pid = int(engine.cli("inspect", "-f", "{{.State.Pid}}", "anchor", check=True).stdout)
    net_ns = os.readlink(f"/proc/{pid}/ns/net")
    joined = _out(
        engine,
        "--network",
        "container:anchor",
        "--pid",
        "container:anchor",
        "--ipc",
        "container:anchor",
        "--uts",
        "container:anchor",
        "busybox",
        "sh",
        "-c",
        "readlink /proc/self/ns/net; hostname; ps -o comm | grep -c sleep",
    )
    lines = joined.split()
    assert lines[0] == net_ns
    assert lines[1] == "anchor-host"
    assert lines[2] == "1"  # the anchor's sleep is visible in the shared PID namespace
    engine.cli("rm", "-f", "anchor", check=True)
    gone = engine.cli("run", "--rm", "--network", "container:anchor", "busybox", "true")
    assert gone.returncode == 125 and "No such container: anchor" in gone.stderr


def test_host_namespaces(engine: DaemonProcess) -> None:
    out = _out(
        engine,
        "--network",
        "host",
        "--uts",
        "host",
        "busybox",
        "sh",
        "-c",
        "readlink /proc/self/ns/net; hostname",
    )
    net, hostname = out.split()
    assert net == os.readlink("/proc/self/ns/net")
    assert hostname == os.uname().nodename


def test_cgroup_limits_are_applied(engine: DaemonProcess) -> None:
    cid = engine.cli(
        "run",
        "-d",
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--pids-limit",
        "50",
        "--cpuset-cpus",
        "0",
        "busybox",
        "sleep",
        "60",
        check=True,
    ).stdout.strip()
    dirs = {d.parent.parent.name: d for d in cgroup_dirs(cid)}

    def read(controller: str, name: str) -> str:
        return (dirs[controller] / name).read_text().strip()

    if "memory" in dirs:  # cgroup v1 (this VM)
        assert read("memory", "memory.limit_in_bytes") == str(64 * 1024 * 1024)
        assert read("cpu", "cpu.cfs_quota_us") == "50000"
        assert read("cpu", "cpu.cfs_period_us") == "100000"
        assert read("cpu", "cpu.shares") == "512"
        assert read("pids", "pids.max") == "50"
        assert read("cpuset", "cpuset.cpus") == "0"
    else:
        group = next(iter(dirs.values()))
        assert (group / "memory.max").read_text().strip() == str(64 * 1024 * 1024)
        assert (group / "cpu.max").read_text().split() == ["50000", "100000"]
        assert (group / "pids.max").read_text().strip() == "50"
    engine.cli("rm", "-f", cid, check=True)


def test_entrypoint_cmd_and_env_resolution(engine: DaemonProcess, tmp_path: Path) -> None:
    assert _out(engine, "--entrypoint", "echo", "busybox", "a", "b").strip() == "a b"
    assert _out(engine, "busybox", "echo", "cmd").strip() == "cmd"
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=1\n")
    out = _out(engine, "--env-file", str(env_file), "-e", "X=2", "busybox", "env")
    assert "FROM_FILE=1" in out and "X=2" in out and "PATH=" in out and "HOSTNAME=" in out


def test_bind_mounts_and_tmpfs(engine: DaemonProcess, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("from host\n")
    out = _out(
        engine,
        "-v",
        f"{tmp_path}:/data",
        "--tmpfs",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "cat /data/in.txt; echo back > /data/out.txt; echo t > /scratch/x; cat /scratch/x",
    )
    assert out.split("\n")[:2] == ["from host", "t"]
    assert (tmp_path / "out.txt").read_text() == "back\n"
    ro = engine.cli("run", "--rm", "-v", f"{tmp_path}:/data:ro", "busybox", "touch", "/data/y")
    assert ro.returncode != 0 and "Read-only file system" in ro.stderr
    missing = engine.cli(
        "run", "--rm", "--mount", "type=bind,source=/no/such/dir,target=/x", "busybox", "true"
    )
    assert missing.returncode == 125
    assert missing.stderr.strip() == (
        'Error: invalid mount config for type "bind": bind source path does not exist: '
        "/no/such/dir"
    )


def test_log_rotation(engine: DaemonProcess) -> None:
    engine.cli(
        "run",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        "for i in $(seq 200); do echo line-$i; done",
        check=True,
    )
    name = engine.cli("ps", "-lq", "--no-trunc", check=True).stdout.strip()
    log_path = Path(engine.cli("inspect", "-f", "{{.LogPath}}", name, check=True).stdout.strip())
    files = sorted(p.name for p in log_path.parent.iterdir() if p.name.startswith(log_path.name))
    assert files == [log_path.name, f"{log_path.name}.1", f"{log_path.name}.2"]
    assert all((log_path.parent / f).stat().st_size <= 2048 + 200 for f in files)
    tail = engine.cli("logs", "--tail", "1", name, check=True).stdout
    assert tail == "line-200\n"
    engine.cli("rm", name, check=True)
