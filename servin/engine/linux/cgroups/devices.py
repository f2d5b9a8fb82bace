"""Device access rules: OCI ``linux.resources.devices`` for both cgroup versions.

cgroup v1 has a ``devices`` controller that takes the rules as text. cgroup v2 has none:
the kernel asks a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup instead, so
for v2 this module assembles that program (eBPF, by hand: a handful of instructions per
rule) and attaches it with bpf(2).

The OCI list is read in order with the last matching rule deciding, which is how the v1
controller behaves when the list starts with a deny-all (the usual case). A device no rule
matches is allowed, as in a fresh v1 cgroup.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servin.errors import Internal, InvalidArgument

_ACCESS_BITS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE
_TYPE_CODES = {"b": 1, "c": 2}  # BPF_DEVCG_DEV_BLOCK, _CHAR


@dataclass(frozen=True)
class DeviceRule:
    """One rule: ``major``/``minor`` None means any; ``type`` "a" means any type."""

    allow: bool
    type: str = "a"
    major: int | None = None
    minor: int | None = None
    access: str = "rwm"

    def v1_line(self) -> str:
        """The rule as devices.allow / devices.deny take it."""
        if self.type == "a":
            return "a"
        major = "*" if self.major is None else str(self.major)
        minor = "*" if self.minor is None else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"

    @property
    def access_bits(self) -> int:
        bits = 0
        for char in self.access:
            bits |= _ACCESS_BITS[char]
        return bits


def parse_rules(entries: Iterable[Mapping[str, Any]]) -> list[DeviceRule]:
    """Validate OCI device entries into rules."""
    rules = []
    for i, entry in enumerate(entries):
        where = f"resources.devices[{i}]"
        allow = entry.get("allow")
        if not isinstance(allow, bool):
            raise InvalidArgument(f"{where}.allow must be true or false")
        kind = entry.get("type") or "a"
        if kind not in ("a", "b", "c"):
            raise InvalidArgument(f"{where}.type must be a, b or c, not {kind!r}")
        numbers: list[int | None] = []
        for key in ("major", "minor"):
            value = entry.get(key)
            if value is None or value == -1:
                numbers.append(None)
            elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                numbers.append(value)
            else:
                raise InvalidArgument(f"{where}.{key} must be a device number, not {value!r}")
        access = entry.get("access") or "rwm"
        if not isinstance(access, str) or set(access) - set("rwm"):
            raise InvalidArgument(f"{where}.access must use only r, w and m, not {access!r}")
        # Keep a canonical order so equal rules compare equal.
        access = "".join(c for c in "rwm" if c in access)
        rules.append(DeviceRule(allow, kind, numbers[0], numbers[1], access))
    return rules


# --- eBPF assembly --------------------------------------------------------------------------

_LDX_MEM_W = 0x61
_ALU32_AND_K = 0x54
_ALU32_RSH_K = 0x74
_ALU32_MOV_X = 0xBC
_ALU64_MOV_K = 0xB7
_JMP_JEQ_K = 0x15
_JMP_JNE_K = 0x55
_JMP_EXIT = 0x95

# Registers: r1 holds the context (struct bpf_cgroup_dev_ctx: access_type, major, minor);
# the prologue unpacks it into r2 (device type), r3 (access), r4 (major), r5 (minor).
_R0, _R1, _R2, _R3, _R4, _R5, _R6 = range(7)


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    # struct bpf_insn keeps dst_reg in the low nibble on little-endian machines.
    regs = (src << 4 | dst) if sys.byteorder == "little" else (dst << 4 | src)
    return struct.pack("=BBhi", code, regs, off, imm)


def _rule_block(rule: DeviceRule) -> list[bytes]:
    """Instructions that return the rule's verdict when it matches, else fall through."""
    # Each test: (jump-if-no-match op, register, immediate, access mask to apply first).
    tests: list[tuple[int, int, int, int | None]] = []
    if rule.type != "a":
        tests.append((_JMP_JNE_K, _R2, _TYPE_CODES[rule.type], None))
    bits = rule.access_bits
    if bits != 0b111:
        # An allow rule matches when every requested access is in it; a deny rule when any
        # requested access is in it (denying "w" must also stop a read-write open).
        if rule.allow:
            tests.append((_JMP_JNE_K, _R6, 0, ~bits & 0b111))
        else:
            tests.append((_JMP_JEQ_K, _R6, 0, bits))
    if rule.major is not None:
        tests.append((_JMP_JNE_K, _R4, rule.major, None))
    if rule.minor is not None:
        tests.append((_JMP_JNE_K, _R5, rule.minor, None))
    # Lay the tests out and give each jump the distance to the end of the block.
    body: list[tuple[int, int, int, int]] = []  # (code, dst, src, imm)
    for jump, reg, imm, mask in tests:
        if mask is not None:
            body.append((_ALU32_MOV_X, _R6, _R3, 0))
            body.append((_ALU32_AND_K, _R6, 0, mask))
        body.append((jump, reg, 0, imm))
    verdict = [_insn(_ALU64_MOV_K, _R0, imm=1 if rule.allow else 0), _insn(_JMP_EXIT)]
    out = []
    for pos, (code, dst, src, imm) in enumerate(body):
        if code in (_JMP_JNE_K, _JMP_JEQ_K):
            skip = len(body) - pos - 1 + len(verdict)
            out.append(_insn(code, dst, off=skip, imm=imm))
        else:
            out.append(_insn(code, dst, src, imm=imm))
    return out + verdict


