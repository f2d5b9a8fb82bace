"""The isolation guarantees of the native runtime, each proven on a real container."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from servin.engine.linux.capabilities import mask_of
from servin.engine.runtime.native import NativeRuntime
from servin.errors import ServinError
from tests.runtime.helpers import (
    DOCKER_DEFAULT_CAPS,
    DOCKER_MASKED_PATHS,
    Pipes,
    cgroup_path,
    default_spec,
    host_state,
    mount_points,
    new_id,
    run_container,
    start_container,
    wait_code,
    write_bundle,
)


def sh(rootfs: Path, script: str, **kwargs: object) -> dict:
    """A default spec running ``sh -c script``."""
    return default_spec(rootfs, ["sh", "-c", script], **kwargs)  # type: ignore[arg-type]


def test_container_is_pid_1_and_sees_no_host_process(runtime: NativeRuntime,
                                                      rootfs: Path) -> None:
    result = run_container(runtime, rootfs, sh(rootfs, "echo pid=$$; ls /proc; cat /proc/*/comm"))
    assert result.code == 0, result.stderr
    lines = result.stdout.split()
    assert lines[0] == "pid=1"
    pids = {int(entry) for entry in lines[1:] if entry.isdigit()}
    assert 1 in pids
    # sh, ls and cat only: a handful of small PIDs, none of the host's processes.
    assert max(pids) < 10, pids
    assert os.getpid() not in pids or os.getpid() < 10
    comms = set(lines) - {str(p) for p in pids}
    assert not {"python", "pytest", "process_api", "kthreadd"} & comms


def test_own_hostname(runtime: NativeRuntime, rootfs: Path) -> None:
    host = os.uname().nodename
    result = run_container(runtime, rootfs, sh(rootfs, "hostname; cat /proc/sys/kernel/hostname"))
    assert result.stdout.split() == ["c1", "c1"]
    assert os.uname().nodename == host


def test_new_network_namespace_has_only_loopback(runtime: NativeRuntime, rootfs: Path) -> None:
    result = run_container(runtime, rootfs, sh(
        rootfs, "ls /sys/class/net; tail -n +3 /proc/net/dev | cut -d: -f1"))
    assert result.code == 0, result.stderr
    assert result.stdout.split() == ["lo", "lo"]


def test_masked_and_readonly_proc_paths(runtime: NativeRuntime, rootfs: Path) -> None:
    # Every masked path the host has must be hidden: files by /dev/null (char 1,3), directories
    # by an empty read-only tmpfs. This VM's kernel has no /proc/kcore; where it exists it is
    # checked like the others. /proc/keys, /proc/timer_list, /proc/acpi and /sys/firmware are
    # present here, so the check cannot pass without masking anything.
    files = [p for p in DOCKER_MASKED_PATHS if os.path.isfile(p)]
    dirs = [p for p in DOCKER_MASKED_PATHS if os.path.isdir(p)]
    assert "/proc/keys" in files and "/sys/firmware" in dirs
    missing = [p for p in DOCKER_MASKED_PATHS if not os.path.exists(p)]
    script = "".join(f"stat -c '%n=%t,%T' {p}; echo '{p}_bytes='$(wc -c < {p});\n"
                     for p in files)
    script += "".join(f"echo '{p}_entries='$(ls -A {p} | wc -l);\n" for p in dirs)
    script += "".join(f"test -e {p} && echo '{p}=EXISTS';\n" for p in missing)
    script += """
