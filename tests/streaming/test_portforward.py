"""Port-forward to servers inside a network namespace: SPDY, WebSocket channels, SPDY tunnelled
in a WebSocket."""

from __future__ import annotations

import asyncio
import struct

import pytest

from servin.engine.server.cri.streaming import PortForwardRequest
from tests.streaming.clients import (
    SpdyClient,
    SpdyStreamReset,
    WsChannels,
    WsClient,
    WsPipe,
)
from tests.streaming.conftest import serving, settle
from tests.streaming.hostbackend import HostProcessBackend
from tests.streaming.netns import NetnsPod

GET = b"GET / HTTP/1.0\r\n\r\n"


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 60))


def backend(pod: NetnsPod) -> HostProcessBackend:
    b = HostProcessBackend()
    b.add_pod("pod1", pod.netns_path)
    return b


async def pf_pair(client: SpdyClient, port: int, request_id: int | None):
    """Open the error then the data stream of one forwarded connection."""
    headers = {"port": str(port)}
    if request_id is not None:
        headers["requestID"] = str(request_id)
    error = await client.open_stream({**headers, "streamType": "error"})
    data = await client.open_stream({**headers, "streamType": "data"})
    return data, error


async def spdy_session_checks(client: SpdyClient) -> None:
    # Two connections at once on one session: HTTP and echo (with a half-close).
    (h_data, h_err), (e_data, e_err) = await asyncio.gather(
        pf_pair(client, 8080, 0), pf_pair(client, 7000, 1))
    await h_data.write(GET)
    await e_data.write(b"ping " * 1000)
    await e_data.close()
    http, echo = await asyncio.gather(h_data.read_all(), e_data.read_all())
    assert http.startswith(b"HTTP/1.0 200") and http.endswith(b"hello from the pod\n")
    assert echo == b"ping " * 1000
    assert await h_err.read_all() == b"" and await e_err.read_all() == b""
    # A kubelet-era client without requestID: the error stream N pairs with data N+2.
    data, err = await pf_pair(client, 8080, None)
    await data.write(GET)
    assert (await data.read_all()).endswith(b"hello from the pod\n")
    # A closed port: the error stream says why, both streams are reset.
    data, err = await pf_pair(client, 1, 7)
    assert b"error forwarding port 1 to pod pod1" in await err.read_all()
    assert err.reset is not None


def test_spdy_port_forward(pod: NetnsPod) -> None:
    async def go() -> None:
        async with serving(backend(pod)) as srv:
            url = srv.get_port_forward(PortForwardRequest("pod1"))
            client, proto = await SpdyClient.connect(url, ["portforward.k8s.io"])
            assert proto == "portforward.k8s.io"
            await spdy_session_checks(client)
            # Streams without a usable port header are refused one by one, the session stays.
            bad = await client.open_stream({"streamType": "data"}, wait_reply=False)
            with pytest.raises(SpdyStreamReset):
                await bad.replied
            assert (await bad.read_all(), bad.reset) == (b"", 3)  # REFUSED_STREAM
            await client.close()
            await settle(srv)
    run(go())




def test_spdy_tunnelled_in_a_websocket(pod: NetnsPod) -> None:
    async def go() -> None:
        async with serving(backend(pod)) as srv:
            url = srv.get_port_forward(PortForwardRequest("pod1"))
            ws = await WsClient.connect(url, ["SPDY/3.1+portforward.k8s.io"])
            assert ws.subprotocol == "SPDY/3.1+portforward.k8s.io"
            pipe = WsPipe(ws)
            client = SpdyClient(pipe.reader, pipe, flow_control=False)  # type: ignore[arg-type]
            await spdy_session_checks(client)
            await client.close()
            await settle(srv)
    run(go())


def test_websocket_channels_port_forward(pod: NetnsPod) -> None:
    async def go() -> None:
        async with serving(backend(pod)) as srv:
            for proto, b64 in (("v4.channel.k8s.io", False), ("portforward.k8s.io", False),
                               ("v4.base64.channel.k8s.io", True)):
                url = srv.get_port_forward(PortForwardRequest("pod1", (8080, 7000)))
                ws = await WsClient.connect(url, [proto])
                assert ws.subprotocol == proto
                ch = WsChannels(ws, base64_codec=b64)
                # Each channel of each port starts with the port, 2 bytes little-endian.
                for number, port in ((0, 8080), (1, 8080), (2, 7000), (3, 7000)):
                    first = await asyncio.wait_for(ch.queue(number).get(), 10)
                    assert first == struct.pack("<H", port)
                await ch.send(0, GET)
                await ch.send(2, b"echo me")
                await ch.read_until(2, b"echo me")
                assert (await ch.read_until(0, b"hello from the pod\n")).startswith(b"HTTP/1.0")
                await ws.close()
            await settle(srv)
    run(go())


def test_websocket_port_forward_errors(pod: NetnsPod) -> None:
    async def go() -> None:
        async with serving(backend(pod)) as srv:
            # The ports may come in the query when the request named none (kubelet style).
            url = srv.get_port_forward(PortForwardRequest("pod1")) + "?port=1"
            ws = await WsClient.connect(url, [])
            assert ws.subprotocol == ""
            ch = WsChannels(ws)
            await asyncio.wait_for(ch.done.wait(), 10)
            assert ch.drain(1).startswith(struct.pack("<H", 1) + b"error forwarding port 1")
    run(go())
