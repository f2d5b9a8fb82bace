"""The streaming server's HTTP side: single-use expiring tokens, refusals, timeouts, cleanup,
TLS, and robustness against broken clients."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

import pytest

from servin.engine.server.cri.streaming import (
    AttachRequest,
    ExecRequest,
    PortForwardRequest,
    StreamingConfig,
    StreamingServer,
)
from servin.errors import InvalidArgument, ResourceExhausted
from tests.streaming.clients import HttpRefused, SpdyClient, WsChannels, WsClient
from tests.streaming.conftest import serving, settle
from tests.streaming.hostbackend import HostProcessBackend

V4 = ["v4.channel.k8s.io"]


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 60))


def backend() -> HostProcessBackend:
    b = HostProcessBackend()
    b.add_container("c1")
    return b


async def echo_once(url: str) -> bytes:
    client, _ = await SpdyClient.connect(url, V4)
    error = await client.open_stream({"streamType": "error"})
    out = await client.open_stream({"streamType": "stdout"})
    await client.open_stream({"streamType": "stderr"})
    data = await out.read_all()
    assert await error.read_all() == b'{"metadata":{},"status":"Success"}'
    await client.close()
    return data


def test_urls_are_absolute_and_tokens_single_use() -> None:
    async def go() -> None:
        async with serving(backend()) as srv:
            url = srv.get_exec(ExecRequest("c1", ("echo", "hi")))
            assert url.startswith(f"http://127.0.0.1:{srv.base_url.rsplit(':', 1)[1]}/exec/")
            assert await echo_once(url) == b"hi\n"
            for transport in ("spdy", "ws"):
                with pytest.raises(HttpRefused) as info:
                    if transport == "spdy":
                        await SpdyClient.connect(url, V4)
                    else:
                        await WsClient.connect(url, V4)
                assert info.value.status == 404
    run(go())


def test_expired_token_is_refused() -> None:
    async def go() -> None:
        async with serving(backend(), token_ttl=0.2) as srv:
            url = srv.get_exec(ExecRequest("c1", ("echo", "hi")))
            await asyncio.sleep(0.4)
            with pytest.raises(HttpRefused) as info:
                await SpdyClient.connect(url, V4)
            assert info.value.status == 404
            assert len(srv.cache) == 0
    run(go())


def test_refusals() -> None:
    async def go() -> None:
        async with serving(backend()) as srv:
            base = srv.base_url

            def fresh() -> str:
                return srv.get_exec(ExecRequest("c1", ("true",)))

            # A token of another kind, or a path the server does not serve.
            token = fresh().rsplit("/", 1)[1]
            for path in (f"/attach/{token}", "/exec", "/logs/x", f"/exec/{token}/x"):
                with pytest.raises(HttpRefused) as info:
                    await SpdyClient.connect(base + path, V4)
                assert info.value.status == 404, path
            # Protocol negotiation: missing header 400, nothing in common 403 (+ what we accept).
            with pytest.raises(HttpRefused) as info:
                await SpdyClient.connect(fresh(), [])
            assert info.value.status == 400
            with pytest.raises(HttpRefused) as info:
                await SpdyClient.connect(fresh(), ["v9.channel.k8s.io"])
            assert info.value.status == 403
            assert "v4.channel.k8s.io" in info.value.headers["x-accepted-stream-protocol-versions"]
            with pytest.raises(HttpRefused) as info:
                await WsClient.connect(fresh(), ["v9.channel.k8s.io"])
            assert info.value.status == 403
            # A port-forward URL negotiates portforward.k8s.io only.
            with pytest.raises(HttpRefused) as info:
                await SpdyClient.connect(srv.get_port_forward(PortForwardRequest("p")), V4)
            assert info.value.status == 403
            # A plain request (no upgrade) is a bad request.
            reader, writer = await asyncio.open_connection("127.0.0.1", int(base.rsplit(":")[-1]))
            writer.write(f"GET /exec/{fresh().rsplit('/', 1)[1]} HTTP/1.1\r\nHost: x\r\n"
                         "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n".encode())
            assert (await reader.read()).startswith(b"HTTP/1.1 400 ")
            writer.close()
            # Other methods.
            reader, writer = await asyncio.open_connection("127.0.0.1", int(base.rsplit(":")[-1]))
            writer.write(f"PUT /exec/{token} HTTP/1.1\r\nHost: x\r\n"
                         "Content-Length: 0\r\n\r\n".encode())
            assert (await reader.read()).startswith(b"HTTP/1.1 405 ")
            writer.close()
    run(go())


def test_request_validation_and_in_flight_limit() -> None:
    srv = StreamingServer(backend(), StreamingConfig(port=0, max_in_flight=2))
    srv.base_url = "http://127.0.0.1:1"
    with pytest.raises(InvalidArgument, match="tty and stderr"):
        srv.get_exec(ExecRequest("c1", ("sh",), tty=True, stderr=True))
    with pytest.raises(InvalidArgument, match="one of stdin"):
        srv.get_attach(AttachRequest("c1", stdout=False, stderr=False))
    with pytest.raises(InvalidArgument, match="container_id"):
        srv.get_exec(ExecRequest("", ("sh",)))
    with pytest.raises(InvalidArgument, match="cmd"):
        srv.get_exec(ExecRequest("c1", ()))
    with pytest.raises(InvalidArgument, match="pod_sandbox_id"):
        srv.get_port_forward(PortForwardRequest(""))
    with pytest.raises(InvalidArgument, match="port"):
        srv.get_port_forward(PortForwardRequest("p", (0,)))
    srv.get_exec(ExecRequest("c1", ("true",)))
    srv.get_port_forward(PortForwardRequest("p"))
    with pytest.raises(ResourceExhausted):
        srv.get_attach(AttachRequest("c1"))


@pytest.mark.parametrize("transport", ["spdy", "ws"])
def test_vanished_client_leaves_no_process(transport: str) -> None:
    async def go() -> None:
        b = backend()
        async with serving(b) as srv:
            url = srv.get_exec(ExecRequest("c1", ("sh", "-c", "echo started; exec sleep 1000"),
                                           stdin=True))
            if transport == "spdy":
                client, _ = await SpdyClient.connect(url, V4)
                for name in ("error", "stdin", "stdout", "stderr"):
                    stream = await client.open_stream({"streamType": name})
                    if name == "stdout":
                        out = stream
                assert await out.read() == b"started\n"
                session = next(iter(b.sessions))
                client.abort()
            else:
                ws = await WsClient.connect(url, ["v5.channel.k8s.io"])
                ch = WsChannels(ws)
                await ch.read_until(1, b"started")
                session = next(iter(b.sessions))
                ws.abort()
            await settle(srv)
            assert b.killed == 1 and not b.sessions
            assert not session.process.running()
    run(go())


def test_stopping_the_server_ends_sessions() -> None:
    async def go() -> None:
        b = backend()
        srv = StreamingServer(b, StreamingConfig(port=0))
        await srv.start()
        url = srv.get_exec(ExecRequest("c1", ("sh", "-c", "echo up; exec sleep 1000")))
        ws = await WsClient.connect(url, ["v5.channel.k8s.io"])
        ch = WsChannels(ws)
        await ch.read_until(1, b"up")
        await srv.stop()
        await asyncio.wait_for(ch.done.wait(), 10)
        assert b.killed == 1 and not b.sessions and srv.active_connections == 0
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", int(url.split(":")[2].split("/")[0]))
    run(go())


def test_idle_and_session_timeouts_end_sessions() -> None:
    async def go() -> None:
        b = backend()
        async with serving(b, idle_timeout=0.3) as srv:
            url = srv.get_exec(ExecRequest("c1", ("sleep", "1000"), stdin=True))
            client, _ = await SpdyClient.connect(url, V4)
            for name in ("error", "stdin", "stdout", "stderr"):
                await client.open_stream({"streamType": name})
            await asyncio.wait_for(client.closed.wait(), 10)
            await settle(srv)
            assert b.killed == 1
        b = backend()
        async with serving(b, session_timeout=0.5) as srv:
            # Busy (never idle), yet ended at the total limit.
            url = srv.get_exec(ExecRequest("c1", ("sh", "-c", "while :; do echo x; sleep 0.02; "
                                                            "done")))
            ws = await WsClient.connect(url, ["v4.channel.k8s.io"])
            ch = WsChannels(ws)
            await asyncio.wait_for(ch.done.wait(), 10)
            assert ch.drain(1).startswith(b"x\n")
            await settle(srv)
            assert b.killed == 1
    run(go())


def test_streams_not_opened_in_time() -> None:
    async def go() -> None:
        b = backend()
        async with serving(b, stream_creation_timeout=0.3) as srv:
            url = srv.get_exec(ExecRequest("c1", ("true",)))
            client, _ = await SpdyClient.connect(url, V4)
            await client.open_stream({"streamType": "error"})  # stdout and stderr never come
            await asyncio.wait_for(client.closed.wait(), 10)
            await settle(srv)
            assert b.closed_sessions == 0  # nothing was started
    run(go())


def test_broken_clients_do_not_hurt_the_server() -> None:
    async def go() -> None:
        async with serving(backend(), request_timeout=0.3) as srv:
            port = int(srv.base_url.rsplit(":", 1)[1])
            # Garbage after the SPDY upgrade: GOAWAY(PROTOCOL_ERROR), connection closed.
            url = srv.get_exec(ExecRequest("c1", ("true",)))
            client, _ = await SpdyClient.connect(url, V4)
            client.writer.write(b"\x80\x03\x00\x06\x00\x00\x00\x09garbage!!")
            await asyncio.wait_for(client.closed.wait(), 10)
            assert client.goaway == (0, 1)
            # Not HTTP at all, and a client that says nothing.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"\x16\x03\x01 not http\r\n\r\n")
            await asyncio.wait_for(reader.read(), 10)
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()
            # Huge headers.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /exec/x HTTP/1.1\r\nX: " + b"a" * 200_000 + b"\r\n\r\n")
            await asyncio.wait_for(reader.read(), 10)
            writer.close()
            await settle(srv)
            # Still serving.
            assert await echo_once(srv.get_exec(ExecRequest("c1", ("echo", "ok")))) == b"ok\n"
    run(go())


def test_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)

    async def go() -> None:
        async with serving(backend(), tls_cert=str(cert), tls_key=str(key)) as srv:
            url = srv.get_exec(ExecRequest("c1", ("echo", "secure")))
            assert url.startswith("https://127.0.0.1:")
            ctx = ssl.create_default_context(cafile=str(cert))
            client, _ = await SpdyClient.connect(url, V4, ssl=ctx)
            error = await client.open_stream({"streamType": "error"})
            out = await client.open_stream({"streamType": "stdout"})
            await client.open_stream({"streamType": "stderr"})
            assert await out.read_all() == b"secure\n"
            assert b"Success" in await error.read_all()
            await client.close()
    run(go())
    with pytest.raises(InvalidArgument, match="certificate"):
        asyncio.run(StreamingServer(backend(), StreamingConfig(
            port=0, tls_cert=str(key), tls_key=str(cert))).start())


def test_random_frames_after_the_upgrade() -> None:
    """Random control and data frames (some well-formed, most not) from many clients: every
    connection ends or goes on cleanly, nothing is logged as an error, the server still works."""
    import random
    import struct

    rnd = random.Random(1717)

    def frame() -> bytes:
        if rnd.random() < 0.5:
            ftype = rnd.choice([1, 2, 3, 4, 6, 7, 8, 9, 10, 99])
            payload = bytes(rnd.getrandbits(8) for _ in range(rnd.choice([0, 4, 8, 12, 30])))
            return struct.pack(">HHI", 0x8003, ftype, (rnd.choice([0, 1, 2]) << 24)
                               | len(payload)) + payload
        payload = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 40)))
        return struct.pack(">II", rnd.randint(0, 9), (rnd.choice([0, 1]) << 24)
                           | len(payload)) + payload

    async def go() -> None:
        async with serving(backend(), stream_creation_timeout=0.5) as srv:
            for i in range(40):
                url = (srv.get_exec(ExecRequest("c1", ("true",))) if i % 2 else
                       srv.get_port_forward(PortForwardRequest("p")))
                proto = V4 if i % 2 else ["portforward.k8s.io"]
                client, _ = await SpdyClient.connect(url, proto)
                client.writer.write(b"".join(frame() for _ in range(rnd.randint(1, 12))))
                await client.writer.drain()
                await asyncio.sleep(0.01)
                client.abort()
            await settle(srv)
            assert await echo_once(srv.get_exec(ExecRequest("c1", ("echo", "ok")))) == b"ok\n"
    run(go())
