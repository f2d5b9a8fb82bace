"""mount(2), umount2(2), pivot_root(2), mount_setattr(2) and the OCI mount option vocabulary."""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, field

from servin.engine.linux.syscalls import check, fsencode, has_symbol, libc, syscall_number

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_POSIXACL = 1 << 16
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MS_PROPAGATION = MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE

MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

# mount_setattr(2) attributes, used for the recursive ("rro", "rnosuid", ...) options.
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000
AT_RECURSIVE = 0x8000
AT_EMPTY_PATH = 0x1000

# OCI option -> (flags it sets, flags it clears).
_FLAG_OPTIONS: dict[str, tuple[int, int]] = {
    "ro": (MS_RDONLY, 0), "rw": (0, MS_RDONLY),
    "nosuid": (MS_NOSUID, 0), "suid": (0, MS_NOSUID),
    "nodev": (MS_NODEV, 0), "dev": (0, MS_NODEV),
    "noexec": (MS_NOEXEC, 0), "exec": (0, MS_NOEXEC),
    "sync": (MS_SYNCHRONOUS, 0), "async": (0, MS_SYNCHRONOUS),
    "dirsync": (MS_DIRSYNC, 0),
    "remount": (MS_REMOUNT, 0),
    "mand": (MS_MANDLOCK, 0), "nomand": (0, MS_MANDLOCK),
    "noatime": (MS_NOATIME, 0), "atime": (0, MS_NOATIME),
    "nodiratime": (MS_NODIRATIME, 0), "diratime": (0, MS_NODIRATIME),
    "relatime": (MS_RELATIME, 0), "norelatime": (0, MS_RELATIME),
    "strictatime": (MS_STRICTATIME, 0), "nostrictatime": (0, MS_STRICTATIME),
    "lazytime": (MS_LAZYTIME, 0), "nolazytime": (0, MS_LAZYTIME),
    "iversion": (MS_I_VERSION, 0), "noiversion": (0, MS_I_VERSION),
    "silent": (MS_SILENT, 0), "loud": (0, MS_SILENT),
    "nosymfollow": (MS_NOSYMFOLLOW, 0), "symfollow": (0, MS_NOSYMFOLLOW),
    "bind": (MS_BIND, 0),
    "rbind": (MS_BIND | MS_REC, 0),
}

PROPAGATION_OPTIONS: dict[str, int] = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}

# Recursive attribute options (runtime-spec 1.1): option -> (attr_set, attr_clr).
_RECURSIVE_OPTIONS: dict[str, tuple[int, int]] = {
    "rro": (MOUNT_ATTR_RDONLY, 0), "rrw": (0, MOUNT_ATTR_RDONLY),
    "rnosuid": (MOUNT_ATTR_NOSUID, 0), "rsuid": (0, MOUNT_ATTR_NOSUID),
    "rnodev": (MOUNT_ATTR_NODEV, 0), "rdev": (0, MOUNT_ATTR_NODEV),
    "rnoexec": (MOUNT_ATTR_NOEXEC, 0), "rexec": (0, MOUNT_ATTR_NOEXEC),
    "rnoatime": (MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME),
    "rstrictatime": (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME),
    "rnodiratime": (MOUNT_ATTR_NODIRATIME, 0), "rdiratime": (0, MOUNT_ATTR_NODIRATIME),
    "rnosymfollow": (MOUNT_ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, MOUNT_ATTR_NOSYMFOLLOW),
}

# Options other runtimes accept that change nothing here (runc's copy-up extensions).
_IGNORED_OPTIONS = frozenset({"tmpcopyup", "notmpcopyup", "defaults"})

# statvfs f_flag bits (ST_*) -> MS_* flags, to keep a mount's flags across a bind remount.
_STATVFS_FLAGS = {
    os.ST_RDONLY: MS_RDONLY, os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV,
    os.ST_NOEXEC: MS_NOEXEC, os.ST_NOATIME: MS_NOATIME, os.ST_NODIRATIME: MS_NODIRATIME,
    os.ST_RELATIME: MS_RELATIME,
}


@dataclass
class MountOptions:
    """OCI mount options split into mount(2) flags, propagation, fs data and recursive attrs."""

    flags: int = 0
    propagation: list[int] = field(default_factory=list)
    data: str = ""
    recursive_set: int = 0
    recursive_clear: int = 0

    @property
    def is_bind(self) -> bool:
        """Whether this is a bind (or rbind) mount."""
        return bool(self.flags & MS_BIND)


