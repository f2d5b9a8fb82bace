"""Compile an OCI ``linux.seccomp`` object with libseccomp and install it in this process.

The binding is ctypes over ``libseccomp.so.2``, loaded on first use so that importing this
module costs nothing in processes that never filter.

What the filter does beyond a plain translation of the spec:

- Syscall names this architecture (or this libseccomp) does not know are skipped, as the
  OCI runtimes do, so one profile serves every architecture and kernel.
- When the default action is ``SCMP_ACT_ERRNO``, syscalls numbered above every syscall the
  profile names get ``ENOSYS`` instead of the default errno. A profile cannot name syscalls
  newer than itself, and C libraries fall back to an older syscall only on ``ENOSYS``, so
  without this a new libc inside a container would fail where it should degrade. The check
  is a short classic-BPF prologue put in front of libseccomp's program, which is why the
  filter is exported and loaded with seccomp(2) here rather than with ``seccomp_load``.
- The filter never sets no_new_privs itself: the caller sets it (or holds CAP_SYS_ADMIN).
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import platform
import struct
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from servin.errors import Internal, InvalidArgument

log = logging.getLogger(__name__)

# Action values (the kernel's SECCOMP_RET_* as libseccomp spells them).
_ACT_KILL_THREAD = 0x00000000
_ACT_KILL_PROCESS = 0x80000000
_ACT_TRAP = 0x00030000
_ACT_ERRNO = 0x00050000
_ACT_TRACE = 0x7FF00000
_ACT_LOG = 0x7FFC0000
_ACT_ALLOW = 0x7FFF0000

_COMPARE_OPS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

# seccomp(2) filter flags the OCI spec may name.
_FILTER_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
}

# libseccomp filter attributes (enum scmp_filter_attr).
_ATTR_CTL_NNP = 3

_SECCOMP_SET_MODE_FILTER = 1
_SYSCALL_ARGS = 6
_NR_SCMP_ERROR = -1  # what libseccomp returns for a name it cannot resolve

# Architecture tokens are the kernel's AUDIT_ARCH_* values.
_AUDIT_ARCH_X86_64 = 0xC000003E
_ARCH_X32 = 0x4000003E
_X32_SYSCALL_BIT = 0x40000000


class _ArgCmp(ctypes.Structure):
    """struct scmp_arg_cmp."""

    _fields_ = (
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    )


class _SockFprog(ctypes.Structure):
    """struct sock_fprog, the program handed to seccomp(2)."""

    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


_lib: ctypes.CDLL | None = None
_libc: ctypes.CDLL | None = None


def _libseccomp() -> ctypes.CDLL:
    global _lib
    if _lib is not None:
        return _lib
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as exc:
        raise Internal(f"seccomp: cannot load libseccomp.so.2: {exc}") from exc
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = (ctypes.c_uint32,)
    lib.seccomp_release.restype = None
    lib.seccomp_release.argtypes = (ctypes.c_void_p,)
    lib.seccomp_attr_set.restype = ctypes.c_int
    lib.seccomp_attr_set.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32)
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.argtypes = (ctypes.c_char_p,)
    lib.seccomp_arch_native.restype = ctypes.c_uint32
    lib.seccomp_arch_native.argtypes = ()
    lib.seccomp_arch_add.restype = ctypes.c_int
    lib.seccomp_arch_add.argtypes = (ctypes.c_void_p, ctypes.c_uint32)
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    lib.seccomp_syscall_resolve_name.argtypes = (ctypes.c_char_p,)
    lib.seccomp_syscall_resolve_name_arch.restype = ctypes.c_int
    lib.seccomp_syscall_resolve_name_arch.argtypes = (ctypes.c_uint32, ctypes.c_char_p)
    lib.seccomp_rule_add_array.restype = ctypes.c_int
    lib.seccomp_rule_add_array.argtypes = (
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    )
    lib.seccomp_export_bpf.restype = ctypes.c_int
    lib.seccomp_export_bpf.argtypes = (ctypes.c_void_p, ctypes.c_int)
    _lib = lib
    return lib


def _c_library() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _action(name: Any, errno_ret: Any, where: str) -> int:
    """The libseccomp action value of an OCI action name (with its errnoRet)."""
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        value = errno.EPERM if errno_ret is None else errno_ret
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFF:
            raise InvalidArgument(f"seccomp: {where}: errnoRet must be 0..65535, not {value!r}")
        base = _ACT_ERRNO if name == "SCMP_ACT_ERRNO" else _ACT_TRACE
        return base | value
    if errno_ret is not None:
        raise InvalidArgument(f"seccomp: {where}: errnoRet is only valid with ERRNO or TRACE")
    simple = {
        "SCMP_ACT_ALLOW": _ACT_ALLOW,
        "SCMP_ACT_KILL": _ACT_KILL_THREAD,
        "SCMP_ACT_KILL_THREAD": _ACT_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS": _ACT_KILL_PROCESS,
        "SCMP_ACT_TRAP": _ACT_TRAP,
        "SCMP_ACT_LOG": _ACT_LOG,
    }
    if name == "SCMP_ACT_NOTIFY":
        raise InvalidArgument(f"seccomp: {where}: SCMP_ACT_NOTIFY is not supported")
    if name not in simple:
        raise InvalidArgument(f"seccomp: {where}: unknown action {name!r}")
    return simple[name]


def _arg_conditions(args: Any, where: str) -> list[_ArgCmp]:
    if args is None:
        return []
    if not isinstance(args, list):
        raise InvalidArgument(f"seccomp: {where}: args must be a list")
    conditions = []
    for arg in args:
        if not isinstance(arg, Mapping):
            raise InvalidArgument(f"seccomp: {where}: each arg must be an object")
        index = arg.get("index")
        op = _COMPARE_OPS.get(arg.get("op", ""))
        if not isinstance(index, int) or not 0 <= index < _SYSCALL_ARGS:
            raise InvalidArgument(f"seccomp: {where}: arg index must be 0..5, not {index!r}")
        if op is None:
            raise InvalidArgument(f"seccomp: {where}: unknown arg op {arg.get('op')!r}")
        value, value_two = arg.get("value", 0), arg.get("valueTwo", 0)
        for datum in (value, value_two):
            if not isinstance(datum, int) or not 0 <= datum < 2**64:
                raise InvalidArgument(f"seccomp: {where}: arg values must be u64, not {datum!r}")
        # For SCMP_CMP_MASKED_EQ the spec's value is the mask and valueTwo the expected
        # result, which is libseccomp's (datum_a, datum_b) order too.
        conditions.append(_ArgCmp(index, op, value, value_two))
    return conditions


def _rule_sets(conditions: list[_ArgCmp]) -> list[list[_ArgCmp]]:
    """The libseccomp rules one syscall entry becomes.

    Conditions on distinct arguments form one rule (all must hold). libseccomp cannot put two
    conditions on the same argument in one rule, so when an argument repeats, the OCI
    runtimes' convention applies: every condition becomes a rule of its own (any may hold).
    """
    if not conditions:
        return [[]]
    indexes = [c.arg for c in conditions]
    if len(set(indexes)) == len(indexes):
        return [conditions]
    return [[c] for c in conditions]


class _Filter:
    """A libseccomp context under construction, released on close."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        if not isinstance(spec, Mapping):
            raise InvalidArgument("seccomp: the spec must be an object")
        self.lib = _libseccomp()
        self.default_action = _action(
            spec.get("defaultAction"), spec.get("defaultErrnoRet"), "defaultAction"
        )
        self.flags = self._flags(spec.get("flags"))
        if spec.get("listenerPath"):
            raise InvalidArgument("seccomp: listenerPath (user notification) is not supported")
        ctx = self.lib.seccomp_init(self.default_action)
        if not ctx:
            raise Internal("seccomp: seccomp_init failed")
        self.ctx: int = ctx
        try:
            # The caller decides about no_new_privs; libseccomp must not set it behind us.
            self._check(self.lib.seccomp_attr_set(ctx, _ATTR_CTL_NNP, 0), "seccomp_attr_set")
            self.arches = [int(self.lib.seccomp_arch_native())]
            self._add_architectures(spec.get("architectures") or [])
            self.names: set[str] = set()
            for i, entry in enumerate(spec.get("syscalls") or []):
                self._add_entry(entry, f"syscalls[{i}]")
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _flags(flags: Any) -> int:
        value = 0
        for flag in flags or []:
            if flag not in _FILTER_FLAGS:
                raise InvalidArgument(f"seccomp: unsupported flag {flag!r}")
            value |= _FILTER_FLAGS[flag]
        return value

    @staticmethod
    def _check(rc: int, what: str) -> None:
        if rc < 0:
            raise Internal(f"seccomp: {what}: {os.strerror(-rc)}")

    def _add_architectures(self, names: Iterable[Any]) -> None:
        for name in names:
            if not isinstance(name, str) or not name.startswith("SCMP_ARCH_"):
                raise InvalidArgument(f"seccomp: unknown architecture {name!r}")
            token = self.lib.seccomp_arch_resolve_name(name[len("SCMP_ARCH_") :].lower().encode())
            if token == 0:
                raise InvalidArgument(f"seccomp: unknown architecture {name!r}")
            rc = self.lib.seccomp_arch_add(self.ctx, token)
            if rc == -errno.EEXIST:
                continue
            self._check(rc, f"adding architecture {name}")
            self.arches.append(int(token))

    def _add_entry(self, entry: Any, where: str) -> None:
        if not isinstance(entry, Mapping):
            raise InvalidArgument(f"seccomp: {where} must be an object")
        names = entry.get("names") or ([entry["name"]] if entry.get("name") else [])
        if not names or not all(isinstance(n, str) and n for n in names):
            raise InvalidArgument(f"seccomp: {where}: names must be a non-empty list of names")
        action = _action(entry.get("action"), entry.get("errnoRet"), where)
        rules = _rule_sets(_arg_conditions(entry.get("args"), where))
        for name in names:
            self.names.add(name)
            if action == self.default_action:
                continue  # libseccomp refuses rules that repeat the default action
            number = self.lib.seccomp_syscall_resolve_name(name.encode())
            if number == _NR_SCMP_ERROR:
                log.debug("seccomp: skipping syscall %s: unknown on this architecture", name)
                continue
            for conditions in rules:
                array = (_ArgCmp * len(conditions))(*conditions) if conditions else None
                rc = self.lib.seccomp_rule_add_array(
                    self.ctx, action, number, len(conditions), array
                )
                if rc < 0 and number < 0:
                    # A syscall of another architecture (a negative pseudo number) that none
                    # of this filter's architectures has: nothing to filter.
                    log.debug("seccomp: skipping syscall %s: %s", name, os.strerror(-rc))
                    continue
                self._check(rc, f"{where}: adding a rule for {name}")

    def export(self) -> bytes:
        """libseccomp's classic-BPF program for the context."""
        fd = os.memfd_create("servin-seccomp", os.MFD_CLOEXEC)
        try:
            self._check(self.lib.seccomp_export_bpf(self.ctx, fd), "seccomp_export_bpf")
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def newest_known(self, arch: int) -> int | None:
        """The highest syscall number of ``arch`` that the profile names, if any."""
        numbers = [
            self.lib.seccomp_syscall_resolve_name_arch(arch, name.encode()) for name in self.names
        ]
        real = [n for n in numbers if n >= 0]
        return max(real) if real else None

    def close(self) -> None:
        if self.ctx:
            self.lib.seccomp_release(self.ctx)
            self.ctx = 0


