"""Unit tests of the streaming server's small parts: tokens, resize messages, outcomes,
protocol negotiation."""

from __future__ import annotations

import json

import pytest

from servin.engine.server.cri.streaming import remotecommand as rc
from servin.engine.server.cri.streaming.server import HttpRefusal, negotiate_stream_protocol
from servin.engine.server.cri.streaming.tokens import RequestCache
from servin.engine.server.cri.streaming.wssession import accept_key
from servin.errors import ResourceExhausted


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_tokens_are_single_use_and_expire() -> None:
    clock = Clock()
    cache: RequestCache[str] = RequestCache(ttl=60, max_in_flight=3, clock=clock)
    a, b = cache.insert("a"), cache.insert("b")
    assert a != b and len(a) >= 20 and a.replace("-", "").replace("_", "").isalnum()
    assert cache.consume(a) == "a"
    assert cache.consume(a) is None  # spent
    assert cache.consume("made-up") is None
    clock.now += 61
    assert cache.consume(b) is None  # expired
    assert len(cache) == 0
    for _ in range(3):
        cache.insert("x")
    with pytest.raises(ResourceExhausted):
        cache.insert("y")
    clock.now += 61  # expired entries free their places
    cache.insert("y")


def test_resize_decoder() -> None:
    d = rc.ResizeDecoder()
    assert d.feed(b'{"Width":80,') == []
    assert d.feed(b'"Height":24}\n{"width":1,"height":2}{"Width":') == [(80, 24), (1, 2)]
    assert d.feed(b'3,"Height":4}') == [(3, 4)]
    assert d.feed(b'{"Width":-1,"Height":4}["x"]{"Width":70000,"Height":1}') == []
    with pytest.raises(ValueError):
        d.feed(b"{" * 70000)


def test_outcomes_per_version() -> None:
    ok = rc.Outcome(True)
    assert ok.encode(True) == b'{"metadata":{},"status":"Success"}'
    assert ok.encode(False) == b""
    bad = rc.exit_outcome(2, ["ls", "/nope"])
    assert json.loads(bad.encode(True)) == {
        "metadata": {}, "status": "Failure",
        "message": "command terminated with non-zero exit code: error executing command "
                   "[ls /nope], exit code 2",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "2"}]}}
    assert bad.encode(False) == bad.message.encode()
    internal = rc.internal_outcome("boom")
    assert json.loads(internal.encode(True))["code"] == 500
    assert rc.exit_outcome(0, ["true"]).success


def test_expected_streams_follow_the_kubelet() -> None:
    kw = {"stdin": True, "stdout": True, "stderr": False, "tty": True}
    assert rc.expected_streams(rc.V4, **kw) == 4  # error, stdin, stdout, resize
    assert rc.expected_streams(rc.V2, **kw) == 3  # no resize before v3
    assert rc.expected_streams(rc.V1, stdin=False, stdout=True, stderr=True, tty=False) == 3


def test_negotiation() -> None:
    assert negotiate_stream_protocol(["v2.channel.k8s.io, v4.channel.k8s.io"],
                                     rc.SPDY_PROTOCOLS) == "v2.channel.k8s.io"
    assert negotiate_stream_protocol(["x", "channel.k8s.io"], rc.SPDY_PROTOCOLS) == \
        "channel.k8s.io"
    with pytest.raises(HttpRefusal) as info:
        negotiate_stream_protocol([" , "], rc.SPDY_PROTOCOLS)
    assert info.value.status == 400


def test_websocket_accept_key() -> None:
    # The example of RFC 6455 section 1.3.
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
