"""API fuzzing: random and mutated messages to every servin.v1 method, for a bounded time.

Hypothesis builds each method's request from its protobuf descriptor (strings odd and long,
numbers at their limits, nested messages, maps), then sends it as it is, with its bytes
mutated, or as raw garbage; streams get a few such messages. The daemon must stay up, answer
a normal call right after, map every error to a typed status (no UNKNOWN: an unhandled
exception) and hold no more file descriptors or threads than before once calls have settled.

Calls that would reach outside the machine or the test's own network slot are pinned: pull,
push and login go to 127.0.0.1:9 (nothing listens), networks get no IPAM config (their subnet
comes from the daemon's test pool), volumes no driver options (no NFS, no bind of a host path).
``SERVIN_FUZZ_SECONDS`` sets the budget (default 60).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor as pbd
from google.protobuf import message_factory
from google.protobuf.message import DecodeError, Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servin.api.servin.v1 import (
    containers_pb2,
    images_pb2,
    networks_pb2,
    pods_pb2,
    system_pb2,
    volumes_pb2,
)
from tests.daemon import DaemonProcess
from tests.hardening.figures import count

pytestmark = pytest.mark.slow

BUDGET = float(os.environ.get("SERVIN_FUZZ_SECONDS", "60"))
UNARY_TIMEOUT = 5.0
STREAM_TIMEOUT = 0.5
NOWHERE = "127.0.0.1:9"

_INT_RANGES = {
    pbd.FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    pbd.FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    pbd.FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    pbd.FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    pbd.FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    pbd.FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    pbd.FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    pbd.FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    pbd.FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    pbd.FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}

ODD_STRINGS = ["", ".", "..", "/", "../../etc/passwd", "-", "--help", "a" * 300,
               "x" * 70_000, "\x00", "☃", "sha256:", "sha256:" + "0" * 64, "busybox",
               "busybox:latest", "KILL", "-1", "0", "true", "{}", "%s%n", "\n\n"]


def text() -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=24), st.sampled_from(ODD_STRINGS),
                     st.text(alphabet="abc./-_:=0123456789", max_size=64))


def field_value(field: pbd.FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == pbd.FieldDescriptor.TYPE_MESSAGE:
        return message(field.message_type, depth + 1)
    if kind == pbd.FieldDescriptor.TYPE_STRING:
        return text()
    if kind == pbd.FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=256)
    if kind == pbd.FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (pbd.FieldDescriptor.TYPE_DOUBLE, pbd.FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    if kind == pbd.FieldDescriptor.TYPE_ENUM:
        return st.one_of(st.sampled_from([v.number for v in field.enum_type.values]),
                         st.integers(-5, 100))
    low, high = _INT_RANGES[kind]
    return st.one_of(st.integers(low, high), st.sampled_from([0, 1, -1 if low < 0 else 2, low,
                                                              high]))


def message(descriptor: pbd.Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of ``descriptor`` with any subset of their fields set (nested ones too)."""
    cls = message_factory.GetMessageClass(descriptor)
    if depth > 3:
        return st.just(cls())
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key = field.message_type.fields_by_name["key"]
            value = field.message_type.fields_by_name["value"]
            fields[field.name] = st.dictionaries(field_value(key, depth),
                                                 field_value(value, depth), max_size=4)
        elif field.is_repeated:
            fields[field.name] = st.lists(field_value(field, depth), max_size=4)
        else:
            fields[field.name] = field_value(field, depth)
    return st.fixed_dictionaries({}, optional=fields).map(lambda values: _build(cls, values))