# Classic BPF opcodes used by the ENOSYS prologue.
_BPF_LD_W_ABS = 0x20
_BPF_JMP_JA = 0x05
_BPF_JEQ_K = 0x15
_BPF_JGT_K = 0x25
_BPF_JSET_K = 0x45
_BPF_RET_K = 0x06
_DATA_NR = 0  # offsetof(struct seccomp_data, nr)
_DATA_ARCH = 4  # offsetof(struct seccomp_data, arch)


# A prologue instruction before assembly: jump targets may be label names, and a bare string
# in the list is a label naming the instruction that follows it.
_Insn = tuple[int, int | str, int | str, int]


def _assemble(code: list[_Insn | str]) -> list[tuple[int, int, int, int]]:
    """Resolve label jumps into classic-BPF relative offsets."""
    labels: dict[str, int] = {}
    real: list[_Insn] = []
    for item in code:
        if isinstance(item, str):
            labels[item] = len(real)
        else:
            real.append(item)
    out = []
    for pos, (op, jt, jf, k) in enumerate(real):
        offsets = []
        for target in (jt, jf):
            offset = labels[target] - pos - 1 if isinstance(target, str) else target
            if not 0 <= offset <= 255:
                raise Internal("seccomp: ENOSYS prologue jump out of range")
            offsets.append(offset)
        if op == _BPF_JMP_JA:
            out.append((op, 0, 0, offsets[0]))  # an unconditional jump keeps its distance in k
        else:
            out.append((op, offsets[0], offsets[1], k & 0xFFFFFFFF))
    return out


