"""The quick front's lite messages for logs/stats/exec encoded and decoded against the
protobuf runtime (their tables are checked against the descriptors with lite's own, in
tests/client/quick/test_lite.py)."""

from __future__ import annotations

import pytest

from servin.api.servin.v1 import containers_pb2 as pb
from servin.cli.statsview import stats_row
from servin.client.logs import records
from servin.client.quick import lite
from servin.client.quick import messages_io as msg


def test_requests_encode_as_protobuf_does() -> None:
    ref = pb.ContainerLogsRequest(id="web", stdout=True, stderr=True, tail=-1, timestamps=True,
                                  details=True)
    ref.since.FromNanoseconds(1_700_000_000_123_456_789)
    ref.until.SetInParent()
    data = msg.ContainerLogsRequest(
        id="web", stdout=True, stderr=True, tail=-1, timestamps=True, details=True,
        since=lite.Timestamp(seconds=1_700_000_000, nanos=123_456_789),
        until=lite.Timestamp()).encode()
    assert pb.ContainerLogsRequest.FromString(data) == ref
    assert data == ref.SerializeToString()
    data = msg.ExecCreateRequest(container_id="c", cmd=["sh", "-c", "é"], env=["A=1"],
                                 user="1:2", privileged=True, attach_stdout=True).encode()
    assert pb.ExecCreateRequest.FromString(data) == pb.ExecCreateRequest(
        container_id="c", cmd=["sh", "-c", "é"], env=["A=1"], user="1:2", privileged=True,
        attach_stdout=True)
    assert msg.StatsRequest(ids=[], stream=False).encode() == b""
    assert msg.ExecInput(exec_id="x", detach=True).encode() == pb.ExecInput(
        exec_id="x", detach=True).SerializeToString()
    with pytest.raises(TypeError):
        msg.ExecInput(nosuch=1)


def test_replies_decode_as_protobuf_does() -> None:
    chunk = pb.LogChunk(data=b"one\ntwo\n", sizes=[4, 4], streams=b"\x01\x02",
                        times=[1, 2**62], container_id="cid", attrs={"a": "1", "b": "2"})
    got = msg.LogChunk.decode(chunk.SerializeToString())
    assert (got.data, list(got.sizes), got.streams, list(got.times), got.container_id,
            dict(got.attrs)) == (b"one\ntwo\n", [4, 4], b"\x01\x02", [1, 2**62], "cid",
                                 {"a": "1", "b": "2"})
    assert list(records(got)) == list(records(chunk))
    stats = pb.ContainerStats(id="x" * 64, name="web", cpu_percent=12.5, memory_usage=2**40,
                              pids=7, online_cpus=2)
    stats.read.FromNanoseconds(1_000_000_001)
    got = msg.StatsBatch.decode(pb.StatsBatch(stats=[stats, stats]).SerializeToString())
    assert len(got.stats) == 2
    one = got.stats[1]
    assert (one.id, one.name, one.cpu_percent, one.memory_usage, one.pids, one.net_rx) == (
        "x" * 64, "web", 12.5, 2**40, 7, 0)
    assert (one.read.seconds, one.read.nanos) == (1, 1)
    assert stats_row(one, "web", False) == stats_row(stats, "web", False)
    out = msg.AttachOutput.decode(pb.AttachOutput(exited=True, exit_code=-1).SerializeToString())
    assert (out.exited, out.exit_code, out.data, out.stream, out.detached) == (
        True, -1, b"", 0, False)
    empty = msg.ExecDetail.decode(b"")
    assert (empty.id, empty.exit_code, list(empty.cmd), empty.running) == ("", 0, [], False)
