"""Protobuf's wire format without the protobuf runtime, for the quick CLI front.

Each message the quick commands send or read is a small class with a field table (number,
name, type) written once here; ``tests/client/quick/test_lite.py`` checks every table
against the generated ``*_pb2`` descriptors, so a change to ``proto/`` cannot drift silently.
Objects have the generated classes' attribute names and protobuf's defaults ("" / 0 / False,
empty repeated fields, an empty message for an unset message field, maps as dicts), so code
typed against a Protocol (``servin.cli.tables``) formats either kind.

Field kinds are the numbers of ``google.protobuf.descriptor.FieldDescriptor.TYPE_*``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from types import MappingProxyType

from servin.protowire import WireError, encode_varint, framed, read_varint

TYPE_CHECKING = False
if TYPE_CHECKING:  # mypy checks a real NamedTuple; run time skips typing's import cost
    from typing import Any, ClassVar, Self, TypeVar
    from typing import NamedTuple as Record

    M = TypeVar("M", bound="Message")
else:
    from servin.records import Record

DOUBLE, FLOAT, INT64, UINT64, INT32, FIXED64, FIXED32, BOOL, STRING = 1, 2, 3, 4, 5, 6, 7, 8, 9
MESSAGE, BYTES, UINT32, ENUM, SFIXED32, SFIXED64, SINT32, SINT64 = 11, 12, 13, 14, 15, 16, 17, 18
MAP = 100  # not a descriptor type: a map<key, value> field (a repeated entry message)

_VARINT = frozenset((INT64, UINT64, INT32, BOOL, UINT32, ENUM, SINT32, SINT64))
_FIXED64 = {DOUBLE: "<d", FIXED64: "<Q", SFIXED64: "<q"}
_FIXED32 = {FLOAT: "<f", FIXED32: "<I", SFIXED32: "<i"}
_SCALAR_DEFAULTS: dict[int, Any] = {STRING: "", BYTES: b"", BOOL: False, DOUBLE: 0.0, FLOAT: 0.0}
_EMPTY_MAP: MappingProxyType[Any, Any] = MappingProxyType({})


DecodeError = WireError  # bytes that are not a valid encoding of the message


class Field(Record):
    """One field of a message table."""

    number: int
    name: str
    kind: int  # a FieldDescriptor.TYPE_* number, or MAP
    repeated: bool = False
    message: type[Message] | None = None  # MESSAGE fields
    key: int = 0  # MAP fields: the key's and the value's types
    value: int = 0


def _wire_type(kind: int) -> int:
    if kind in _VARINT:
        return 0
    if kind in _FIXED64:
        return 1
    if kind in _FIXED32:
        return 5
    return 2


class _Lazy:
    """A singular message field decoded on first read (``ps`` reads ``created`` but not
    ``started_at``): the instance keeps (buffer, start, end) under ``_raw_<name>`` until then.
    A non-data descriptor, so a decoded or assigned value in the instance wins."""

    def __init__(self, name: str, cls: type[Message]) -> None:
        self.name = name
        self.raw_key = "_raw_" + name
        self.cls = cls
        self.default = cls()

    def __get__(self, obj: Message | None, owner: type) -> Any:
        if obj is None:
            return self.default
        raw = obj.__dict__.pop(self.raw_key, None)
        if raw is None:
            return self.default
        try:
            value = _decode(self.cls, *raw)
        except (IndexError, struct.error, UnicodeDecodeError) as exc:
            raise DecodeError(f"cannot decode {self.cls.__name__}: {exc}") from None
        obj.__dict__[self.name] = value
        return value


# How _decode handles a field, by tag: (attribute name, type, repeated, message class).
_Entry = tuple[str, int, bool, "type[Message] | None"]


class Message:
    """Base of the lite messages: ``FIELDS`` is the table; attributes hold the values."""

    FIELDS: ClassVar[tuple[Field, ...]] = ()
    _BY_TAG: ClassVar[dict[int, _Entry]] = {}

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        by_tag: dict[int, _Entry] = {}
        for field in cls.FIELDS:
            entry = (field.name, field.kind, field.repeated, field.message)
            by_tag[field.number << 3 | _wire_type(field.kind)] = entry
            if field.repeated and field.kind not in (STRING, BYTES, MESSAGE, MAP):
                by_tag[field.number << 3 | 2] = entry  # packed
            if field.kind == MESSAGE and not field.repeated:
                assert field.message is not None
                setattr(cls, field.name, _Lazy(field.name, field.message))
            else:
                setattr(cls, field.name, _default(field))
        cls._BY_TAG = by_tag

    def __init__(self, **values: Any) -> None:
        names = {f.name for f in self.FIELDS}
        for name, value in values.items():
            if name not in names:
                raise TypeError(f"{type(self).__name__} has no field {name!r}")
            setattr(self, name, value)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            _plain(getattr(self, f.name)) == _plain(getattr(other, f.name)) for f in self.FIELDS
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, as protobuf's

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in self.FIELDS
            if f.name in vars(self) or "_raw_" + f.name in vars(self)
        )
        return f"{type(self).__name__}({shown})"

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """The message encoded in ``data``."""
        try:
            return _decode(cls, data, 0, len(data))
        except (IndexError, struct.error, UnicodeDecodeError) as exc:
            raise DecodeError(f"cannot decode {cls.__name__}: {exc}") from None

    def encode(self) -> bytes:
        """The wire encoding (fields in number order; proto3 defaults left out)."""
        out = bytearray()
        for field in self.FIELDS:
            value = vars(self).get(field.name)
            if value is None and "_raw_" + field.name in vars(self):
                value = getattr(self, field.name)
            if value is not None:
                _encode_field(out, field, value)
        return bytes(out)


def _default(field: Field) -> Any:
    if field.kind == MAP:
        return _EMPTY_MAP
    if field.repeated:
        return ()
    if field.kind == MESSAGE:
        assert field.message is not None
        return field.message()
    return _SCALAR_DEFAULTS.get(field.kind, 0)


def _plain(value: Any) -> Any:
    if isinstance(value, MappingProxyType):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _scalar(kind: int, raw: int) -> Any:
    """A varint's value as ``kind``."""
    if kind in (INT32, INT64):
        return raw - (1 << 64) if raw >= 1 << 63 else raw
    if kind == BOOL:
        return raw != 0
    if kind in (SINT32, SINT64):
        return (raw >> 1) ^ -(raw & 1)
    if kind == UINT32:
        return raw & 0xFFFFFFFF
    return raw


