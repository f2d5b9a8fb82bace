"""Unit tests of the sans-I/O SPDY/3.1 module: framing, header compression, flow control,
stream states and malformed input."""

from __future__ import annotations

import contextlib
import struct
import zlib

import pytest

from servin.engine.server.cri.streaming import spdy
from servin.engine.server.cri.streaming.spdy import (
    DataReceived,
    PeerFlowControl,
    SpdyConnection,
    SpdyProtocolError,
    StreamClosed,
    StreamEnded,
    StreamOpened,
    StreamReplied,
    StreamReset,
    StreamState,
)


def pair(flow: PeerFlowControl = PeerFlowControl.STRICT) -> tuple[SpdyConnection, SpdyConnection]:
    return (SpdyConnection(client=True, peer_flow_control=flow),
            SpdyConnection(client=False, peer_flow_control=flow))


def pump(a: SpdyConnection, b: SpdyConnection) -> list:
    """Move a's pending bytes to b; return b's events."""
    return b.receive_data(a.data_to_send())


def test_dictionary_is_the_spec_dictionary() -> None:
    d = spdy.HEADER_DICTIONARY
    assert len(d) == 1423
    # zlib identifies a preset dictionary by its Adler-32: SPDY/3 header blocks all carry it.
    assert zlib.adler32(d) == 0xE3C6A7C2
    assert d.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert d.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")


def test_header_block_wire_format() -> None:
    c = spdy.HeaderCompressor()
    block = c.compress([("streamType", "error"), ("port", "80"), ("port", "81")])
    # zlib header with FDICT set and the dictionary's id.
    assert block[1] & 0x20
    assert block[2:6] == bytes.fromhex("e3c6a7c2")
    raw = zlib.decompressobj(zdict=spdy.HEADER_DICTIONARY).decompress(block)
    assert raw == (struct.pack(">I", 2)
                   + struct.pack(">I", 10) + b"streamtype" + struct.pack(">I", 5) + b"error"
                   + struct.pack(">I", 4) + b"port" + struct.pack(">I", 5) + b"80\x0081")


def test_control_frames_known_bytes() -> None:
    enc = spdy.encode_frame
    assert enc(spdy.PingFrame(1)) == bytes.fromhex("80030006 00000004 00000001")
    assert enc(spdy.WindowUpdateFrame(3, 0x10000)) == bytes.fromhex(
        "80030009 00000008 00000003 00010000")
    assert enc(spdy.RstStreamFrame(5, spdy.RstStatus.CANCEL)) == bytes.fromhex(
        "80030003 00000008 00000005 00000005")
    assert enc(spdy.GoAwayFrame(7, 0)) == bytes.fromhex("80030007 00000008 00000007 00000000")
    assert enc(spdy.DataFrame(1, b"hi", spdy.FLAG_FIN)) == bytes.fromhex("00000001 01000002 6869")
    assert enc(spdy.SettingsFrame([(spdy.SettingId.INITIAL_WINDOW_SIZE, 1 << 20, 0)])) == \
        bytes.fromhex("80030004 0000000c 00000001 00000007 00100000")


def test_every_frame_round_trips() -> None:
    comp = spdy.HeaderCompressor()
    frames = [
        spdy.SynStreamFrame(1, [("streamtype", "stdin"), ("x", "a"), ("x", "b")], 0, 3, 0,
                            spdy.FLAG_UNIDIRECTIONAL),
        spdy.SynReplyFrame(1, [("status", "200")], spdy.FLAG_FIN),
        spdy.HeadersFrame(1, [("a", "")]),
        spdy.DataFrame(1, b"x" * 70000),
        spdy.RstStreamFrame(1, 7),
        spdy.SettingsFrame([(4, 100, 1), (7, 1 << 16, 0)], spdy.FLAG_SETTINGS_CLEAR),
        spdy.PingFrame(0xFFFFFFFF),
        spdy.GoAwayFrame(9, 2),
        spdy.WindowUpdateFrame(0, 12345),
        spdy.UnknownControlFrame(10, b"credential"),
    ]
    wire = b"".join(spdy.encode_frame(f, comp) for f in frames)
    reader = spdy.FrameReader()
    got = []
    for i in range(0, len(wire), 7):  # byte-by-byte-ish delivery
        reader.feed(wire[i:i + 7])
        got.extend(reader.frames())
    assert got == frames