def parse_options(options: list[str]) -> MountOptions:
    """Split OCI ``mounts[].options`` into flags, propagation changes and filesystem data."""
    result = MountOptions()
    data: list[str] = []
    for option in options:
        if option in _FLAG_OPTIONS:
            set_flags, clear_flags = _FLAG_OPTIONS[option]
            result.flags = (result.flags | set_flags) & ~clear_flags
        elif option in PROPAGATION_OPTIONS:
            result.propagation.append(PROPAGATION_OPTIONS[option])
        elif option in _RECURSIVE_OPTIONS:
            attr_set, attr_clear = _RECURSIVE_OPTIONS[option]
            result.recursive_set = (result.recursive_set | attr_set) & ~attr_clear
            result.recursive_clear = (result.recursive_clear | attr_clear) & ~attr_set
        elif option in _IGNORED_OPTIONS:
            continue
        else:
            data.append(option)
    result.data = ",".join(data)
    return result


libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                       ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0,
          data: str | None = None, *, label: str | None = None) -> None:
    """mount(2). ``label`` names the target in errors when ``target`` is a /proc/self/fd link."""
    result = libc.mount(
        fsencode(source) if source is not None else None,
        fsencode(target),
        fstype.encode() if fstype else None,
        flags,
        data.encode() if data else None,
    )
    if result == -1:
        kind = "bind" if flags & MS_BIND else (fstype or "remount")
        check(result, f"mount {kind} {source or ''}".rstrip(), f"on {label or target}")


def umount(target: str, flags: int = 0) -> None:
    """umount2(2)."""
    check(libc.umount2(fsencode(target), flags), "umount", target)


AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_NO_AUTOMOUNT = 0x800
STATX_TYPE = 0x1
STATX_ATTR_MOUNT_ROOT = 0x2000
_STATX_SIZE = 256  # struct statx, padded
_STATX_ATTRIBUTES = slice(8, 16)  # u64 stx_attributes
_STATX_ATTRIBUTES_MASK = slice(56, 64)  # u64 stx_attributes_mask


def is_mount_root(path: str) -> bool | None:
    """Whether ``path`` (not followed if a symlink) is the root of a mount, from statx(2);
    None when this kernel or libc cannot tell (then only the mount table can).

    A few microseconds, where reading /proc/self/mountinfo costs milliseconds on a host with
    hundreds of mounts (the kernel formats every line).
    """
    try:
        fn = libc.statx
    except AttributeError:
        return None
    buf = ctypes.create_string_buffer(_STATX_SIZE)
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_char_p]
    result = fn(AT_FDCWD, fsencode(path), AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_TYPE, buf)
    check(result, "statx", path)
    raw = buf.raw
    if not int.from_bytes(raw[_STATX_ATTRIBUTES_MASK], "little") & STATX_ATTR_MOUNT_ROOT:
        return None  # before Linux 5.8
    return bool(int.from_bytes(raw[_STATX_ATTRIBUTES], "little") & STATX_ATTR_MOUNT_ROOT)


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2): make ``new_root`` the root mount and move the old root to ``put_old``."""
    if has_symbol("pivot_root"):
        fn = libc.pivot_root
        fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        result = fn(fsencode(new_root), fsencode(put_old))
    else:
        result = libc.syscall(syscall_number("pivot_root"), fsencode(new_root), fsencode(put_old))
    check(result, "pivot_root", new_root)


def set_propagation(target: str, propagation: int, *, label: str | None = None) -> None:
    """Change a mount's propagation type (MS_PRIVATE, MS_SLAVE, ... optionally | MS_REC)."""
    check(libc.mount(None, fsencode(target), None, propagation, None),
          "mount (propagation)", label or target)


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr_recursive(target: str, attr_set: int, attr_clear: int,
                            *, label: str | None = None) -> None:
    """mount_setattr(2) with AT_RECURSIVE: change attributes of a mount and all below it."""
    attr = _MountAttr(attr_set, attr_clear, 0, 0)
    fn = libc.mount_setattr
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint, ctypes.c_void_p, ctypes.c_size_t]
    result = fn(-100, fsencode(target), AT_RECURSIVE, ctypes.byref(attr), ctypes.sizeof(attr))
    check(result, "mount_setattr", label or target)


def current_flags(path: str) -> int:
    """The MS_* flags the mount at ``path`` has now (for a bind remount that keeps them)."""
    f_flag = os.statvfs(path).f_flag
    return sum(ms for st, ms in _STATVFS_FLAGS.items() if f_flag & st)


def remount_bind(target: str, flags: int, *, label: str | None = None) -> None:
    """Remount a bind mount with new per-mount flags, keeping the ones it already has.

    The kernel refuses to clear nosuid/nodev/noexec that a mount already carries when the
    caller lacks privilege over it, so the existing flags are merged in.
    """
    keep = current_flags(target) & ~MS_RDONLY
    mount(None, target, None, MS_BIND | MS_REMOUNT | keep | flags, None, label=label)
