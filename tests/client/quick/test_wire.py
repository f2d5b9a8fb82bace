"""QuickChannel (servin.client.quick.wire): against a real daemon, compared with the h2
transport, and against a scripted HTTP/2 peer for the frames a daemon rarely sends."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import hpack as hpack_lib  # tests only: encodes the scripted peer's headers
import pytest

from servin.api.servin.v1 import containers_pb2, system_pb2
from servin.client.channel import Endpoint
from servin.client.errors import StatusError
from servin.client.h2channel import H2Channel
from servin.client.quick import wire
from servin.client.quick.wire import QuickChannel
from tests.daemon import DaemonProcess

pytestmark = pytest.mark.timeout(120)


def endpoint(d: DaemonProcess) -> Endpoint:
    return Endpoint(unix=str(d.socket))


@pytest.fixture(scope="module")
def chatty(engine: DaemonProcess) -> str:
    """A container whose log is 3 MB (many DATA frames, several window updates)."""
    out = engine.cli("run", "-d", "busybox", "sh", "-c",
                     "i=0; while [ $i -lt 30000 ]; do echo line-$i-$(printf %080d 0); "
                     "i=$((i+1)); done", check=True)
    cid = out.stdout.strip()
    engine.cli("wait", cid, check=True)
    return cid


def h2_call(d: DaemonProcess, path: str, request: bytes) -> bytes | StatusError:
    channel = H2Channel(endpoint(d))
    try:
        call = channel.unary_unary(path, lambda b: b, lambda b: b)
        result: bytes = call(request)
        return result
    except StatusError as exc:
        return exc
    finally:
        channel.close()


def test_unary_calls_answer_as_the_h2_transport(engine: DaemonProcess) -> None:
    version = system_pb2.VersionRequest().SerializeToString()
    with QuickChannel.connect(endpoint(engine)) as channel:
        got = channel.unary("/servin.v1.System/Version", version)
        assert system_pb2.VersionResponse.FromString(got).version
        listed = channel.unary("/servin.v1.Containers/List", b"\x08\x01")
        assert listed == h2_call(engine, "/servin.v1.Containers/List", b"\x08\x01")


@pytest.mark.parametrize(
    ("path", "request_bytes"),
    [
        ("/servin.v1.Containers/Inspect",
         containers_pb2.InspectContainerRequest(id="no-such-thing").SerializeToString()),
        ("/servin.v1.Nothing/Here", b""),
    ],
)
def test_failures_are_the_h2_transports(engine: DaemonProcess, path: str,
                                        request_bytes: bytes) -> None:
    expected = h2_call(engine, path, request_bytes)
    assert isinstance(expected, StatusError)
    with QuickChannel.connect(endpoint(engine)) as channel:
        with pytest.raises(StatusError) as caught:
            channel.unary(path, request_bytes)
        assert (caught.value.code, caught.value.details) == (expected.code, expected.details)
        # the connection carries on after a failed call
        assert channel.unary("/servin.v1.System/Version", b"")


def test_unreachable_daemon_is_the_h2_transports_error(tmp_path: object) -> None:
    missing = Endpoint(unix="/nonexistent/servin.sock")
    with pytest.raises(StatusError) as quick:
        QuickChannel.connect(missing)
    channel = H2Channel(missing)
    with pytest.raises(StatusError) as full:
        channel.unary_unary("/servin.v1.System/Version", bytes, bytes)(b"")
    channel.close()
    assert (quick.value.code, quick.value.details) == (full.value.code, full.value.details)


def log_bytes(messages: Iterator[bytes]) -> bytes:
    return b"".join(containers_pb2.LogChunk.FromString(m).data for m in messages)


def test_server_stream_with_small_windows_is_complete(
    engine: DaemonProcess, chatty: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = containers_pb2.ContainerLogsRequest(id=chatty, stdout=True, stderr=True, tail=-1)
    # Small windows: the 3 MB arrive only if WINDOW_UPDATEs are sent as data is consumed.
    monkeypatch.setattr(wire, "STREAM_WINDOW", 65536)
    monkeypatch.setattr(wire, "CONNECTION_WINDOW", 131072)
    with QuickChannel.connect(endpoint(engine)) as channel:
        data = log_bytes(channel.stream("/servin.v1.Containers/Logs",
                                        request.SerializeToString(), timeout=60))
    lines = data.decode().splitlines()
    assert len(lines) == 30000 and lines[0].startswith("line-0-") and lines[-1].startswith(
        "line-29999-")


def test_stopping_a_stream_early_leaves_the_channel_usable(
    engine: DaemonProcess, chatty: str
) -> None:
    request = containers_pb2.ContainerLogsRequest(id=chatty, stdout=True, tail=-1)
    with QuickChannel.connect(endpoint(engine)) as channel:
        stream = channel.stream("/servin.v1.Containers/Logs", request.SerializeToString())
        first = next(stream)
        assert containers_pb2.LogChunk.FromString(first).data.startswith(b"line-0-")
        stream.close()  # type: ignore[attr-defined]  # a generator: resets the call
        assert channel.unary("/servin.v1.System/Version", b"")


def test_deadline_ends_a_stream_that_does_not(engine: DaemonProcess) -> None:
    with QuickChannel.connect(endpoint(engine)) as channel:
        with pytest.raises(StatusError) as caught:
            list(channel.stream("/servin.v1.System/Events", b"", timeout=0.3))
        assert caught.value.code == "DEADLINE_EXCEEDED"


# --- a scripted peer ------------------------------------------------------------------------


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream.to_bytes(4, "big") \
        + payload


class Peer:
    """The daemon's side of a socketpair, driven by a test's script in a thread."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.encoder = hpack_lib.Encoder()

    def read_frame(self) -> tuple[int, int, int, bytes]:
        while True:
            if len(self.buf) >= 9:
                size = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + size:
                    head, self.buf = self.buf[: 9 + size], self.buf[9 + size :]
                    return head[3], head[4], int.from_bytes(head[5:9], "big"), head[9:]
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.buf += data

    def read_request(self) -> list[tuple[int, int, int, bytes]]:
        """The preface and frames up to the request's END_STREAM."""
        while len(self.buf) < 24:
            self.buf += self.sock.recv(65536)
        assert self.buf.startswith(wire.PREFACE)
        self.buf = self.buf[24:]
        frames = []
        while True:
            f = self.read_frame()
            frames.append(f)
            if f[0] == wire.DATA and f[1] & wire.END_STREAM:
                return frames

    def headers(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        return bytes(self.encoder.encode(headers, huffman=True))


def scripted(script: Callable[[Peer], None]) -> tuple[QuickChannel, threading.Thread, list]:
    ours, theirs = socket.socketpair()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            script(Peer(theirs))
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            theirs.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return QuickChannel(ours, Endpoint(unix="/scripted")), thread, errors


def grpc_message(payload: bytes) -> bytes:
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def test_continuation_padding_ping_and_settings() -> None:
    seen: dict[str, object] = {}

    def script(peer: Peer) -> None:
        frames = peer.read_request()
        kinds = [f[0] for f in frames]
        assert kinds[0] == wire.SETTINGS and wire.HEADERS in kinds
        block = peer.headers([(b":status", b"200"), (b"content-type", b"application/grpc"),
                              (b"x-long", b"v" * 100)])
        message = grpc_message(b"hello world")
        padded = bytes((3,)) + message[:7] + b"\0\0\0"
        peer.sock.sendall(
            frame(wire.SETTINGS, 0, 0, (4).to_bytes(2, "big") + (1 << 20).to_bytes(4, "big"))
            + frame(wire.PING, 0, 0, b"12345678")
            + frame(wire.HEADERS, 0, 1, block[:10])
            + frame(wire.CONTINUATION, wire.END_HEADERS, 1, block[10:])
            + frame(wire.DATA, wire.PADDED, 1, padded)
            + frame(wire.DATA, 0, 1, message[7:])
            + frame(wire.HEADERS, wire.END_HEADERS | wire.END_STREAM, 1,
                    peer.headers([(b"grpc-status", b"0")]))
        )
        acks = []
        while len(acks) < 2:
            f = peer.read_frame()
            if f[1] & wire.ACK and f[0] in (wire.SETTINGS, wire.PING):
                acks.append((f[0], f[3]))
        seen["acks"] = acks

    channel, thread, errors = scripted(script)
    assert channel.unary("/x.Y/Z", b"req") == b"hello world"
    channel.close()
    thread.join(10)
    assert not errors, errors
    assert sorted(seen["acks"]) == [(wire.SETTINGS, b""), (wire.PING, b"12345678")]  # type: ignore[type-var]


@pytest.mark.parametrize(
    ("reply", "code", "details"),
    [
        ("trailers-only", "NOT_FOUND", "no such container: a b/ü"),
        ("reset", "UNAVAILABLE", "the daemon reset the call (REFUSED_STREAM)"),
        ("goaway", "UNAVAILABLE", "the daemon closed the connection (GOAWAY ENHANCE_YOUR_CALM)"),
        ("eof", "UNAVAILABLE", "socket closed"),
        ("http-503", "UNAVAILABLE", "the daemon answered HTTP 503"),
        ("no-status", "INTERNAL", "the daemon sent trailers without a status"),
    ],
)
def test_failed_calls(reply: str, code: str, details: str) -> None:
    def script(peer: Peer) -> None:
        peer.read_request()
        if reply == "trailers-only":
            peer.sock.sendall(frame(wire.HEADERS, wire.END_HEADERS | wire.END_STREAM, 1,
                                    peer.headers([(b":status", b"200"),
                                                  (b"content-type", b"application/grpc"),
                                                  (b"grpc-status", b"5"),
                                                  (b"grpc-message",
                                                   b"no such container: a%20b/%C3%BC")])))
        elif reply == "reset":
            peer.sock.sendall(frame(wire.RST_STREAM, 0, 1, (7).to_bytes(4, "big")))
        elif reply == "goaway":
            peer.sock.sendall(frame(wire.GOAWAY, 0, 0, bytes(4) + (0xB).to_bytes(4, "big")))
        elif reply == "http-503":
            peer.sock.sendall(frame(wire.HEADERS, wire.END_HEADERS | wire.END_STREAM, 1,
                                    peer.headers([(b":status", b"503")])))
        elif reply == "no-status":
            peer.sock.sendall(
                frame(wire.HEADERS, wire.END_HEADERS, 1,
                      peer.headers([(b":status", b"200"),
                                    (b"content-type", b"application/grpc")]))
                + frame(wire.HEADERS, wire.END_HEADERS | wire.END_STREAM, 1,
                        peer.headers([(b"x", b"y")])))
        # eof: just close

    channel, thread, errors = scripted(script)
    with pytest.raises(StatusError) as caught:
        channel.unary("/x.Y/Z", b"")
    thread.join(10)
    channel.close()
    assert not errors, errors
    assert (caught.value.code, caught.value.details) == (code, details)


def test_bidi_sends_more_and_half_closes() -> None:
    def echo(peer: Peer) -> None:
        while len(peer.buf) < 24:
            peer.buf += peer.sock.recv(65536)
        peer.buf = peer.buf[24:]
        got = b""
        while True:
            kind, flags, _stream, payload = peer.read_frame()
            if kind == wire.DATA:
                got += payload
                if payload:  # hand the window back, as a daemon does
                    update = len(payload).to_bytes(4, "big")
                    peer.sock.sendall(frame(wire.WINDOW_UPDATE, 0, 0, update)
                                      + frame(wire.WINDOW_UPDATE, 0, 1, update))
                if flags & wire.END_STREAM:
                    break
        messages = []
        while got:
            size = int.from_bytes(got[1:5], "big")
            messages.append(got[5 : 5 + size])
            got = got[5 + size :]
        body = b"".join(grpc_message(m.upper()) for m in messages)
        peer.sock.sendall(
            frame(wire.HEADERS, wire.END_HEADERS, 1,
                  peer.headers([(b":status", b"200"), (b"content-type", b"application/grpc")]))
            + frame(wire.DATA, 0, 1, body)
            + frame(wire.HEADERS, wire.END_HEADERS | wire.END_STREAM, 1,
                    peer.headers([(b"grpc-status", b"0")])))

    channel, thread, errors = scripted(echo)
    call = channel.bidi("/x.Y/Z", b"one", half_close=False)
    assert call.send(b"two")
    assert call.send(b"x" * 200_000)  # more than the initial window: waits for updates
    call.close_send()
    assert list(call) == [b"ONE", b"TWO", b"X" * 200_000]
    thread.join(10)
    channel.close()
    assert not errors, errors