def test_open_reply_data_fin_both_ways() -> None:
    cli, srv = pair()
    sid = cli.open_stream([("streamtype", "stdout")])
    ev = pump(cli, srv)
    assert ev == [StreamOpened(sid, [("streamtype", "stdout")], False, False, 0, 0)]
    srv.reply(sid)
    assert isinstance(pump(srv, cli)[0], StreamReplied)
    cli.send_data(sid, b"hello", fin=True)
    ev = pump(cli, srv)
    assert ev == [DataReceived(sid, b"hello", True), StreamEnded(sid)]
    assert srv.stream_state(sid) is StreamState.HALF_CLOSED_REMOTE
    assert cli.stream_state(sid) is StreamState.HALF_CLOSED_LOCAL
    srv.send_data(sid, b"bye")
    srv.end_stream(sid)
    assert srv.stream_state(sid) is StreamState.CLOSED
    ev = pump(srv, cli)
    assert ev == [DataReceived(sid, b"bye", False), StreamEnded(sid), StreamClosed(sid)]
    assert cli.open_stream_ids() == [] and srv.open_stream_ids() == []


def test_stream_ids_are_odd_for_clients_and_increase() -> None:
    cli, srv = pair()
    assert [cli.open_stream([]) for _ in range(3)] == [1, 3, 5]
    pump(cli, srv)
    # The server's own streams are even.
    assert srv.open_stream([]) == 2


def test_sending_after_fin_is_refused() -> None:
    cli, srv = pair()
    sid = cli.open_stream([], fin=True)
    with pytest.raises(spdy.SpdyStreamError):
        cli.send_data(sid, b"x")
    ev = pump(cli, srv)
    assert isinstance(ev[0], StreamOpened) and ev[0].fin and ev[1] == StreamEnded(sid)


def test_data_after_peer_fin_resets_the_stream() -> None:
    cli, srv = pair()
    sid = cli.open_stream([])
    pump(cli, srv)
    cli.end_stream(sid)
    pump(cli, srv)
    # A misbehaving peer sends more data on the half-closed stream.
    raw = spdy.encode_frame(spdy.DataFrame(sid, b"late"))
    ev = srv.receive_data(raw)
    assert ev == [StreamReset(sid, spdy.RstStatus.STREAM_ALREADY_CLOSED, remote=False)]
    rst = spdy.FrameReader()
    rst.feed(srv.data_to_send())
    assert list(rst.frames()) == [spdy.RstStreamFrame(sid, spdy.RstStatus.STREAM_ALREADY_CLOSED)]


def test_data_for_unknown_stream_is_invalid_stream() -> None:
    _, srv = pair()
    ev = srv.receive_data(spdy.encode_frame(spdy.DataFrame(41, b"x")))
    assert ev == []
    r = spdy.FrameReader()
    r.feed(srv.data_to_send())
    assert list(r.frames()) == [spdy.RstStreamFrame(41, spdy.RstStatus.INVALID_STREAM)]


def test_peer_reset() -> None:
    cli, srv = pair()
    sid = cli.open_stream([])
    pump(cli, srv)
    srv.reset_stream(sid, spdy.RstStatus.REFUSED_STREAM)
    assert pump(srv, cli) == [StreamReset(sid, spdy.RstStatus.REFUSED_STREAM, remote=True)]
    assert cli.open_stream_ids() == []


