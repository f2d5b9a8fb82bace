"""The thin syscall wrappers in servin.engine.linux (those the runtime relies on)."""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from servin.engine.linux import capabilities as caps
from servin.engine.linux import fds, mount, namespaces, oom, prctl, rlimits, uts
from servin.engine.linux.safepath import open_in_root


def in_child(check: Callable[[int], None] | Callable[[], None], *, pass_fd: bool = False) -> None:
    """Run ``check`` in a forked child (it may change process-wide state); fail on error.

    With ``pass_fd`` the check receives the fd it must keep open to report its result.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            try:
                check(write_end) if pass_fd else check()  # type: ignore[call-arg]
                os.write(write_end, b"ok")
            except BaseException as exc:  # report anything
                os.write(write_end, f"{type(exc).__name__}: {exc}".encode())
        finally:
            os._exit(0)  # never run pytest's teardown in the child
    os.close(write_end)
    message = b""
    while chunk := os.read(read_end, 4096):
        message += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    assert message == b"ok", message.decode()


def test_capability_table_matches_the_kernel() -> None:
    assert len(caps.CAPABILITIES) == 41
    assert caps.cap_number("CAP_CHOWN") == 0
    assert caps.cap_number("SYS_ADMIN") == 21
    assert caps.cap_number("cap_checkpoint_restore") == 40
    assert caps.cap_name(24) == "CAP_SYS_RESOURCE"
    assert caps.last_cap() == 40
    assert caps.mask_of(caps.DOCKER_DEFAULT_CAPS) == 0xA80425FB
    assert caps.names_of(0b101) == ["CAP_CHOWN", "CAP_DAC_READ_SEARCH"]
    with pytest.raises(ValueError, match="unknown capability"):
        caps.cap_number("CAP_FLY")


def test_capget_agrees_with_proc_status() -> None:
    with open("/proc/self/status", encoding="ascii") as file:
        status = dict(line.split(":\t", 1) for line in file if ":\t" in line)
    sets = caps.capget()
    assert sets.effective == int(status["CapEff"], 16)
    assert sets.permitted == int(status["CapPrm"], 16)
    assert caps.bounding_set() == int(status["CapBnd"], 16)


def test_capset_and_bounding_drop_in_a_child() -> None:
    def check() -> None:
        keep = caps.mask_of(["CAP_CHOWN", "CAP_KILL", "CAP_SETPCAP"])
        caps.drop_bounding(keep)
        assert caps.bounding_set() == keep
        caps.capset(caps.CapSets(effective=keep, permitted=keep, inheritable=0))
        assert caps.capget().effective == keep
        with pytest.raises(OSError) as info:
            caps.capset(caps.CapSets(effective=1 << 21, permitted=1 << 21, inheritable=0))
        assert info.value.errno == errno.EPERM
        assert "capset" in str(info.value)

    in_child(check)


def test_mount_options_are_split_into_flags_propagation_and_data() -> None:
    parsed = mount.parse_options(["nosuid", "noexec", "ro", "rbind", "rslave", "mode=755",
                                  "newinstance", "rro", "tmpcopyup"])
    assert parsed.flags == (mount.MS_NOSUID | mount.MS_NOEXEC | mount.MS_RDONLY | mount.MS_BIND
                            | mount.MS_REC)
    assert parsed.propagation == [mount.MS_SLAVE | mount.MS_REC]
    assert parsed.data == "mode=755,newinstance"
    assert parsed.recursive_set == mount.MOUNT_ATTR_RDONLY
    assert parsed.is_bind
    assert mount.parse_options(["ro", "rw"]).flags == 0


def test_mount_errors_name_the_operation_and_target(tmp_path: Path) -> None:
    with pytest.raises(OSError) as info:
        mount.mount("none", str(tmp_path / "missing"), "tmpfs", 0)
    assert info.value.errno == errno.ENOENT
    assert "mount tmpfs" in str(info.value) and "missing" in str(info.value)


def test_mount_bind_remount_readonly_and_umount_in_private_namespace(tmp_path: Path) -> None:
    source, target = tmp_path / "src", tmp_path / "dst"
    source.mkdir()
    target.mkdir()

    def check() -> None:
        namespaces.unshare(namespaces.CLONE_NEWNS)
        mount.set_propagation("/", mount.MS_PRIVATE | mount.MS_REC)
        mount.mount(str(source), str(target), None, mount.MS_BIND)
        mount.remount_bind(str(target), mount.MS_RDONLY)
        assert os.statvfs(target).f_flag & os.ST_RDONLY
        with pytest.raises(OSError):
            (target / "x").write_text("x")
        mount.umount(str(target))

    before = _mounts(tmp_path)
    in_child(check)
    assert _mounts(tmp_path) == before


def test_unshare_uts_and_sethostname_stay_private() -> None:
    host = os.uname().nodename

    def check() -> None:
        namespaces.unshare(namespaces.CLONE_NEWUTS)
        uts.set_hostname("inside")
        uts.set_domainname("dom")
        assert os.uname().nodename == "inside"

    in_child(check)
    assert os.uname().nodename == host


def test_setns_joins_a_namespace_by_path() -> None:
    def check() -> None:
        target = f"/proc/{os.getppid()}/ns/uts"
        namespaces.unshare(namespaces.CLONE_NEWUTS)
        assert namespaces.namespace_id("/proc/self/ns/uts") != namespaces.namespace_id(target)
        fd = namespaces.open_namespace(target)
        namespaces.setns(fd, namespaces.CLONE_NEWUTS, path=target)
        os.close(fd)
        assert namespaces.namespace_id("/proc/self/ns/uts") == namespaces.namespace_id(target)

    in_child(check)
    with pytest.raises(OSError, match="open namespace /proc/0/ns/net"):
        namespaces.open_namespace("/proc/0/ns/net")


def test_prctl_flags_in_a_child() -> None:
    def check() -> None:
        assert not prctl.get_no_new_privs()
        prctl.set_no_new_privs()
        assert prctl.get_no_new_privs()
        prctl.set_child_subreaper(True)
        assert prctl.is_child_subreaper()
        prctl.set_pdeathsig(signal.SIGKILL)
        prctl.set_pdeathsig(0)

    in_child(check)


def test_rlimit_above_the_hard_limit_is_clamped() -> None:
    def check() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        # Without CAP_SYS_RESOURCE the hard limit cannot grow: lower it first so that the
        # test means the same on hosts that do have the capability.
        lowered = min(hard, 4096)
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, lowered))
        caps.drop_bounding(caps.bounding_set() & ~(1 << caps.cap_number("SYS_RESOURCE")))
        current = caps.capget()
        no_resource = current.permitted & ~(1 << caps.cap_number("SYS_RESOURCE"))
        caps.capset(caps.CapSets(no_resource, no_resource, 0))
        applied = rlimits.set_rlimit("RLIMIT_NOFILE", 2**20, 2**20)
        assert applied == (lowered, lowered)
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (lowered, lowered)
        assert rlimits.set_rlimit("RLIMIT_NOFILE", 100, 200) == (100, 200)
        with pytest.raises(OSError, match="soft"):
            rlimits.set_rlimit("RLIMIT_NOFILE", 300, 200)

    in_child(check)
    with pytest.raises(ValueError):
        rlimits.rlimit_number("RLIMIT_NOPE")


def test_negative_oom_score_adj_is_clamped_without_cap_sys_resource() -> None:
    def check() -> None:
        oom.set_oom_score_adj(100)
        assert oom.read_oom_score_adj() == 100
        no_resource = caps.capget().permitted & ~(1 << caps.cap_number("SYS_RESOURCE"))
        caps.capset(caps.CapSets(no_resource, no_resource, 0))
        value = oom.set_oom_score_adj(-900)
        assert value == oom.read_oom_score_adj()
        assert -900 < value <= 100

    in_child(check)


def test_close_all_except_keeps_only_the_chosen_fds() -> None:
    def check(report_fd: int) -> None:
        opened = [os.open("/dev/null", os.O_RDONLY) for _ in range(6)]
        keep = [opened[1], opened[4], report_fd]
        fds.close_all_except(keep)
        assert _open_fds() == {0, 1, 2, *keep}

    in_child(check, pass_fd=True)


def test_open_in_root_contains_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (root / "etc").mkdir(parents=True)
    outside.mkdir()
    (root / "etc/hosts").write_text("inside")
    (outside / "hosts").write_text("outside")
    os.symlink("/", root / "dev")
    os.symlink("../../../../etc", root / "up")
    os.symlink("../../../../outside", root / "escape")
    os.symlink(str(outside), root / "abs")
    os.symlink("loop", root / "loop")
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        with open_in_root(root_fd, "/dev") as resolved:
            assert resolved.path == "/" and resolved.followed_symlink
        with pytest.raises(FileNotFoundError):  # "outside" does not exist *inside* the root
            open_in_root(root_fd, "/escape/hosts")
        with open_in_root(root_fd, "/up/hosts") as resolved:
            assert resolved.path == "/etc/hosts"
            with open(resolved.proc_path, encoding="ascii") as file:
                assert file.read() == "inside"
        with open_in_root(root_fd, "/abs/new/dir", create="dir") as resolved:
            assert resolved.is_dir
        assert (root / str(outside).lstrip("/") / "new/dir").is_dir()
        assert not (outside / "new").exists()
        with open_in_root(root_fd, "/etc/../../../etc/hosts") as resolved:
            assert resolved.path == "/etc/hosts"
        with open_in_root(root_fd, "/data/file", create="file") as resolved:
            assert not resolved.is_dir
        with pytest.raises(OSError) as info:
            open_in_root(root_fd, "/loop")
        assert info.value.errno == errno.ELOOP
        with pytest.raises(OSError) as info:
            open_in_root(root_fd, "/etc/hosts/x")
        assert info.value.errno == errno.ENOTDIR
    finally:
        os.close(root_fd)


def _open_fds() -> set[int]:
    """The fds open now (the one listdir used for reading is closed again, and dropped)."""
    listed = [int(fd) for fd in os.listdir("/proc/self/fd")]
    result = set()
    for fd in listed:
        try:
            fcntl.fcntl(fd, fcntl.F_GETFD)
            result.add(fd)
        except OSError:
            pass
    return result


def _mounts(under: Path) -> set[str]:
    """Mount points at or below ``under`` (the test's own dir: other processes' mounts come and
    go elsewhere on the host)."""
    with open("/proc/self/mountinfo", encoding="utf-8") as file:
        points = {line.split()[4] for line in file}
    return {p for p in points if p == str(under) or p.startswith(f"{under}/")}