def _decode(cls: type[M], buf: bytes, pos: int, end: int) -> M:
    obj = cls.__new__(cls)
    values = obj.__dict__
    by_tag = cls._BY_TAG
    while pos < end:
        tag = buf[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = read_varint(buf, pos - 1)
        entry = by_tag.get(tag)
        if entry is None:
            pos = _skip(buf, pos, tag & 7)
            continue
        name, kind, repeated, message = entry
        if tag & 7 == 2:
            size = buf[pos]
            pos += 1
            if size >= 0x80:
                size, pos = read_varint(buf, pos - 1)
            stop = pos + size
            if stop > end:
                raise DecodeError(f"field {name} runs past the message")
            if kind == STRING:
                value: Any = buf[pos:stop].decode()
            elif kind == MESSAGE:
                if not repeated:
                    values.pop(name, None)
                    values["_raw_" + name] = (buf, pos, stop)
                    pos = stop
                    continue
                value = _decode(message, buf, pos, stop)  # type: ignore[arg-type]  # MESSAGE rows name a class
            elif kind == BYTES:
                value = buf[pos:stop]
            elif kind == MAP:
                key, item = _map_entry(cls, name, buf, pos, stop)
                mapping = values.get(name)
                if mapping is None:
                    mapping = values[name] = {}
                mapping[key] = item
                pos = stop
                continue
            else:  # packed repeated scalars
                items = values.setdefault(name, [])
                while pos < stop:
                    item, pos = _read_scalar(kind, buf, pos)
                    items.append(item)
                continue
            pos = stop
        elif kind in _VARINT:
            raw = buf[pos]
            pos += 1
            if raw >= 0x80:
                raw, pos = read_varint(buf, pos - 1)
            value = raw if kind == UINT64 else _scalar(kind, raw)
        else:
            value, pos = _read_scalar(kind, buf, pos)
        if repeated:
            values.setdefault(name, []).append(value)
        else:
            values[name] = value
    if pos != end:
        raise DecodeError(f"{cls.__name__} runs past its end")
    return obj


def _read_scalar(kind: int, buf: bytes, pos: int) -> tuple[Any, int]:
    if kind in _FIXED64:
        return struct.unpack_from(_FIXED64[kind], buf, pos)[0], pos + 8
    if kind in _FIXED32:
        return struct.unpack_from(_FIXED32[kind], buf, pos)[0], pos + 4
    raw, pos = read_varint(buf, pos)
    return _scalar(kind, raw), pos


def _map_entry(cls: type[Message], name: str, buf: bytes, pos: int, end: int
               ) -> tuple[Any, Any]:
    field = next(f for f in cls.FIELDS if f.name == name)
    key: Any = _SCALAR_DEFAULTS.get(field.key, 0)
    value: Any = _SCALAR_DEFAULTS.get(field.value, 0)
    while pos < end:
        tag, pos = read_varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        kind = field.key if number == 1 else field.value if number == 2 else 0
        if not kind:
            pos = _skip(buf, pos, wire)
        elif wire == 2:
            size, pos = read_varint(buf, pos)
            raw = buf[pos : pos + size]
            item: Any = raw.decode() if kind == STRING else raw
            pos += size
            if number == 1:
                key = item
            else:
                value = item
        else:
            item, pos = _read_scalar(kind, buf, pos)
            if number == 1:
                key = item
            else:
                value = item
    return key, value


def _skip(buf: bytes, pos: int, wire: int) -> int:
    if wire == 0:
        return read_varint(buf, pos)[1]
    if wire == 1:
        return pos + 8
    if wire == 5:
        return pos + 4
    if wire == 2:
        size, pos = read_varint(buf, pos)
        return pos + size
    raise DecodeError(f"unsupported wire type {wire}")


# --- encoding -------------------------------------------------------------------------------


def _scalar_bytes(kind: int, value: Any) -> bytes:
    if kind in _FIXED64:
        return struct.pack(_FIXED64[kind], value)
    if kind in _FIXED32:
        return struct.pack(_FIXED32[kind], value)
    if kind in (SINT32, SINT64):
        return encode_varint((value << 1) ^ (value >> 63))
    return encode_varint(int(value))


def _length_delimited(kind: int, value: Any) -> bytes:
    if kind == STRING:
        return str(value).encode()
    if kind == BYTES:
        return bytes(value)
    return bytes(value.encode())  # a message


def _encode_field(out: bytearray, field: Field, value: Any) -> None:
    number, kind = field.number, field.kind
    if kind == MAP:
        for key, item in dict(value).items():
            entry = bytearray()
            _encode_single(entry, 1, field.key, key)
            _encode_single(entry, 2, field.value, item)
            out += framed(number, entry)
        return
    if field.repeated:
        items = list(value)
        if not items:
            return
        if kind in (STRING, BYTES, MESSAGE):
            for item in items:
                data = _length_delimited(kind, item)
                out += framed(number, data)
        else:  # packed
            data = b"".join(_scalar_bytes(kind, item) for item in items)
            out += framed(number, data)
        return
    if kind != MESSAGE and not value:
        return  # proto3: defaults are not sent
    _encode_single(out, number, kind, value)


def _encode_single(out: bytearray, number: int, kind: int, value: Any) -> None:
    if kind in (STRING, BYTES, MESSAGE):
        data = _length_delimited(kind, value)
        out += framed(number, data)
    else:
        out += encode_varint(number << 3 | _wire_type(kind)) + _scalar_bytes(kind, value)


def encode_fields(pairs: Iterable[tuple[int, int, Any]]) -> bytes:
    """An encoding from (field number, type, value) triples, in the order given."""
    out = bytearray()
    for number, kind, value in pairs:
        _encode_single(out, number, kind, value)
    return bytes(out)


# --- the messages ---------------------------------------------------------------------------
# Each class: typed attributes for readers, FIELDS for the codec. Names and numbers are the
# generated classes'; test_lite.py checks them against the descriptors.


class Timestamp(Message):
    """google.protobuf.Timestamp."""

    seconds: int
    nanos: int
    FIELDS = (Field(1, "seconds", INT64), Field(2, "nanos", INT32))


class Filter(Message):
    """servin.v1.Filter."""

    key: str
    values: list[str]
    FIELDS = (Field(1, "key", STRING), Field(2, "values", STRING, repeated=True))


class Mount(Message):
    """servin.v1.Mount."""

    type: str
    source: str
    target: str
    read_only: bool
    propagation: str
    options: list[str]
    driver: str
    name: str
    FIELDS = (
        Field(1, "type", STRING),
        Field(2, "source", STRING),
        Field(3, "target", STRING),
        Field(4, "read_only", BOOL),
        Field(5, "propagation", STRING),
        Field(6, "options", STRING, repeated=True),
        Field(7, "driver", STRING),
        Field(8, "name", STRING),
    )


class PortMapping(Message):
    """servin.v1.PortMapping."""

    container_port: int
    protocol: str
    host_ip: str
    host_port: int
    FIELDS = (
        Field(1, "container_port", UINT32),
        Field(2, "protocol", STRING),
        Field(3, "host_ip", STRING),
        Field(4, "host_port", UINT32),
    )


class ContainerSummary(Message):
    """servin.v1.ContainerSummary."""

    id: str
    name: str
    image: str
    image_id: str
    command: str
    created: Timestamp
    state: str
    status: str
    ports: list[PortMapping]
    labels: dict[str, str]
    health: str
    exit_code: int
    started_at: Timestamp
    finished_at: Timestamp
    restart_count: int
    networks: list[str]
    mounts: list[Mount]
    pod_id: str
    size_rw: int
    size_root_fs: int
    runtime: str
    FIELDS = (
        Field(1, "id", STRING),
        Field(2, "name", STRING),
        Field(3, "image", STRING),
        Field(4, "image_id", STRING),
        Field(5, "command", STRING),
        Field(6, "created", MESSAGE, message=Timestamp),
        Field(7, "state", STRING),
        Field(8, "status", STRING),
        Field(9, "ports", MESSAGE, repeated=True, message=PortMapping),
        Field(10, "labels", MAP, key=STRING, value=STRING),
        Field(11, "health", STRING),
        Field(12, "exit_code", INT32),
        Field(13, "started_at", MESSAGE, message=Timestamp),
        Field(14, "finished_at", MESSAGE, message=Timestamp),
        Field(15, "restart_count", INT32),
        Field(16, "networks", STRING, repeated=True),
        Field(17, "mounts", MESSAGE, repeated=True, message=Mount),
        Field(18, "pod_id", STRING),
        Field(19, "size_rw", INT64),
        Field(20, "size_root_fs", INT64),
        Field(21, "runtime", STRING),
    )


class ListContainersRequest(Message):
    """servin.v1.ListContainersRequest."""

    all: bool
    filters: list[Filter]
    limit: int
    size: bool
    FIELDS = (
        Field(1, "all", BOOL),
        Field(2, "filters", MESSAGE, repeated=True, message=Filter),
        Field(3, "limit", INT32),
        Field(4, "size", BOOL),
    )


class ListContainersResponse(Message):
    """servin.v1.ListContainersResponse."""

    containers: list[ContainerSummary]
    FIELDS = (Field(1, "containers", MESSAGE, repeated=True, message=ContainerSummary),)
