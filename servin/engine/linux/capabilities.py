"""Linux capabilities: names <-> numbers, capget/capset, the bounding and ambient sets."""

from __future__ import annotations

import ctypes
from collections.abc import Iterable
from dataclasses import dataclass

from servin.engine.linux.prctl import (
    PR_CAP_AMBIENT,
    PR_CAP_AMBIENT_CLEAR_ALL,
    PR_CAP_AMBIENT_RAISE,
    PR_CAPBSET_DROP,
    PR_CAPBSET_READ,
    prctl,
)
from servin.engine.linux.syscalls import check, libc, syscall_number

# The 41 capabilities of Linux 5.9+ (numbers 0..40), in kernel order.
CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
    "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON",
    "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
CAP_NUMBERS: dict[str, int] = {name: number for number, name in enumerate(CAPABILITIES)}

# Docker's default capability set (the bounding, effective and permitted sets of a container).
DOCKER_DEFAULT_CAPS: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def cap_number(name: str) -> int:
    """The number of a capability, given as ``CAP_SYS_ADMIN``, ``SYS_ADMIN`` or ``sys_admin``."""
    key = name.upper()
    if not key.startswith("CAP_"):
        key = "CAP_" + key
    try:
        return CAP_NUMBERS[key]
    except KeyError:
        raise ValueError(f"unknown capability {name!r}") from None


def cap_name(number: int) -> str:
    """The ``CAP_*`` name of a capability number."""
    if 0 <= number < len(CAPABILITIES):
        return CAPABILITIES[number]
    return f"CAP_{number}"


def mask_of(names: Iterable[str]) -> int:
    """The bit mask of a list of capability names."""
    mask = 0
    for name in names:
        mask |= 1 << cap_number(name)
    return mask


def names_of(mask: int) -> list[str]:
    """The names of the capabilities set in ``mask``, in kernel order."""
    return [cap_name(bit) for bit in range(64) if mask >> bit & 1]


def last_cap() -> int:
    """The highest capability number this kernel knows (/proc/sys/kernel/cap_last_cap)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap", "rb") as file:
            return int(file.read())
    except OSError:
        return len(CAPABILITIES) - 1


@dataclass(frozen=True)
class CapSets:
    """The three per-thread capability sets as 64-bit masks."""

    effective: int
    permitted: int
    inheritable: int


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def capget(pid: int = 0) -> CapSets:
    """The capability sets of thread ``pid`` (0: the calling thread)."""
    header = _Header(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_Data * 2)()
    check(libc.syscall(syscall_number("capget"), ctypes.byref(header), data), "capget")
    return CapSets(
        effective=data[0].effective | data[1].effective << 32,
        permitted=data[0].permitted | data[1].permitted << 32,
        inheritable=data[0].inheritable | data[1].inheritable << 32,
    )


def capset(sets: CapSets) -> None:
    """Set the calling thread's effective, permitted and inheritable sets."""
    header = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    for index in (0, 1):
        shift = 32 * index
        data[index].effective = (sets.effective >> shift) & 0xFFFFFFFF
        data[index].permitted = (sets.permitted >> shift) & 0xFFFFFFFF
        data[index].inheritable = (sets.inheritable >> shift) & 0xFFFFFFFF
    check(libc.syscall(syscall_number("capset"), ctypes.byref(header), data), "capset",
          f"effective={','.join(names_of(sets.effective))}")


def bounding_set() -> int:
    """The calling thread's bounding set as a mask (one read instead of 41 prctl calls)."""
    try:
        with open("/proc/thread-self/status", "rb") as file:
            for line in file:
                if line.startswith(b"CapBnd:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    mask = 0
    for number in range(last_cap() + 1):
        if prctl(PR_CAPBSET_READ, number) == 1:
            mask |= 1 << number
    return mask


def drop_bounding(keep: int, current: int | None = None) -> None:
    """Drop from the bounding set every capability not in ``keep`` (needs CAP_SETPCAP).

    ``current`` is the bounding set if the caller has just read it (saves 41 prctl calls).
    """
    if current is None:
        current = bounding_set()
    for number in range(last_cap() + 1):
        if current >> number & 1 and not keep >> number & 1:
            prctl(PR_CAPBSET_DROP, number, label=f"PR_CAPBSET_DROP {cap_name(number)}")


def set_ambient(mask: int) -> None:
    """Make the ambient set exactly ``mask`` (each must be permitted and inheritable)."""
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, label="PR_CAP_AMBIENT_CLEAR_ALL")
    for number in range(last_cap() + 1):
        if mask >> number & 1:
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, number, 0, 0,
                  label=f"PR_CAP_AMBIENT_RAISE {cap_name(number)}")