def _build(cls: type[Message], values: dict[str, Any]) -> Message:
    msg = cls()
    for name, value in values.items():
        field = cls.DESCRIPTOR.fields_by_name[name]
        target = getattr(msg, name) if field.is_repeated \
            or field.type == pbd.FieldDescriptor.TYPE_MESSAGE else None
        try:
            if isinstance(value, dict):
                for k, v in value.items():
                    if isinstance(v, Message):
                        target[k].CopyFrom(v)  # type: ignore[index]
                    else:
                        target[k] = v  # type: ignore[index]
            elif isinstance(value, list):
                if field.type == pbd.FieldDescriptor.TYPE_MESSAGE:
                    for item in value:
                        target.add().CopyFrom(item)  # type: ignore[union-attr]
                else:
                    target.extend(value)  # type: ignore[union-attr]
            elif isinstance(value, Message):
                target.CopyFrom(value)  # type: ignore[union-attr]
            else:
                setattr(msg, name, value)
        except (ValueError, TypeError):
            pass  # a value the field cannot hold (e.g. an unknown enum in a closed enum)
    return msg


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Flip, insert and cut bytes of a serialized message."""
    buf = bytearray(data)
    for kind, pos, value in edits:
        at = pos % (len(buf) + 1)
        if kind == 0 and buf:
            buf[at % len(buf)] ^= value or 1
        elif kind == 1:
            buf[at:at] = bytes([value])
        else:
            del buf[at:at + value % 8]
    return bytes(buf)


# -- what may leave the machine is pinned -------------------------------------------------------


def pin(method: str, msg: Message) -> Message:
    """Keep a request from reaching other hosts or the host's own networking."""
    if method.startswith("Images/") and method.split("/")[1] in ("Pull", "Push"):
        tail = msg.reference.replace("/", "_")[:40]  # type: ignore[attr-defined]
        msg.reference = f"{NOWHERE}/fuzz/{tail}"  # type: ignore[attr-defined]
    if method == "Images/Login":
        msg.server = NOWHERE  # type: ignore[attr-defined]
    if method == "Networks/Create":
        del msg.ipam[:]  # type: ignore[attr-defined]
        msg.options.clear()  # type: ignore[attr-defined]
    if method == "Volumes/Create":
        msg.options.clear()  # type: ignore[attr-defined]
    if method == "Containers/Create" and msg.HasField("spec"):  # type: ignore[attr-defined]
        msg.spec.image = "fuzz-no-such-image:" + str(len(msg.spec.image))  # type: ignore[attr-defined]
    return msg


def pinned_bytes(method: str, cls: type[Message], data: bytes) -> bytes | None:
    """``data`` as the server will read it, pinned; None if it must not be sent."""
    if method not in PINNED:
        return data
    try:
        parsed = cls.FromString(data)
    except DecodeError:
        return data  # the server cannot parse it either
    return pin(method, parsed).SerializeToString()


PINNED = {"Images/Pull", "Images/Push", "Images/Login", "Networks/Create", "Volumes/Create",
          "Containers/Create"}


# -- the methods -------------------------------------------------------------------------------


