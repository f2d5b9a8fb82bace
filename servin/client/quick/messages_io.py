"""The messages of the quick front's ``logs``, ``stats`` and ``exec``, without the protobuf
runtime: each message's field table written once (a test checks every table against the
generated descriptors), requests encoded from keyword values, replies decoded into small
objects whose attribute names are the generated classes' (so the shared formatting code in
``servin.cli.logwrite``, ``statsview`` and ``execout`` works on both).

Protobuf's wire format (varints, zigzag-free int32/int64 as 64-bit two's complement, length-
delimited bytes, packed repeated scalars, maps as repeated key/value entries) is small
enough to write here; defaults are protobuf's (zero, empty, False).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

# A field: (number, name, kind). Kinds: scalar type names as in .proto, "timestamp",
# "map" (map<string, string>), or a message table's name; "repeated " in front for lists.
Field = tuple[int, str, str]

TIMESTAMP: tuple[Field, ...] = ((1, "seconds", "int64"), (2, "nanos", "int32"))

TABLES: dict[str, tuple[Field, ...]] = {
    "ContainerLogsRequest": (
        (1, "id", "string"), (2, "follow", "bool"), (3, "stdout", "bool"),
        (4, "stderr", "bool"), (5, "tail", "int64"), (6, "since", "timestamp"),
        (7, "until", "timestamp"), (8, "timestamps", "bool"), (9, "details", "bool"),
    ),
    "LogChunk": (
        (1, "data", "bytes"), (2, "sizes", "repeated uint32"), (3, "streams", "bytes"),
        (4, "times", "repeated int64"), (5, "container_id", "string"), (6, "attrs", "map"),
    ),
    "StatsRequest": (
        (1, "ids", "repeated string"), (2, "stream", "bool"), (3, "interval_ms", "uint32"),
    ),
    "ContainerStats": (
        (1, "id", "string"), (2, "name", "string"), (3, "read", "timestamp"),
        (4, "cpu_percent", "double"), (5, "cpu_total_ns", "uint64"),
        (6, "memory_usage", "uint64"), (7, "memory_limit", "uint64"),
        (8, "memory_percent", "double"), (9, "net_rx", "uint64"), (10, "net_tx", "uint64"),
        (11, "block_read", "uint64"), (12, "block_write", "uint64"), (13, "pids", "uint64"),
        (14, "online_cpus", "uint32"),
    ),
    "StatsBatch": ((1, "stats", "repeated ContainerStats"),),
    "ExecCreateRequest": (
        (1, "container_id", "string"), (2, "cmd", "repeated string"),
        (3, "env", "repeated string"), (4, "user", "string"), (5, "working_dir", "string"),
        (6, "tty", "bool"), (7, "attach_stdin", "bool"), (8, "attach_stdout", "bool"),
        (9, "attach_stderr", "bool"), (10, "privileged", "bool"),
        (11, "detach_keys", "string"),
    ),
    "ExecCreateResponse": ((1, "id", "string"),),
    "ExecInput": (
        (1, "exec_id", "string"), (2, "detach", "bool"), (3, "data", "bytes"),
        (4, "rows", "uint32"), (5, "cols", "uint32"), (6, "close_stdin", "bool"),
    ),
    "AttachOutput": (
        (1, "stream", "int32"), (2, "data", "bytes"), (3, "exited", "bool"),
        (4, "exit_code", "int32"), (5, "detached", "bool"),
    ),
    "ExecInspectRequest": ((1, "exec_id", "string"),),
    "ExecDetail": (
        (1, "id", "string"), (2, "container_id", "string"), (3, "running", "bool"),
        (4, "exit_code", "int32"), (5, "pid", "int32"), (6, "cmd", "repeated string"),
        (7, "tty", "bool"),
    ),
}

_VARINT = frozenset({"int32", "int64", "uint32", "uint64", "bool"})
_DEFAULTS: dict[str, Any] = {"string": "", "bytes": b"", "bool": False, "double": 0.0}


# -- encoding --------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int32/int64 negatives: ten bytes, as protobuf writes them
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _tag(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _delimited(number: int, data: bytes) -> bytes:
    return _tag(number, 2) + _varint(len(data)) + data


def _scalar(number: int, kind: str, value: Any) -> bytes:
    if kind in _VARINT:
        return _tag(number, 0) + _varint(int(value))
    if kind == "string":
        return _delimited(number, value.encode())
    if kind == "bytes":
        return _delimited(number, bytes(value))
    if kind == "double":
        return _tag(number, 1) + struct.pack("<d", value)
    if kind == "timestamp":  # value: nanoseconds since the epoch
        seconds, nanos = divmod(int(value), 1_000_000_000)
        return _delimited(number, encode("Timestamp", seconds=seconds, nanos=nanos))
    raise TypeError(f"cannot encode a {kind} field")


def encode(message: str, **values: Any) -> bytes:
    """Message ``message`` with the given field values (unset and default ones left out, as
    protobuf does; a timestamp field takes nanoseconds)."""
    table = TIMESTAMP if message == "Timestamp" else TABLES[message]
    given = set(values)
    out = []
    for number, name, kind in table:
        if name not in given:
            continue
        given.discard(name)
        value = values[name]
        if kind.startswith("repeated "):
            out.extend(_scalar(number, kind[9:], item) for item in value)
        elif value:
            out.append(_scalar(number, kind, value))
    if given:
        raise TypeError(f"{message} has no field {sorted(given)[0]!r}")
    return b"".join(out)


# -- decoding --------------------------------------------------------------------------------


class Timestamp:
    """A decoded ``google.protobuf.Timestamp``."""

    __slots__ = ("nanos", "seconds")

    def __init__(self, seconds: int = 0, nanos: int = 0) -> None:
        self.seconds = seconds
        self.nanos = nanos

    def ToNanoseconds(self) -> int:
        """Nanoseconds since the epoch."""
        return self.seconds * 1_000_000_000 + self.nanos


class Message:
    """A decoded message: its fields as attributes (protobuf's defaults when absent)."""

    TYPE = ""

    def __repr__(self) -> str:
        return f"{self.TYPE}({self.__dict__!r})"


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _signed(n: int, bits: int) -> int:
    n &= (1 << bits) - 1
    return n - (1 << bits) if n >> (bits - 1) else n


def _packed(data: bytes, kind: str) -> list[int]:
    out = []
    pos = 0
    while pos < len(data):
        n, pos = _read_varint(data, pos)
        out.append(_signed(n, 64) if kind == "int64" else _signed(n, 32) if kind == "int32" else n)
    return out


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(number, wire type, raw value) of each field: ints for varints, bytes otherwise."""
    out = []
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _read_varint(buf, pos)
        wire = key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 2:
            size, pos = _read_varint(buf, pos)
            value = buf[pos : pos + size]
            pos += size
        elif wire == 1:
            value = buf[pos : pos + 8]
            pos += 8
        elif wire == 5:
            value = buf[pos : pos + 4]
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        out.append((key >> 3, wire, value))
    return out


def _default(kind: str) -> Any:
    if kind.startswith("repeated "):
        return []
    if kind == "map":
        return {}
    if kind == "timestamp":
        return Timestamp()
    if kind in TABLES:
        return decode(kind, b"")
    return _DEFAULTS.get(kind, 0)


def _value(kind: str, wire: int, raw: Any) -> Any:
    if kind == "string":
        return bytes(raw).decode()
    if kind == "bytes":
        return bytes(raw)
    if kind == "bool":
        return bool(raw)
    if kind == "int32":
        return _signed(raw, 32)
    if kind == "int64":
        return _signed(raw, 64)
    if kind == "double":
        return struct.unpack("<d", raw)[0]
    if kind == "timestamp":
        ts = Timestamp()
        for number, _, v in _fields(raw):
            if number == 1:
                ts.seconds = _signed(v, 64)
            elif number == 2:
                ts.nanos = _signed(v, 32)
        return ts
    if kind in TABLES:
        return decode(kind, raw)
    return raw  # uint32, uint64


_CLASSES: dict[str, type[Message]] = {}


def decode(message: str, buf: bytes) -> Any:
    """Message ``message`` from its bytes, as an object with the generated class's field
    names (unknown fields skipped, as protobuf does)."""
    cls = _CLASSES.get(message)
    if cls is None:
        cls = _CLASSES[message] = type(message, (Message,), {"TYPE": message})
    table = TABLES[message]
    obj = cls()
    attrs = obj.__dict__
    by_number = {number: (name, kind) for number, name, kind in table}
    for _, name, kind in table:
        attrs[name] = _default(kind)
    for number, wire, raw in _fields(buf):
        spec = by_number.get(number)
        if spec is None:
            continue
        name, kind = spec
        if kind == "map":
            entry = dict.fromkeys((1, 2), b"")
            for n, _, v in _fields(raw):
                entry[n] = v
            attrs[name][bytes(entry[1]).decode()] = bytes(entry[2]).decode()
        elif kind.startswith("repeated "):
            item = kind[9:]
            if wire == 2 and item in _VARINT:
                attrs[name].extend(_packed(raw, item))
            else:
                attrs[name].append(_value(item, wire, raw))
        else:
            attrs[name] = _value(kind, wire, raw)
    return obj


def decoder(message: str) -> Callable[[bytes], Any]:
    """A one-argument decoder of ``message`` (for ``map`` over a reply stream)."""
    return lambda buf: decode(message, buf)