def _enosys_prologue(filt: _Filter) -> list[tuple[int, int, int, int]]:
    """Instructions that answer ENOSYS to syscalls newer than any the profile names.

    Layout: load the arch; per known arch, if it matches, load the number and jump to
    ENOSYS when it is above the newest named one; everything else falls to PASS, which
    steps over the ENOSYS return into libseccomp's own program.
    """
    limits = {}
    for arch in filt.arches:
        if arch == _ARCH_X32:
            continue  # x32 numbering has holes; libseccomp's program alone decides there
        newest = filt.newest_known(arch)
        if newest is not None:
            limits[arch] = newest
    if not limits:
        return []
    code: list[_Insn | str] = [(_BPF_LD_W_ABS, 0, 0, _DATA_ARCH)]
    for i, (arch, newest) in enumerate(limits.items()):
        code.append((_BPF_JEQ_K, 0, f"next{i}", arch))
        code.append((_BPF_LD_W_ABS, 0, 0, _DATA_NR))
        if arch == _AUDIT_ARCH_X86_64:
            # x32 syscalls arrive with the x86_64 arch value and bit 30 set in the number.
            code.append((_BPF_JSET_K, "pass", 0, _X32_SYSCALL_BIT))
        code.append((_BPF_JGT_K, "enosys", 0, newest))
        code.append((_BPF_JMP_JA, "pass", 0, 0))
        code.append(f"next{i}")
    code += [
        "pass",
        (_BPF_JMP_JA, 1, 0, 0),
        "enosys",
        (_BPF_RET_K, 0, 0, _ACT_ERRNO | errno.ENOSYS),
    ]
    return _assemble(code)


