"""The seccomp binding and Servin's default profile, loaded for real into forked children."""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
import struct
import subprocess
import tempfile

import pytest

from servin.engine.linux.seccomp import compile_filter, load_filter
from servin.engine.runtime.seccomp_profile import default_profile
from servin.errors import InvalidArgument
from tests.linux.seccomp_child import call, libc, run_filtered

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 syscall numbers")

DOCKER_DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]  # fmt: skip

CLONE_NEWUSER = 0x10000000
CLONE_NEWNS = 0x00020000
CLONE_FILES = 0x00000400
NR_CLONE3 = 435
NR_KCMP = 312  # x86_64
NR_MSEAL = 462
NR_DUP3 = 292
NR_GETPID = 39
PTRACE_TRACEME = 0
O_CLOEXEC = 0o2000000
AF_VSOCK = 40
NOWHERE = b"/nonexistent-servin-seccomp-test"


def seccomp_mode() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Seccomp:"):
                return int(line.split()[1])
    raise AssertionError("no Seccomp line in /proc/self/status")


def bogus_mount() -> tuple[int, int]:
    """A mount(2) that the kernel refuses for a reason other than permission."""
    return call(libc.mount, b"none", NOWHERE, b"servin-no-such-fs", 0, None)


def default_profile_probe() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "f")
        with open(path, "w") as f:
            f.write("hello")
        with open(path) as f:
            read_back = f.read()
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    forked = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.close()
    return {
        "seccomp": seccomp_mode(),
        "read_back": read_back,
        "forked": forked,
        "exec": subprocess.run(["/bin/busybox", "true"], check=False).returncode,
        "unshare_user": call(libc.unshare, CLONE_NEWUSER),
        "unshare_files": call(libc.unshare, CLONE_FILES),
        "mount": bogus_mount(),
        "umount": call(libc.umount2, NOWHERE, 0),
        "clone3": call(libc.syscall, NR_CLONE3, None, 0),
        "ptrace": call(libc.ptrace, PTRACE_TRACEME, 0, None, None),
        "personality_query": call(libc.personality, ctypes.c_ulong(0xFFFFFFFF)),
        "personality_bsd": call(libc.personality, ctypes.c_ulong(0x0006)),
        "vsock": call(libc.socket, AF_VSOCK, socket.SOCK_STREAM, 0),
        "mseal": call(libc.syscall, NR_MSEAL, 0, 0, 0),
    }


def test_default_profile_confines_an_unprivileged_container() -> None:
    control = run_filtered(None, default_profile_probe)
    # Without a filter, as root, none of the refused calls fails for lack of permission,
    # so the EPERMs below come from the filter.
    assert control["seccomp"] == 0
    assert control["mount"][1] in (errno.ENODEV, errno.ENOENT)
    assert control["clone3"][1] != errno.ENOSYS
    assert control["personality_bsd"][1] == 0
    assert control["mseal"][1] != errno.ENOSYS

    got = run_filtered(default_profile(DOCKER_DEFAULT_CAPS), default_profile_probe)
    assert got["seccomp"] == 2
    assert got["read_back"] == "hello"
    assert got["forked"] == 7
    assert got["exec"] == 0
    assert got["unshare_user"] == [-1, errno.EPERM]
    assert got["unshare_files"] == [0, 0]
    assert got["mount"] == [-1, errno.EPERM]
    assert got["umount"] == [-1, errno.EPERM]
    assert got["clone3"] == [-1, errno.ENOSYS]  # so that libc falls back to clone
    assert got["ptrace"] == [0, 0]  # allowed to everyone, as Docker does on kernels >= 4.8
    assert got["personality_query"][1] == 0
    assert got["personality_bsd"] == [-1, errno.EPERM]
    assert got["vsock"] == [-1, errno.EPERM]
    # Newer than every syscall the profile names: ENOSYS, not EPERM.
    assert got["mseal"] == [-1, errno.ENOSYS]


def test_default_profile_with_sys_admin_allows_mount_and_namespaces() -> None:
    def probe() -> dict[str, object]:
        return {
            "mount": bogus_mount(),
            "clone3": call(libc.syscall, NR_CLONE3, None, 0),
            "unshare_ns": call(libc.unshare, CLONE_NEWNS),
        }

    got = run_filtered(default_profile([*DOCKER_DEFAULT_CAPS, "SYS_ADMIN"]), probe)
    assert got["mount"][0] == -1
    assert got["mount"][1] in (errno.ENODEV, errno.ENOENT)  # the kernel's answer, not EPERM
    assert got["clone3"][1] not in (errno.ENOSYS, errno.EPERM)
    assert got["unshare_ns"] == [0, 0]


def test_default_profile_capability_gated_syscalls() -> None:
    def probe() -> dict[str, object]:
        return {"kcmp": call(libc.syscall, NR_KCMP, os.getpid(), os.getpid(), 0, 0, 0)}

    without = run_filtered(default_profile(DOCKER_DEFAULT_CAPS), probe)
    assert without["kcmp"] == [-1, errno.EPERM]
    with_ptrace = run_filtered(default_profile([*DOCKER_DEFAULT_CAPS, "CAP_SYS_PTRACE"]), probe)
    assert with_ptrace["kcmp"] == [0, 0]
    profile = default_profile(DOCKER_DEFAULT_CAPS)
    allowed = set(profile["syscalls"][0]["names"])
    assert {"read", "execve", "chroot"} <= allowed
    assert "ptrace" in allowed
    for name in ("kcmp", "mount", "setns", "init_module", "reboot", "settimeofday", "bpf",
                 "kexec_load", "keyctl", "io_uring_setup", "swapon"):  # fmt: skip
        assert name not in allowed
    everything = default_profile(
        ["SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE", "SYS_TIME", "SYS_BOOT", "SYS_RAWIO"]
    )
    allowed_all = set(everything["syscalls"][0]["names"])
    assert {"ptrace", "mount", "setns", "init_module", "reboot", "settimeofday", "iopl",
            "clone", "clone3", "unshare"} <= allowed_all  # fmt: skip
    # Never allowed, whatever the capabilities.
    assert not {"kexec_load", "keyctl", "io_uring_setup", "swapon"} & allowed_all