def test_ping_is_answered_and_reply_recognised() -> None:
    cli, srv = pair()
    pid = cli.ping()
    assert pid == 1
    assert pump(cli, srv) == [spdy.PingReceived(1, is_reply=False)]
    assert pump(srv, cli) == [spdy.PingReceived(1, is_reply=True)]
    assert srv.data_to_send() == b""


def test_goaway_refuses_new_streams() -> None:
    cli, srv = pair()
    srv.goaway()
    assert pump(srv, cli) == [spdy.GoAwayReceived(0, 0)]
    cli.open_stream([])
    assert pump(cli, srv) == []
    r = spdy.FrameReader()
    r.feed(srv.data_to_send())
    assert list(r.frames()) == [spdy.RstStreamFrame(1, spdy.RstStatus.REFUSED_STREAM)]


# --- flow control -------------------------------------------------------------------------


def test_strict_sender_stops_at_the_initial_window() -> None:
    cli, srv = pair()
    sid = cli.open_stream([])
    pump(cli, srv)
    assert cli.send_window(sid) == 65536
    cli.send_data(sid, b"a" * 65536)
    assert cli.send_window(sid) == 0
    with pytest.raises(spdy.FlowControlBlocked):
        cli.send_data(sid, b"b")
    ev = pump(cli, srv)
    assert sum(len(e.data) for e in ev if isinstance(e, DataReceived)) == 65536
    # Consuming the data reopens both windows with WINDOW_UPDATE frames.
    srv.acknowledge_data(sid, 65536)
    ev = pump(srv, cli)
    assert spdy.WindowUpdated(0, 65536) in ev and spdy.WindowUpdated(sid, 65536) in ev
    assert cli.send_window(sid) == 65536


def test_session_window_is_shared_by_streams() -> None:
    cli, srv = pair()
    a = cli.open_stream([])
    b = cli.open_stream([])
    pump(cli, srv)
    cli.send_data(a, b"x" * 40000)
    assert cli.send_window(b) == 65536 - 40000
    pump(cli, srv)
    srv.acknowledge_data(a, 40000)
    pump(srv, cli)
    assert cli.send_window(b) == 65536


def test_overrun_of_a_stream_window_is_a_flow_control_error() -> None:
    cli, srv = pair()
    sid = cli.open_stream([])
    pump(cli, srv)
    srv.update_settings({spdy.SettingId.INITIAL_WINDOW_SIZE: 1000})
    pump(srv, cli)
    # Hand-made frame bigger than the window the server announced.
    big = spdy.encode_frame(spdy.DataFrame(sid, b"z" * 1500))
    ev = srv.receive_data(big)
    # The stream was opened before the setting: its window was 64 KiB, so this one passes...
    assert isinstance(ev[0], DataReceived)
    sid2 = cli.open_stream([])
    pump(cli, srv)
    ev = srv.receive_data(spdy.encode_frame(spdy.DataFrame(sid2, b"z" * 1500)))
    assert ev == [StreamReset(sid2, spdy.RstStatus.FLOW_CONTROL_ERROR, remote=False)]


def test_settings_initial_window_adjusts_open_streams() -> None:
    cli, srv = pair()
    sid = cli.open_stream([])
    pump(cli, srv)
    srv.update_settings({spdy.SettingId.INITIAL_WINDOW_SIZE: 1 << 20})
    pump(srv, cli)
    assert cli.send_window(sid) == 65536  # the session window still limits
    assert cli._streams[sid].send_window == 1 << 20


def test_auto_mode_ignores_windows_of_a_peer_without_flow_control() -> None:
    # A Kubernetes (spdystream) client: never sends WINDOW_UPDATE.
    cli = SpdyConnection(client=True, peer_flow_control=PeerFlowControl.AUTO)
    srv = SpdyConnection(client=False, peer_flow_control=PeerFlowControl.AUTO)
    sid = cli.open_stream([])
    pump(cli, srv)
    srv.reply(sid)
    pump(srv, cli)
    for _ in range(10):
        srv.send_data(sid, b"q" * 65536)  # 640 KiB, well past 64 KiB
    ev = pump(srv, cli)
    assert sum(len(e.data) for e in ev if isinstance(e, DataReceived)) == 655360
    assert not srv.peer_flow_control