echo 1 > /proc/sys/vm/drop_caches && echo WROTE_PROC_SYS
echo h > /proc/sysrq-trigger && echo WROTE_SYSRQ
touch /sys/x && echo WROTE_SYS
true
"""
    result = run_container(runtime, rootfs, sh(rootfs, script))
    out = set(result.stdout.split())
    for path in files:
        assert f"{path}=1,3" in out, result.stdout
        assert f"{path}_bytes=0" in out
    for path in dirs:
        assert f"{path}_entries=0" in out
    assert not any(line.endswith("=EXISTS") for line in out)
    assert not {"WROTE_PROC_SYS", "WROTE_SYSRQ", "WROTE_SYS"} & out
    assert "Read-only file system" in result.stderr


def test_capabilities_are_dockers_default_fourteen(runtime: NativeRuntime, rootfs: Path) -> None:
    script = "grep -E '^Cap|^NoNewPrivs' /proc/self/status"
    result = run_container(runtime, rootfs, sh(rootfs, script))
    fields = dict(line.split(":\t") for line in result.stdout.splitlines())
    expected = mask_of(DOCKER_DEFAULT_CAPS)
    assert len(DOCKER_DEFAULT_CAPS) == 14
    assert int(fields["CapEff"], 16) == expected == 0xA80425FB
    assert int(fields["CapPrm"], 16) == expected
    assert int(fields["CapBnd"], 16) == expected
    assert int(fields["CapInh"], 16) == 0
    assert int(fields["CapAmb"], 16) == 0
    assert fields["NoNewPrivs"] == "1"


def test_no_new_privs_follows_the_config(runtime: NativeRuntime, rootfs: Path) -> None:
    spec = sh(rootfs, "grep NoNewPrivs /proc/self/status")
    spec["process"]["noNewPrivileges"] = False
    assert run_container(runtime, rootfs, spec).stdout.split() == ["NoNewPrivs:", "0"]


def test_no_file_descriptor_of_the_caller_leaks(runtime: NativeRuntime, rootfs: Path,
                                                 tmp_path: Path) -> None:
    # Inheritable fds of every kind, as a daemon might hold them without O_CLOEXEC.
    leaked = [os.open(tmp_path, os.O_RDONLY), os.open("/etc/hostname", os.O_RDONLY),
              *os.pipe()]
    for fd in leaked:
        os.set_inheritable(fd, True)
    try:
        running = start_container(runtime, rootfs, default_spec(rootfs, ["sleep", "30"]))
        try:
            fds = sorted(os.listdir(f"/proc/{running.pid}/fd"), key=int)
            assert fds == ["0", "1", "2"]
            assert os.readlink(f"/proc/{running.pid}/exe").endswith("busybox")
        finally:
            runtime.kill(running.id, signal.SIGKILL)
            assert wait_code(running.pid) == -signal.SIGKILL
            runtime.delete(running.id)
            running.pipes.drain()
    finally:
        for fd in leaked:
            os.close(fd)


def test_cwd_through_proc_self_fd_cannot_reach_the_host(runtime: NativeRuntime, rootfs: Path,
                                                        tmp_path: Path) -> None:
    host_dir = tmp_path / "host-secret"
    host_dir.mkdir()
    (host_dir / "MARKER").write_text("host")
    held = [os.open(host_dir, os.O_RDONLY | os.O_DIRECTORY) for _ in range(4)]
    for fd in held:
        os.set_inheritable(fd, True)
    before = host_state()
    try:
        for number in [*range(3, 12), *held]:
            spec = sh(rootfs, "pwd; ls -a")
            spec["process"]["cwd"] = f"/proc/self/fd/{number}"
            try:
                result = run_container(runtime, rootfs, spec)
            except ServinError as exc:
                assert "cwd" in str(exc)
                continue
            assert "MARKER" not in result.stdout, f"fd {number} reached the host"
    finally:
        for fd in held:
            os.close(fd)
    assert host_state() == before
    assert runtime.list() == []


@pytest.mark.parametrize("link, target", [
    ("dev", "/"),
    ("dev", "../../../../../../"),
    ("proc", "/"),
    ("proc", "/etc"),
    ("sys", "../.."),
])
def test_symlinked_mount_destination_cannot_redirect_a_mount(
        runtime: NativeRuntime, rootfs: Path, link: str, target: str) -> None:
    (rootfs / link).rmdir()
    os.symlink(target, rootfs / link)
    container_id = new_id()
    spec = sh(rootfs, "true", cgroups_path=cgroup_path(container_id))
    before = host_state()
    with pytest.raises(ServinError, match="refused"):
        runtime.create(container_id, write_bundle(rootfs, spec), Pipes().stdio)
    assert host_state() == before
    assert runtime.list() == []


def test_bind_destination_symlink_stays_inside_the_rootfs(runtime: NativeRuntime, rootfs: Path,
                                                          tmp_path: Path) -> None:
    source = tmp_path / "volume"
    source.mkdir()
    (source / "data.txt").write_text("volume data")
    host_target = tmp_path / "host-target"
    host_target.mkdir()
    # The image points /mnt/vol at an absolute host path: it must resolve inside the rootfs.
    os.symlink(str(host_target), rootfs / "mnt/vol")
    spec = sh(rootfs, "cat /mnt/vol/data.txt; echo; sleep 30")
    spec["mounts"].append({"destination": "/mnt/vol", "type": "bind", "source": str(source),
                           "options": ["rbind", "rw"]})
    before = mount_points()
    running = start_container(runtime, rootfs, spec)
    try:
        assert running.read_line() == "volume data"
        assert mount_points() == before
        assert not any(os.scandir(host_target))
        with open(f"/proc/{running.pid}/mountinfo", encoding="utf-8") as file:
            container_mounts = [line.split()[4] for line in file]
        assert str(host_target) in container_mounts  # the rootfs's own copy of that path
    finally:
        runtime.delete(running.id, force=True)
        wait_code(running.pid)
        running.pipes.drain()


def test_readonly_root_refuses_writes(runtime: NativeRuntime, rootfs: Path) -> None:
    spec = sh(rootfs, "touch /newfile && echo ROOT_WRITABLE; touch /tmp/x && echo TMP_WRITABLE;"
                      " echo ok > /dev/shm/x && cat /dev/shm/x")
    spec["root"]["readonly"] = True
    result = run_container(runtime, rootfs, spec)
    assert "ROOT_WRITABLE" not in result.stdout and "TMP_WRITABLE" not in result.stdout
    assert result.stdout.split() == ["ok"]  # tmpfs mounts stay writable
    assert "Read-only file system" in result.stderr
    assert not (rootfs / "newfile").exists()


def test_container_mounts_never_reach_the_host(runtime: NativeRuntime, rootfs: Path) -> None:
    before = mount_points()
    running = start_container(runtime, rootfs, sh(rootfs, "echo up; sleep 30"))
    try:
        assert running.read_line() == "up"
        assert mount_points() == before
        with open(f"/proc/{running.pid}/mountinfo", encoding="utf-8") as file:
            inside = {line.split()[4] for line in file}
        assert {"/", "/proc", "/dev", "/dev/pts", "/sys", "/proc/keys", "/proc/sys"} <= inside
        assert not {m for m in inside if m.startswith(str(rootfs))}
    finally:
        runtime.delete(running.id, force=True)
        wait_code(running.pid)
        running.pipes.drain()
    assert mount_points() == before
