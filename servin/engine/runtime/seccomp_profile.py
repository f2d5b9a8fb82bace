"""Servin's default seccomp profile, in OCI ``linux.seccomp`` form.

The policy is an allow list: everything not named fails with EPERM (and syscalls newer than
the list fail with ENOSYS, see ``servin.engine.linux.seccomp``). It is meant to be
equivalent in effect to Docker's default profile, written here from the kernel's syscall
names and Docker's documented behaviour:

- The ordinary process, file, memory, IPC, socket, signal, timer and scheduling syscalls
  are allowed for everyone; where such a call can do something privileged the kernel's own
  capability check still applies (chown, mknod, setuid, sched_setscheduler, ...).
- Syscalls that act on things the container does not own (the host's clock, kernel modules,
  mounts, namespaces, other processes' memory, BPF, perf, ...) are allowed only when the
  capability that governs them is in the container's set.
- ``clone``/``unshare`` without CAP_SYS_ADMIN may not create namespaces; ``clone3``, whose
  flags live in memory the filter cannot read, answers ENOSYS without CAP_SYS_ADMIN so that
  the C library falls back to ``clone``.
- ``personality`` accepts only the harmless personas (Linux, Linux32, UNAME26 and the
  query); ``socket`` refuses AF_VSOCK (the host's VM sockets).
- Never allowed, whatever the capabilities: kexec, swapon/swapoff, the keyring syscalls
  (not namespaced), io_uring (it bypasses this filter), and obsolete or unimplemented calls.

Differences from Docker's profile, on purpose:

- ``unshare`` without namespace flags (CLONE_FILES, CLONE_FS, CLONE_SYSVSEM) is allowed for
  everyone; Docker refuses ``unshare`` entirely without CAP_SYS_ADMIN.
- ``kcmp``, ``pidfd_getfd`` and ``userfaultfd`` need CAP_SYS_PTRACE. Like Docker on kernels
  4.8 and newer, ``ptrace`` and ``process_vm_readv``/``writev`` are allowed to everyone (the
  kernel's own ptrace access checks apply; strace and gdb work in a container).
- ``pivot_root`` is allowed with CAP_SYS_ADMIN (nested container runtimes need it).
- Syscalls added after Docker last revised its list (statmount, listmount, mseal, the
  ``*xattrat`` family, file_getattr/file_setattr, lsm_*) are classified here like their
  older equivalents.
"""

from __future__ import annotations

import errno
import platform
from collections.abc import Iterable
from typing import Any

# Syscalls everyone may make. Names of every architecture are mixed: those a given
# architecture lacks are skipped when the filter is compiled.
_ALLOWED: frozenset[str] = frozenset(
    {
        "ptrace", "process_vm_readv", "process_vm_writev",
        "accept", "accept4", "access", "adjtimex", "alarm", "arch_prctl", "bind", "brk",
        "cachestat", "capget", "capset", "chdir", "chmod", "chown", "chown32", "clock_getres",
        "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
        "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat",
        "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait",
        "epoll_pwait2", "epoll_wait", "eventfd", "eventfd2", "execve", "execveat", "exit",
        "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
        "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32",
        "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "file_getattr", "file_setattr",
        "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64",
        "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex", "futex_requeue",
        "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "futimesat", "get_robust_list",
        "get_thread_area", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32",
        "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer",
        "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
        "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "getrusage", "getsid",
        "getsockname", "getsockopt", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr",
        "getxattrat", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
        "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
        "io_setup", "io_submit", "ioctl", "ioprio_get", "ioprio_set", "ipc", "kill",
        "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
        "lchown32", "lgetxattr", "link", "linkat", "listen", "listmount", "listxattr",
        "listxattrat", "llistxattr", "lremovexattr", "lseek", "lsetxattr", "lsm_get_self_attr",
        "lsm_list_modules", "lsm_set_self_attr", "lstat", "lstat64", "madvise", "map_shadow_stack",
        "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod",
        "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "modify_ldt", "mprotect",
        "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
        "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "mseal", "msgctl", "msgget",
        "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "nanosleep", "newfstatat",
        "nice", "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe",
        "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64",
        "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_madvise", "process_mrelease",
        "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
        "readdir", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
        "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "removexattrat", "rename",
        "renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction",
        "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
        "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_get_priority_max",
        "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam",
        "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
        "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield",
        "seccomp", "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send",
        "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "set_robust_list",
        "set_thread_area", "set_tid_address", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32",
        "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority",
        "setregid", "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32",
        "setreuid", "setreuid32", "setrlimit", "setsid", "setsockopt", "setuid", "setuid32",
        "setxattr", "setxattrat", "sgetmask", "shmat", "shmctl", "shmdt", "shmget", "shutdown",
        "sigaction", "sigaltstack", "signal", "signalfd", "signalfd4", "sigpending", "sigprocmask",
        "sigreturn", "sigsuspend", "socketcall", "socketpair", "splice", "ssetmask", "stat",
        "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat", "sync",
        "sync_file_range", "sync_file_range2", "syncfs", "sysinfo", "tee", "tgkill", "time",
        "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64",
        "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
        "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate",
        "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime",
        "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid",
        "waitpid", "write", "writev", "arm_fadvise64_64", "arm_sync_file_range", "breakpoint",
        "cacheflush", "set_tls", "riscv_flush_icache", "riscv_hwprobe", "s390_runtime_instr",
    }
)

