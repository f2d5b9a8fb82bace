"""The quick front's lite tables for logs/stats/exec against the generated descriptors, and
their encoding/decoding against the protobuf runtime."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import FieldDescriptor

from servin.api.servin.v1 import containers_pb2 as pb
from servin.client.quick import messages_io as msg

_SCALARS = {
    FieldDescriptor.TYPE_STRING: "string", FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_BOOL: "bool", FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_INT64: "int64", FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_UINT64: "uint64", FieldDescriptor.TYPE_DOUBLE: "double",
}


def _kind(field: FieldDescriptor) -> str:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.GetOptions().map_entry:
            key, value = field.message_type.fields
            assert (key.type, value.type) == (FieldDescriptor.TYPE_STRING,) * 2
            return "map"
        name = field.message_type.full_name
        kind = "timestamp" if name == "google.protobuf.Timestamp" else name.rsplit(".", 1)[1]
    else:
        kind = _SCALARS[field.type]
    return f"repeated {kind}" if field.is_repeated else kind


@pytest.mark.parametrize("name", sorted(msg.TABLES))
def test_table_matches_descriptor(name: str) -> None:
    descriptor = pb.DESCRIPTOR.message_types_by_name[name]
    expected = tuple((f.number, f.name, _kind(f)) for f in descriptor.fields)
    assert tuple(sorted(msg.TABLES[name])) == tuple(sorted(expected))
    for _, _, kind in msg.TABLES[name]:  # nested messages have tables too
        bare = kind.removeprefix("repeated ")
        assert bare in {*_SCALARS.values(), "timestamp", "map"} or bare in msg.TABLES


def test_timestamp_table_matches() -> None:
    from google.protobuf import timestamp_pb2

    fields = timestamp_pb2.Timestamp.DESCRIPTOR.fields
    assert tuple((f.number, f.name, _kind(f)) for f in fields) == msg.TIMESTAMP


def test_requests_encode_as_protobuf_does() -> None:
    ref = pb.ContainerLogsRequest(id="web", stdout=True, stderr=True, tail=-1, timestamps=True,
                                  details=True)
    ref.since.FromNanoseconds(1_700_000_000_123_456_789)
    data = msg.encode("ContainerLogsRequest", id="web", stdout=True, stderr=True, tail=-1,
                      since=1_700_000_000_123_456_789, until=0, timestamps=True, details=True)
    assert pb.ContainerLogsRequest.FromString(data) == ref
    data = msg.encode("ExecCreateRequest", container_id="c", cmd=["sh", "-c", "é"],
                      env=["A=1"], user="1:2", privileged=True, attach_stdout=True)
    assert pb.ExecCreateRequest.FromString(data) == pb.ExecCreateRequest(
        container_id="c", cmd=["sh", "-c", "é"], env=["A=1"], user="1:2", privileged=True,
        attach_stdout=True)
    assert msg.encode("StatsRequest", ids=[], stream=False) == b""
    with pytest.raises(TypeError):
        msg.encode("ExecInput", nosuch=1)


def test_replies_decode_as_protobuf_does() -> None:
    chunk = pb.LogChunk(data=b"one\ntwo\n", sizes=[4, 4], streams=b"\x01\x02",
                        times=[1, 2**62], container_id="cid", attrs={"a": "1", "b": "2"})
    got = msg.decode("LogChunk", chunk.SerializeToString())
    assert (got.data, got.sizes, got.streams, got.times, got.container_id, got.attrs) == (
        b"one\ntwo\n", [4, 4], b"\x01\x02", [1, 2**62], "cid", {"a": "1", "b": "2"})
    stats = pb.ContainerStats(id="x" * 64, name="web", cpu_percent=12.5, memory_usage=2**40,
                              pids=7, online_cpus=2)
    stats.read.FromNanoseconds(1_000_000_001)
    got = msg.decode("StatsBatch", pb.StatsBatch(stats=[stats, stats]).SerializeToString())
    assert len(got.stats) == 2
    one = got.stats[1]
    assert (one.id, one.name, one.cpu_percent, one.memory_usage, one.pids, one.net_rx) == (
        "x" * 64, "web", 12.5, 2**40, 7, 0)
    assert (one.read.seconds, one.read.nanos, one.read.ToNanoseconds()) == (1, 1, 1_000_000_001)
    out = msg.decode("AttachOutput", pb.AttachOutput(exited=True, exit_code=-1).SerializeToString())
    assert (out.exited, out.exit_code, out.data, out.stream, out.detached) == (
        True, -1, b"", 0, False)
    empty = msg.decode("ExecDetail", b"")
    assert (empty.id, empty.exit_code, empty.cmd, empty.running) == ("", 0, [], False)