def test_errno_action_with_custom_errno_ret() -> None:
    spec = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["chdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOMSG}],
    }

    def probe() -> dict[str, object]:
        try:
            os.chdir("/")
        except OSError as exc:
            return {"errno": exc.errno, "getpid": os.getpid() > 0}
        return {"errno": 0}

    assert run_filtered(spec, probe) == {"errno": errno.ENOMSG, "getpid": True}


def test_argument_comparisons() -> None:
    spec = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {
                # dup3 with O_CLOEXEC set in flags: refused.
                "names": ["dup3"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": errno.EXDEV,
                "args": [
                    {"index": 2, "value": O_CLOEXEC, "valueTwo": O_CLOEXEC,
                     "op": "SCMP_CMP_MASKED_EQ"},
                ],
            },
            {
                # kill with signal 0 or SIGWINCH (same argument twice: either matches).
                "names": ["kill"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": errno.EACCES,
                "args": [
                    {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": signal.SIGWINCH, "op": "SCMP_CMP_EQ"},
                ],
            },
            {
                # getpriority(PRIO_PROCESS, who > 1): both conditions must hold.
                "names": ["getpriority"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": errno.EROFS,
                "args": [
                    {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 1, "op": "SCMP_CMP_GT"},
                ],
            },
        ],
    }

    def probe() -> dict[str, object]:
        me = os.getpid()
        return {
            "dup3_cloexec": call(libc.syscall, NR_DUP3, 0, 100, O_CLOEXEC),
            "dup3_plain": call(libc.syscall, NR_DUP3, 0, 101, 0),
            "kill_0": call(libc.kill, me, 0),
            "kill_winch": call(libc.kill, me, signal.SIGWINCH),
            "kill_cont": call(libc.kill, me, signal.SIGCONT),
            "prio_other": call(libc.getpriority, 0, me),
            "prio_self": call(libc.getpriority, 0, 0),
            "prio_group": call(libc.getpriority, 1, me),
        }

    got = run_filtered(spec, probe)
    assert got["dup3_cloexec"] == [-1, errno.EXDEV]
    assert got["dup3_plain"] == [101, 0]
    assert got["kill_0"] == [-1, errno.EACCES]
    assert got["kill_winch"] == [-1, errno.EACCES]
    assert got["kill_cont"] == [0, 0]
    assert got["prio_other"] == [-1, errno.EROFS]
    assert got["prio_self"][1] == 0
    assert got["prio_group"][1] != errno.EROFS


def test_kill_process_action() -> None:
    spec = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}],
    }
    pid = os.fork()
    if pid == 0:
        try:
            libc.prctl(38, 1, 0, 0, 0)
            load_filter(spec)
            os.getppid()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


def test_unknown_names_are_skipped_and_bad_specs_refused() -> None:
    spec = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["read", "servin_no_such_syscall", "socketcall"], "action": "SCMP_ACT_ALLOW"}
        ],
    }
    assert len(compile_filter(spec)) % 8 == 0
    bad = [
        {"defaultAction": "SCMP_ACT_NOPE"},
        {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]},
        {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]},
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_LOG"}]},
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]},
        {"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 5},
    ]  # fmt: skip
    for spec in bad:
        with pytest.raises(InvalidArgument):
            compile_filter(spec)


def test_enosys_prologue_only_with_an_errno_default() -> None:
    enosys_return = struct.pack("=HBBI", 0x06, 0, 0, 0x00050000 | errno.ENOSYS)
    allow_list = {"defaultAction": "SCMP_ACT_ERRNO",
                  "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}  # fmt: skip
    deny_list = {"defaultAction": "SCMP_ACT_ALLOW",
                 "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO"}]}  # fmt: skip
    assert enosys_return in compile_filter(allow_list)
    assert enosys_return not in compile_filter(deny_list)

    # A profile that names getpid (39) only: everything above 39 is "newer" and gets ENOSYS,
    # everything below that is not named gets the default errno. (Loading it for real is
    # covered by the default-profile test, where mseal gets ENOSYS.)
    spec = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.EPERM,
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}  # fmt: skip
    program = compile_filter(spec)
    head = [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, 64, 8)]
    assert any(op == 0x25 and k == NR_GETPID for op, _, _, k in head)  # jgt 39 -> ENOSYS


def test_log_flags_and_log_action_load() -> None:
    spec = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [
            {"names": ["uname"], "action": "SCMP_ACT_LOG"},
            {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EBADE},
        ],
    }

    def probe() -> dict[str, object]:
        return {"seccomp": seccomp_mode(), "uname": os.uname().sysname,
                "sethostname": call(libc.sethostname, b"x", 1)}  # fmt: skip

    got = run_filtered(spec, probe)
    assert got == {"seccomp": 2, "uname": "Linux", "sethostname": [-1, errno.EBADE]}