# Syscalls allowed only with a capability. A syscall listed under several capabilities is
# allowed when any of them is held.
_BY_CAPABILITY: dict[str, frozenset[str]] = {
    "CAP_SYS_ADMIN": frozenset(
        {
            "bpf", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie",
            "mount", "mount_setattr", "move_mount", "name_to_handle_at", "open_tree",
            "open_tree_attr", "perf_event_open", "pivot_root", "quotactl", "quotactl_fd",
            "s390_pci_mmio_read", "s390_pci_mmio_write", "setdomainname", "sethostname", "setns",
            "syslog", "umount", "umount2",
        }
    ),
    "CAP_BPF": frozenset({"bpf"}),
    "CAP_PERFMON": frozenset({"perf_event_open"}),
    "CAP_SYSLOG": frozenset({"syslog"}),
    "CAP_SYS_BOOT": frozenset({"reboot"}),
    "CAP_SYS_CHROOT": frozenset({"chroot"}),
    "CAP_SYS_MODULE": frozenset({"delete_module", "finit_module", "init_module"}),
    "CAP_SYS_NICE": frozenset(
        {"get_mempolicy", "mbind", "migrate_pages", "move_pages", "set_mempolicy",
         "set_mempolicy_home_node"}
    ),
    "CAP_SYS_PACCT": frozenset({"acct"}),
    "CAP_SYS_PTRACE": frozenset(
        {"kcmp", "pidfd_getfd", "userfaultfd"}
    ),
    "CAP_SYS_RAWIO": frozenset({"ioperm", "iopl"}),
    "CAP_SYS_TIME": frozenset(
        {"clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64",
         "settimeofday", "stime"}
    ),
    "CAP_SYS_TTY_CONFIG": frozenset({"vhangup"}),
    "CAP_DAC_READ_SEARCH": frozenset({"open_by_handle_at"}),
}

# The namespace flags of clone(2)/unshare(2). CLONE_NEWTIME (0x80) is only meaningful to
# unshare: in clone's flags those bits are the exit signal.
_CLONE_NEWNS = 0x00020000
_CLONE_NEWCGROUP = 0x02000000
_CLONE_NEWUTS = 0x04000000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_CLONE_NEWTIME = 0x00000080
_CLONE_NAMESPACES = (
    _CLONE_NEWNS | _CLONE_NEWCGROUP | _CLONE_NEWUTS | _CLONE_NEWIPC | _CLONE_NEWUSER
    | _CLONE_NEWPID | _CLONE_NEWNET
)

# personality(2) values that change nothing dangerous: PER_LINUX, PER_LINUX32, UNAME26,
# UNAME26|PER_LINUX32 and 0xffffffff (query the current persona).
_SAFE_PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

_AF_VSOCK = 40

# The OCI architecture names a filter should cover on each machine: the native one and the
# compat ABIs the kernel also accepts there.
_ARCHITECTURES = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
    "ppc64le": ["SCMP_ARCH_PPC64LE"],
    "s390x": ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
    "riscv64": ["SCMP_ARCH_RISCV64"],
}


def _normalise(capabilities: Iterable[str]) -> set[str]:
    caps = set()
    for cap in capabilities:
        name = cap.strip().upper()
        caps.add(name if name.startswith("CAP_") else f"CAP_{name}")
    return caps


def default_profile(capabilities: Iterable[str], machine: str | None = None) -> dict[str, Any]:
    """Servin's default seccomp profile for a container with ``capabilities``.

    ``capabilities`` are the container's bounding set, as "CAP_SYS_ADMIN" or "SYS_ADMIN".
    ``machine`` (``platform.machine()`` by default) picks the architectures to cover.
    Returns an OCI runtime-spec ``linux.seccomp`` object.
    """
    caps = _normalise(capabilities)
    machine = machine or platform.machine()
    allowed = set(_ALLOWED)
    for cap, names in _BY_CAPABILITY.items():
        if cap in caps:
            allowed |= names
    admin = "CAP_SYS_ADMIN" in caps
    # s390 passes clone's stack first and its flags second.
    clone_flags_arg = 1 if machine.startswith("s390") else 0

    rules: list[dict[str, Any]] = []
    if admin:
        allowed |= {"clone", "clone3", "unshare"}
    else:
        rules.append(_allow_masked("clone", clone_flags_arg, _CLONE_NAMESPACES))
        rules.append(_allow_masked("unshare", 0, _CLONE_NAMESPACES | _CLONE_NEWTIME))
        rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS})
    rules.extend(
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}],
        }
        for persona in _SAFE_PERSONAS
    )
    rules.append(
        {
            "names": ["socket"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": _AF_VSOCK, "op": "SCMP_CMP_NE"}],
        }
    )
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": errno.EPERM,
        "architectures": list(_ARCHITECTURES.get(machine, [])),
        "syscalls": [{"names": sorted(allowed), "action": "SCMP_ACT_ALLOW"}, *rules],
    }


def _allow_masked(name: str, index: int, mask: int) -> dict[str, Any]:
    """Allow ``name`` when none of the ``mask`` bits are set in argument ``index``."""
    return {
        "names": [name],
        "action": "SCMP_ACT_ALLOW",
        "args": [{"index": index, "value": mask, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
    }