def _program(spec: Mapping[str, Any]) -> tuple[bytes, int]:
    filt = _Filter(spec)
    try:
        program = filt.export()
        prologue: list[tuple[int, int, int, int]] = []
        if filt.default_action & 0xFFFF0000 == _ACT_ERRNO:
            prologue = _enosys_prologue(filt)
        head = b"".join(struct.pack("=HBBI", *insn) for insn in prologue)
        return head + program, filt.flags
    finally:
        filt.close()


def compile_filter(spec: Mapping[str, Any]) -> bytes:
    """Compile an OCI ``linux.seccomp`` object to the classic-BPF program ``load_filter`` installs.

    The result is an array of ``struct sock_filter`` (8 bytes each, native byte order).
    Raises ``InvalidArgument`` for a malformed spec.
    """
    return _program(spec)[0]


def program_for(spec: Mapping[str, Any], cache_dir: Path | None = None) -> tuple[bytes, int]:
    """The compiled program and filter flags of ``spec``, from a cache when possible.

    Compiling a full profile with libseccomp costs 20-30 ms, more than the rest of a
    container's start; the same profile compiles to the same program on the same machine and
    libseccomp, so programs are kept in memory and, with ``cache_dir``, on disk (written
    atomically; a damaged entry is recompiled). An entry is keyed by the profile's canonical
    JSON, compared in full on every hit, so two profiles never share one; the file name is a
    CRC of that key. (No hashlib: importing it loads OpenSSL, about 10 ms in every
    container's setup process.)
    """
    key = json.dumps([spec, platform.machine(), _libseccomp_version()], sort_keys=True,
                     default=str).encode()
    cached = _PROGRAMS.get(key)
    if cached is not None:
        return cached
    path = (cache_dir / f"{zlib.crc32(key):08x}-{len(key)}.bpf"
            if cache_dir is not None else None)
    if path is not None:
        try:
            data = path.read_bytes()
            flags, size = struct.unpack_from("<II", data)
            program = data[8 + size:]
            if data[8:8 + size] == key and program and len(program) % 8 == 0:
                _PROGRAMS[key] = (program, flags)
                return program, flags
        except (OSError, ValueError, struct.error):
            pass
    program, flags = _program(spec)
    _PROGRAMS[key] = (program, flags)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(struct.pack("<II", flags, len(key)) + key + program)
            os.replace(tmp, path)
        except OSError:
            pass  # a cache that cannot be written only costs time
    return program, flags