def build_program(rules: list[DeviceRule]) -> bytes:
    """The eBPF device program for ``rules`` (last matching rule wins, default allow)."""
    code = [
        _insn(_LDX_MEM_W, _R2, _R1, 0),
        _insn(_ALU32_AND_K, _R2, imm=0xFFFF),
        _insn(_LDX_MEM_W, _R3, _R1, 0),
        _insn(_ALU32_RSH_K, _R3, imm=16),
        _insn(_LDX_MEM_W, _R4, _R1, 4),
        _insn(_LDX_MEM_W, _R5, _R1, 8),
    ]
    for rule in reversed(rules):
        block = _rule_block(rule)
        code.extend(block)
        if len(block) == 2:
            # A rule matching everything (the usual leading deny-all) decides alone; the
            # verifier refuses the unreachable code that would follow it.
            return b"".join(code)
    code += [_insn(_ALU64_MOV_K, _R0, imm=1), _insn(_JMP_EXIT)]
    return b"".join(code)


# --- bpf(2) ---------------------------------------------------------------------------------

_BPF_SYSCALL = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
_BPF_PROG_LOAD = 5
_BPF_PROG_ATTACH = 8
_BPF_PROG_DETACH = 9
_BPF_PROG_GET_FD_BY_ID = 13
_BPF_PROG_QUERY = 16
_BPF_PROG_TYPE_CGROUP_DEVICE = 15
_BPF_CGROUP_DEVICE = 6
_BPF_F_ALLOW_MULTI = 2
_ATTR_SIZE = 128

_libc: ctypes.CDLL | None = None


def _bpf(command: int, attr: ctypes.Array[ctypes.c_char], what: str) -> int:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    number = _BPF_SYSCALL.get(platform.machine())
    if number is None:
        raise Internal(f"device cgroup: bpf(2) number unknown on {platform.machine()}")
    rc = _libc.syscall(ctypes.c_long(number), ctypes.c_int(command), attr, ctypes.c_uint(len(attr)))
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return int(rc)


def _load(program: bytes) -> int:
    insns = ctypes.create_string_buffer(program, len(program))
    license_text = ctypes.create_string_buffer(b"Apache-2.0")
    log_buf = ctypes.create_string_buffer(1 << 16)
    for log_level in (0, 1):  # retry with the verifier's log to explain a refusal
        attr = ctypes.create_string_buffer(_ATTR_SIZE)
        struct.pack_into(
            "=IIQQII", attr, 0, _BPF_PROG_TYPE_CGROUP_DEVICE, len(program) // 8,
            ctypes.addressof(insns), ctypes.addressof(license_text), log_level,
            len(log_buf) if log_level else 0,
        )  # fmt: skip
        if log_level:
            struct.pack_into("=Q", attr, 32, ctypes.addressof(log_buf))
        try:
            return _bpf(_BPF_PROG_LOAD, attr, "loading the device program")
        except OSError as exc:
            if log_level:
                verifier = log_buf.value.decode(errors="replace").strip()
                raise Internal(f"{exc.strerror}; verifier says: {verifier[-500:]}") from exc
    raise AssertionError("unreachable")


def attached_programs(cgroup_dir: Path) -> list[int]:
    """IDs of the device programs attached to a cgroup v2 directory."""
    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _query(fd)
    finally:
        os.close(fd)


def _query(cgroup_fd: int) -> list[int]:
    ids = (ctypes.c_uint32 * 64)()
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("=IIIIQI", attr, 0, cgroup_fd, _BPF_CGROUP_DEVICE, 0, 0,
                     ctypes.addressof(ids), len(ids))  # fmt: skip
    _bpf(_BPF_PROG_QUERY, attr, "querying device programs")
    count = struct.unpack_from("=I", attr, 24)[0]
    return list(ids[: min(count, len(ids))])


def _attach_or_detach(command: int, cgroup_fd: int, prog_fd: int, flags: int) -> None:
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("=IIII", attr, 0, cgroup_fd, prog_fd, _BPF_CGROUP_DEVICE, flags)
    what = "attaching" if command == _BPF_PROG_ATTACH else "detaching"
    _bpf(command, attr, f"{what} the device program")


def _fd_by_id(prog_id: int) -> int:
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("=I", attr, 0, prog_id)
    return _bpf(_BPF_PROG_GET_FD_BY_ID, attr, f"opening device program {prog_id}")


def apply_v2(cgroup_dir: Path, rules: list[DeviceRule]) -> None:
    """Attach the device program for ``rules`` to a cgroup v2 directory, replacing ours.

    The new program is attached before the old ones are detached: while both are attached
    the kernel requires both to allow, so access never widens during the swap.
    """
    program = build_program(rules)
    try:
        cgroup_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise Internal(f"device cgroup: cannot open {cgroup_dir}: {exc.strerror}") from exc
    try:
        old = _query(cgroup_fd)
        prog_fd = _load(program)
        try:
            _attach_or_detach(_BPF_PROG_ATTACH, cgroup_fd, prog_fd, _BPF_F_ALLOW_MULTI)
        finally:
            os.close(prog_fd)
        for prog_id in old:
            old_fd = _fd_by_id(prog_id)
            try:
                _attach_or_detach(_BPF_PROG_DETACH, cgroup_fd, old_fd, 0)
            finally:
                os.close(old_fd)
    except OSError as exc:
        raise Internal(f"device cgroup {cgroup_dir}: {exc.strerror}") from exc
    finally:
        os.close(cgroup_fd)