def methods() -> list[tuple[str, pbd.MethodDescriptor]]:
    out = []
    for module in (containers_pb2, images_pb2, networks_pb2, pods_pb2, system_pb2,
                   volumes_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for m in service.methods:
                out.append((f"{service.name}/{m.name}", m))
    return out


class Caller:
    """Sends raw request bytes to one method, whatever its streaming shape."""

    def __init__(self, channel: grpc.Channel, service: str, method: pbd.MethodDescriptor):
        path = f"/{method.containing_service.full_name}/{method.name}"
        self.client_streaming = method.client_streaming
        self.server_streaming = method.server_streaming
        if method.client_streaming and method.server_streaming:
            self.call = channel.stream_stream(path)
        elif method.client_streaming:
            self.call = channel.stream_unary(path)
        elif method.server_streaming:
            self.call = channel.unary_stream(path)
        else:
            self.call = channel.unary_unary(path)

    def send(self, requests: list[bytes]) -> tuple[grpc.StatusCode, str]:
        try:
            if not self.client_streaming and not self.server_streaming:
                self.call(requests[0], timeout=UNARY_TIMEOUT)
            elif self.client_streaming and not self.server_streaming:
                self.call(iter(requests), timeout=UNARY_TIMEOUT)
            else:
                source = requests[0] if not self.client_streaming else iter(requests)
                stream = self.call(source, timeout=STREAM_TIMEOUT)
                try:
                    for i, _ in enumerate(stream):
                        if i >= 5:
                            break
                finally:
                    stream.cancel()
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or ""  # type: ignore[attr-defined]
        return grpc.StatusCode.OK, ""


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _settle(pid: int, fds: int, threads: int, timeout: float = 20.0) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    while True:
        now = (_fds(pid), _threads(pid))
        if (now[0] <= fds and now[1] <= threads) or time.monotonic() > deadline:
            return now
        time.sleep(0.2)


def fuzz_method(engine: DaemonProcess, name: str, m: pbd.MethodDescriptor, caller: Caller,
                deadline: float, sent: dict[str, int], unknown: list[str]) -> None:
    """Hypothesis examples for one method until ``deadline``."""
    cls = message_factory.GetMessageClass(m.input_type)

    strategy = st.tuples(
        st.lists(message(m.input_type), min_size=1, max_size=3),
        st.sampled_from(["structured", "mutated", "garbage"]),
        st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10_000), st.integers(0, 255)),
                 min_size=1, max_size=6),
        st.binary(max_size=512))

    def body(case: tuple[list[Message], str, list[tuple[int, int, int]], bytes]) -> None:
        if time.monotonic() > deadline:
            return
        msgs, mode, edits, garbage = case
        if mode == "structured":
            payloads = [pin(name, msg).SerializeToString() if name in PINNED
                        else msg.SerializeToString() for msg in msgs]
        elif mode == "mutated":
            payloads = [mutate(msg.SerializeToString(), edits) for msg in msgs]
        else:
            payloads = [garbage]
        safe = [pinned_bytes(name, cls, p) for p in payloads]
        code, details = caller.send([p for p in safe if p is not None] or [b""])
        sent[mode] += 1
        # An unhandled exception in the daemon (not a typed error) shows as UNKNOWN or as
        # the interceptor's "internal error: <type>".
        if code == grpc.StatusCode.UNKNOWN or details.startswith("internal error:"):
            unknown.append(f"{name}: {details[:160]}")
        assert engine.proc is not None and engine.proc.poll() is None, \
            f"the daemon died on {name} ({mode})"

    def run(examples: int) -> None:
        settings(max_examples=examples, deadline=None, database=None,
                 suppress_health_check=list(HealthCheck))(given(case=strategy)(body))()

    # A few examples tell what one costs (generation and call), then as many as fit.
    started = time.monotonic()
    run(4)
    each = max((time.monotonic() - started) / 4, 1e-3)
    left = deadline - time.monotonic()
    if left > each:
        run(min(2000, int(left / each)))


def normal_calls(channel: grpc.Channel) -> None:
    from servin.api.servin.v1 import containers_pb2_grpc, system_pb2_grpc

    system_pb2_grpc.SystemStub(channel).Ping(system_pb2.PingRequest(), timeout=10)
    containers_pb2_grpc.ContainersStub(channel).List(
        containers_pb2.ListContainersRequest(all=True), timeout=10)


def test_api_fuzz(engine: DaemonProcess) -> None:
    assert engine.proc is not None
    pid = engine.proc.pid
    channel = grpc.insecure_channel(f"unix:{engine.socket}", options=[
        ("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)])
    all_methods = methods()
    unknown: list[str] = []
    sent = {"structured": 0, "mutated": 0, "garbage": 0}
    # Warm up (thread pools, caches) with one empty request per method, then take the baseline.
    callers = {name: Caller(channel, name, m) for name, m in all_methods}
    for name, _ in all_methods:
        callers[name].send([b""])
    normal_calls(channel)
    base_fds, base_threads = _settle(pid, 0, 0, timeout=1.0)

    per_method = BUDGET / len(all_methods)
    for name, m in all_methods:
        fuzz_method(engine, name, m, callers[name], time.monotonic() + per_method, sent,
                    unknown)
    total = sum(sent.values())
    count("API fuzz calls", total)
    for mode, n in sent.items():
        count(f"API fuzz calls ({mode})", n)
    count("API fuzz methods", len(all_methods))
    print(f"fuzz: {total} calls to {len(all_methods)} methods ({sent})")

    assert engine.proc.poll() is None, "the daemon died"
    normal_calls(channel)  # a normal call right after answers
    channel.close()
    fds, threads = _settle(pid, base_fds + 8, base_threads + 4)
    assert fds <= base_fds + 8, f"file descriptors: {base_fds} before, {fds} after"
    assert threads <= base_threads + 4, f"threads: {base_threads} before, {threads} after"
    assert not unknown, f"unhandled errors: {sorted(set(unknown))[:20]}"
    assert Path(f"/proc/{pid}").exists()