def test_auto_mode_becomes_strict_once_the_peer_shows_flow_control() -> None:
    cli = SpdyConnection(client=True, peer_flow_control=PeerFlowControl.STRICT)
    srv = SpdyConnection(client=False, peer_flow_control=PeerFlowControl.AUTO)
    cli.update_settings({spdy.SettingId.INITIAL_WINDOW_SIZE: 65536})
    sid = cli.open_stream([])
    pump(cli, srv)
    assert srv.peer_flow_control
    srv.send_data(sid, b"q" * 65536)
    with pytest.raises(spdy.FlowControlBlocked):
        srv.send_data(sid, b"q")


# --- malformed input ----------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    bytes.fromhex("80020006 00000004 00000001"),            # SPDY/2
    bytes.fromhex("80030006 00000005 0000000100"),          # PING of 5 bytes
    bytes.fromhex("80030003 00000004 00000001"),            # short RST_STREAM
    bytes.fromhex("80030004 00000008 00000002 00000007"),   # SETTINGS count lies
    bytes.fromhex("80030001 0000000e 00000001 00000000 0000 deadbeef"),  # bad zlib
    bytes.fromhex("80030001 0000000a 00000002 00000000 0000"),  # even id from a client
    bytes.fromhex("80030009 00000008 00000000 00000000"),   # zero session window update
    bytes.fromhex("80030003 00000008 00000000 00000001"),   # RST_STREAM of stream 0
])
def test_malformed_frames_are_protocol_errors(raw: bytes) -> None:
    srv = SpdyConnection(client=False)
    with pytest.raises(SpdyProtocolError):
        srv.receive_data(raw)
    assert srv.closed
    r = spdy.FrameReader()
    r.feed(srv.data_to_send())
    frames = list(r.frames())
    assert isinstance(frames[-1], spdy.GoAwayFrame) and frames[-1].status == 1
    assert srv.receive_data(b"anything") == []  # a closed session ignores the rest


def test_header_block_errors_are_protocol_errors() -> None:
    for raw in (b"\x00\x00", struct.pack(">I", 1) + struct.pack(">I", 0) + struct.pack(">I", 0),
                struct.pack(">I", 2) + (struct.pack(">I", 1) + b"a" + struct.pack(">I", 0)) * 2,
                struct.pack(">I", 1) + struct.pack(">I", 99) + b"abc"):
        with pytest.raises(SpdyProtocolError):
            spdy.decode_header_block(raw)


def test_a_zlib_bomb_is_refused() -> None:
    z = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, spdy.HEADER_DICTIONARY)
    block = z.compress(struct.pack(">I", 1) + struct.pack(">I", 1) + b"a"
                       + struct.pack(">I", 10_000_000) + b"a" * 10_000_000)
    block += z.flush(zlib.Z_SYNC_FLUSH)
    frame = struct.pack(">HHI", 0x8003, 1, len(block) + 10) + struct.pack(">IIH", 1, 0, 0) + block
    with pytest.raises(SpdyProtocolError, match="larger than"):
        SpdyConnection(client=False).receive_data(frame)


def test_random_garbage_never_crashes() -> None:
    import random

    rnd = random.Random(17)
    for _ in range(300):
        srv = SpdyConnection(client=False)
        data = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 64)))
        if rnd.random() < 0.5:
            data = b"\x80\x03" + data  # mostly control frames
        with contextlib.suppress(SpdyProtocolError):
            srv.receive_data(data)


def test_frame_too_large_for_the_reader_limit() -> None:
    srv = SpdyConnection(client=False, max_frame_payload=1024)
    with pytest.raises(SpdyProtocolError, match="exceeds"):
        srv.receive_data(struct.pack(">II", 1, 4096))
