"""lite messages (servin.client.quick.lite): tables checked against the generated descriptors,
and encodings checked against the protobuf runtime both ways."""

from __future__ import annotations

import inspect

import pytest
from google.protobuf.message import Message as PbMessage
from google.protobuf.timestamp_pb2 import Timestamp

from servin.api.servin.v1 import common_pb2, containers_pb2
from servin.client.quick import lite

# Every lite message and the generated class it mirrors. A lite class missing here fails
# test_every_lite_message_is_checked.
CHECKED: list[tuple[type[lite.Message], type[PbMessage]]] = [
    (lite.Timestamp, Timestamp),
    (lite.Filter, common_pb2.Filter),
    (lite.Mount, common_pb2.Mount),
    (lite.PortMapping, containers_pb2.PortMapping),
    (lite.ContainerSummary, containers_pb2.ContainerSummary),
    (lite.ListContainersRequest, containers_pb2.ListContainersRequest),
    (lite.ListContainersResponse, containers_pb2.ListContainersResponse),
]


def lite_classes(module: object) -> set[type[lite.Message]]:
    return {
        obj for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, lite.Message) and obj is not lite.Message
        and obj.__module__ == getattr(module, "__name__", "")
    }


def test_every_lite_message_is_checked() -> None:
    assert lite_classes(lite) <= {cls for cls, _ in CHECKED}


@pytest.mark.parametrize(("cls", "pb"), CHECKED, ids=[c.__name__ for c, _ in CHECKED])
def test_table_matches_the_descriptor(cls: type[lite.Message], pb: type[PbMessage]) -> None:
    descriptor = pb.DESCRIPTOR
    assert cls.__doc__ and descriptor.full_name.split(".")[-1] in cls.__doc__
    want = {f.number: f for f in descriptor.fields}
    have = {f.number: f for f in cls.FIELDS}
    assert sorted(have) == sorted(want), f"{cls.__name__}: field numbers differ"
    for number, field in have.items():
        proto = want[number]
        assert field.name == proto.name
        entry = proto.message_type
        if entry is not None and entry.GetOptions().map_entry:
            assert field.kind == lite.MAP
            assert field.key == entry.fields_by_name["key"].type
            assert field.value == entry.fields_by_name["value"].type
            continue
        assert field.kind == proto.type, f"{cls.__name__}.{field.name}: type"
        repeated = bool(proto.is_repeated)
        assert field.repeated == repeated, f"{cls.__name__}.{field.name}: repeated"
        if field.kind == lite.MESSAGE:
            assert field.message is not None
            assert field.message.__doc__
            assert entry.full_name.split(".")[-1] in field.message.__doc__
        assert field.name in cls.__annotations__


def full_summary() -> containers_pb2.ContainerSummary:
    m = containers_pb2.ContainerSummary(
        id="f" * 64, name="web-1", image="busybox:latest", image_id="sha256:" + "a" * 64,
        command="sh -c 'sleep 1000'", state="running", status="Up 2 minutes",
        labels={"tier": "web", "é": "ü"}, health="healthy", exit_code=-7, restart_count=3,
        networks=["bridge", "back"], pod_id="p", size_rw=-1, size_root_fs=1 << 40,
        runtime="runc",
    )
    m.created.FromNanoseconds(1_700_000_000_123_456_789)
    m.started_at.seconds = 5
    m.ports.add(container_port=80, protocol="tcp", host_ip="127.0.0.1", host_port=8080)
    m.ports.add(container_port=53, protocol="udp", host_port=5353)
    m.mounts.add(type="volume", source="data", target="/data", read_only=True,
                 options=["nocopy"], name="data", driver="local")
    return m


def test_decode_matches_protobuf() -> None:
    m = full_summary()
    got = lite.ContainerSummary.decode(m.SerializeToString())
    for field in lite.ContainerSummary.FIELDS:
        value = getattr(got, field.name)
        expected = getattr(m, field.name)
        if field.kind == lite.MESSAGE and not field.repeated:
            assert (value.seconds, value.nanos) == (expected.seconds, expected.nanos)
        elif field.kind == lite.MESSAGE:
            assert [v.encode() for v in value] == [e.SerializeToString() for e in expected]
        elif field.kind == lite.MAP:
            assert dict(value) == dict(expected)
        else:
            assert value == expected, field.name
    assert got.encode() == m.SerializeToString()


def test_defaults_are_protobufs() -> None:
    got = lite.ContainerSummary.decode(b"")
    assert (got.id, got.exit_code, got.labels, list(got.ports)) == ("", 0, {}, [])
    assert (got.created.seconds, got.created.nanos) == (0, 0)
    assert lite.ListContainersRequest().encode() == b""


def test_encode_is_read_by_protobuf() -> None:
    request = lite.ListContainersRequest(
        all=True, limit=-2, size=True,
        filters=[lite.Filter(key="label", values=["a=b", "c"]), lite.Filter(key="name")],
    )
    parsed = containers_pb2.ListContainersRequest.FromString(request.encode())
    assert parsed.all and parsed.size and parsed.limit == -2
    assert [(f.key, list(f.values)) for f in parsed.filters] == [("label", ["a=b", "c"]),
                                                                 ("name", [])]


def test_unknown_fields_are_skipped_and_packed_scalars_read() -> None:
    # field 99 (varint, fixed64, fixed32, bytes) then id
    unknown = (lite.encode_varint(99 << 3) + b"\x05" + lite.encode_varint(99 << 3 | 1) + b"\0" * 8
               + lite.encode_varint(99 << 3 | 5) + b"\0" * 4
               + lite.encode_varint(99 << 3 | 2) + b"\x02hi")
    got = lite.ContainerSummary.decode(unknown + b"\x0a\x01x")
    assert got.id == "x"

    class Packed(lite.Message):
        """test."""

        sizes: list[int]
        FIELDS = (lite.Field(2, "sizes", lite.UINT32, repeated=True),)

    packed = Packed(sizes=[1, 300, 70000]).encode()
    assert packed[0] == (2 << 3 | 2)
    assert Packed.decode(packed).sizes == [1, 300, 70000]
    unpacked = b"".join(b"\x10" + lite.encode_varint(v) for v in (4, 5))
    assert Packed.decode(unpacked).sizes == [4, 5]


@pytest.mark.parametrize("data", [b"\x0a\x05ab", b"\x0a", b"\x08\xff", b"\x0b"])
def test_broken_bytes_are_decode_errors(data: bytes) -> None:
    with pytest.raises(lite.DecodeError):
        lite.ContainerSummary.decode(data)