_PROGRAMS: dict[bytes, tuple[bytes, int]] = {}


_VERSION: list[str] = []  # libseccomp's version, once known


def _libseccomp_version() -> str:
    if _VERSION:
        return _VERSION[0]
    try:
        lib = _libseccomp()
        lib.seccomp_version.restype = ctypes.POINTER(ctypes.c_uint * 3)
        major, minor, micro = lib.seccomp_version().contents
        version = f"{major}.{minor}.{micro}"
    except (OSError, AttributeError):
        return "unknown"
    _VERSION.append(version)
    return version


def preload() -> None:
    """Load libseccomp and learn its version now (the monitor zygote does it once, so no
    container's creation pays for the library load)."""
    _libseccomp_version()


def load_filter(spec: Mapping[str, Any]) -> None:
    """Compile an OCI ``linux.seccomp`` object and install it in the calling process.

    The caller must have set no_new_privs (or hold CAP_SYS_ADMIN). Everything the process
    does afterwards is filtered, so call this as the last step before execve. With the
    ``SECCOMP_FILTER_FLAG_TSYNC`` flag every thread gets the filter, otherwise only the
    calling thread (and what it later forks or execs).
    """
    load_program(*_program(spec))


def load_program(program: bytes, flags: int) -> None:
    """Install an already compiled program (see ``program_for``) in the calling process."""
    count = len(program) // 8
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(count, ctypes.addressof(buffer))
    nr = _libseccomp().seccomp_syscall_resolve_name(b"seccomp")
    if nr < 0:
        raise Internal("seccomp: no seccomp syscall on this architecture")
    libc = _c_library()
    libc.syscall.restype = ctypes.c_long
    rc = libc.syscall(
        ctypes.c_long(nr),
        ctypes.c_ulong(_SECCOMP_SET_MODE_FILTER),
        ctypes.c_ulong(flags),
        ctypes.byref(fprog),
    )
    if rc < 0:
        err = ctypes.get_errno()
        raise Internal(f"seccomp: installing the filter failed: {os.strerror(err)}")
    if rc > 0:
        raise Internal(f"seccomp: thread {rc} could not be synchronised to the filter")
