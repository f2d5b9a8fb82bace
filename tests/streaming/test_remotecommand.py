"""Exec and attach through the streaming server, over SPDY and WebSocket, protocols v1 to v5."""

from __future__ import annotations

import asyncio
import json

import pytest

from servin.engine.server.cri.streaming import AttachRequest, ExecRequest
from tests.streaming.clients import SpdyClient, WsChannels, WsClient
from tests.streaming.conftest import serving, settle
from tests.streaming.hostbackend import HostProcessBackend

EXIT3 = ("sh", "-c", "echo out; echo err >&2; exit 3")
EXIT3_STATUS = {
    "metadata": {}, "status": "Failure",
    "message": "command terminated with non-zero exit code: error executing command "
               "[sh -c echo out; echo err >&2; exit 3], exit code 3",
    "reason": "NonZeroExitCode",
    "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
}


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 60))


def backend() -> HostProcessBackend:
    b = HostProcessBackend()
    b.add_container("c1")
    return b


async def spdy_streams(client: SpdyClient, names: list[str]) -> dict:
    # The error stream first, as client-go does.
    return {n: await client.open_stream({"streamType": n}) for n in names}


# --- SPDY ---------------------------------------------------------------------------------


def test_spdy_v4_exit_code_is_a_status_json() -> None:
    async def go() -> None:
        async with serving(backend()) as srv:
            url = srv.get_exec(ExecRequest("c1", EXIT3))
            client, proto = await SpdyClient.connect(url, ["v4.channel.k8s.io",
                                                           "v3.channel.k8s.io"])
            assert proto == "v4.channel.k8s.io"
            s = await spdy_streams(client, ["error", "stdout", "stderr"])
            assert await s["stdout"].read_all() == b"out\n"
            assert await s["stderr"].read_all() == b"err\n"
            raw = await s["error"].read_all()
            # The exact bytes the kubelet writes (Go's compact JSON of metav1.Status).
            assert raw == json.dumps(EXIT3_STATUS, separators=(",", ":")).encode()
            await client.close()
            await settle(srv)
    run(go())


@pytest.mark.parametrize("flow_control", [False, True])
def test_spdy_stdin_round_trip_and_success(flow_control: bool) -> None:
    payload = bytes(range(256)) * 2048  # 512 KiB: well past the 64 KiB initial window

    async def go() -> None:
        async with serving(backend()) as srv:
            url = srv.get_exec(ExecRequest("c1", ("cat",), stdin=True, stderr=False))
            client, _ = await SpdyClient.connect(url, ["v4.channel.k8s.io"],
                                                 flow_control=flow_control)
            s = await spdy_streams(client, ["error", "stdin", "stdout"])

            async def feed() -> None:
                await s["stdin"].write(payload)
                await s["stdin"].close()

            feeder = asyncio.create_task(feed())
            assert await s["stdout"].read_all() == payload
            await feeder
            assert await s["error"].read_all() == b'{"metadata":{},"status":"Success"}'
            await client.close()
    run(go())


@pytest.mark.parametrize("version", ["channel.k8s.io", "v2.channel.k8s.io", "v3.channel.k8s.io"])
def test_spdy_pre_v4_errors_are_text(version: str) -> None:
    async def go() -> None:
        async with serving(backend()) as srv:
            for cmd, expected in ((EXIT3, EXIT3_STATUS["message"].encode()),
                                  (("true",), b"")):
                url = srv.get_exec(ExecRequest("c1", cmd))
                client, proto = await SpdyClient.connect(url, [version])
                assert proto == version
                s = await spdy_streams(client, ["error", "stdout", "stderr"])
                await s["stdout"].read_all()
                assert await s["error"].read_all() == expected
                await client.close()
    run(go())


def test_spdy_unknown_container_reports_on_the_error_stream() -> None:
    async def go() -> None:
        async with serving(backend()) as srv:
            url = srv.get_exec(ExecRequest("nope", ("true",)))
            client, _ = await SpdyClient.connect(url, ["v4.channel.k8s.io"])
            s = await spdy_streams(client, ["error", "stdout", "stderr"])
            status = json.loads(await s["error"].read_all())
            assert status["status"] == "Failure" and status["reason"] == "InternalError"
            assert status["code"] == 500
            assert "error executing command in container: no such container: nope" in \
                status["message"]
            await client.close()
    run(go())


def test_spdy_interactive_tty_shell_sees_resizes() -> None:
    async def go() -> None:
        b = backend()
        async with serving(b) as srv:
            url = srv.get_exec(ExecRequest("c1", ("sh", "-i"), tty=True, stdin=True,
                                           stderr=False))
            client, _ = await SpdyClient.connect(url, ["v4.channel.k8s.io"])
            s = await spdy_streams(client, ["error", "stdin", "stdout", "resize"])
            out = b""

            async def read_until(needle: bytes) -> None:
                nonlocal out
                async with asyncio.timeout(15):
                    while needle not in out:
                        out += await s["stdout"].read()

            # Two resize messages in one write: the decoder splits concatenated JSON.
            await s["resize"].write(b'{"Width":100,"Height":30}{"Width":101,"Height":31}')
            await s["stdin"].write(b"stty size\n")
            await read_until(b"31 101")
            assert await asyncio.wait_for(client.ping(), 5)  # pings are answered mid-session
            await s["resize"].write(b'{"width": 120, "height": 40}\n')
            await s["stdin"].write(b"tty; stty size\n")
            await read_until(b"40 120")
            assert b"/dev/pts/" in out
            await s["stdin"].write(b"exit 5\n")
            status = json.loads(await s["error"].read_all())
            assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "5"}]
            assert (120, 40) in b.resizes
            await client.close()
    run(go())


def test_spdy_attach_and_detach_leave_the_container_running() -> None:
    async def go() -> None:
        b = backend()
        await b.start_container("c2", ["sh", "-c", "while read l; do echo got:$l; done"],
                                tty=False)
        async with serving(b) as srv:
            for word in (b"one", b"two"):
                url = srv.get_attach(AttachRequest("c2", stdin=True))
                client, _ = await SpdyClient.connect(url, ["v4.channel.k8s.io"])
                s = await spdy_streams(client, ["error", "stdin", "stdout", "stderr"])
                await s["stdin"].write(word + b"\n")
                got = b""
                async with asyncio.timeout(10):
                    while b"got:" + word not in got:
                        got += await s["stdout"].read()
                await client.close()
                await settle(srv)
            assert b.containers["c2"].running()  # type: ignore[union-attr]
            assert b.killed == 0 and not b.sessions
    run(go())


def test_spdy_attach_reports_success_when_the_container_ends() -> None:
    async def go() -> None:
        b = backend()
        await b.start_container("c3", ["sh", "-c", "read l; echo bye $l; exit 7"], tty=True)
        async with serving(b) as srv:
            url = srv.get_attach(AttachRequest("c3", tty=True, stdin=True, stderr=False))
            client, _ = await SpdyClient.connect(url, ["v4.channel.k8s.io"])
            s = await spdy_streams(client, ["error", "stdin", "stdout", "resize"])
            await s["stdin"].write(b"now\n")
            assert b"bye now" in await s["stdout"].read_all()
            # The kubelet reports attach outcomes without the container's exit code.
            assert await s["error"].read_all() == b'{"metadata":{},"status":"Success"}'
            await client.close()
    run(go())


# --- WebSocket ----------------------------------------------------------------------------


def test_ws_v5_stdin_close_signal_and_exit_code() -> None:
    async def go() -> None:
        async with serving(backend()) as srv:
            url = srv.get_exec(ExecRequest("c1", ("sh", "-c", "cat; exit 4"), stdin=True))
            ws = await WsClient.connect(url, ["v5.channel.k8s.io", "v4.channel.k8s.io"])
            assert ws.subprotocol == "v5.channel.k8s.io"
            ch = WsChannels(ws)
            await ch.send(0, b"x" * 300_000)
            await ch.close_channel(0)  # end of input: cat ends, then the shell exits 4
            await asyncio.wait_for(ch.done.wait(), 20)
            assert ch.drain(1) == b"x" * 300_000
            status = json.loads(ch.drain(3))
            assert status["reason"] == "NonZeroExitCode"
            assert status["details"]["causes"][0]["message"] == "4"
            assert ws.close_code == 1000  # normal closure: clients read EOF, not an error
            await ws.close()
    run(go())


@pytest.mark.parametrize("proto,b64,json_status", [
    ("v4.channel.k8s.io", False, True),
    ("v4.base64.channel.k8s.io", True, True),
    ("channel.k8s.io", False, False),
    ("base64.channel.k8s.io", True, False),
])
def test_ws_protocol_variants(proto: str, b64: bool, json_status: bool) -> None:
    async def go() -> None:
        async with serving(backend()) as srv:
            url = srv.get_exec(ExecRequest("c1", EXIT3))
            ws = await WsClient.connect(url, [proto])
            assert ws.subprotocol == proto
            ch = WsChannels(ws, base64_codec=b64)
            await asyncio.wait_for(ch.done.wait(), 20)
            assert ch.drain(1) == b"out\n" and ch.drain(2) == b"err\n"
            err = ch.drain(3)
            if json_status:
                assert json.loads(err) == EXIT3_STATUS
            else:
                assert err == EXIT3_STATUS["message"].encode()
            await ws.close()
    run(go())


def test_ws_interactive_tty_shell_sees_resizes() -> None:
    async def go() -> None:
        async with serving(backend()) as srv:
            url = srv.get_exec(ExecRequest("c1", ("sh", "-i"), tty=True, stdin=True,
                                           stderr=False))
            ws = await WsClient.connect(url, ["v5.channel.k8s.io"])
            ch = WsChannels(ws)
            await ch.send(4, b'{"Width":90,"Height":20}')
            await ch.send(0, b"stty size\n")
            await ch.read_until(1, b"20 90")
            await ws.ping()  # answered by the server, the session goes on
            await ch.send(4, b'{"Width":132,"Height":43}')
            await ch.send(0, b"stty size; exit\n")
            await ch.read_until(1, b"43 132")
            await asyncio.wait_for(ch.done.wait(), 20)
            assert json.loads(ch.drain(3)) == {"metadata": {}, "status": "Success"}
    run(go())


def test_ws_attach() -> None:
    async def go() -> None:
        b = backend()
        await b.start_container("c4", ["sh", "-c", "while read l; do echo att:$l; done"],
                                tty=False)
        async with serving(b) as srv:
            url = srv.get_attach(AttachRequest("c4", stdin=True))
            ws = await WsClient.connect(url, ["v4.channel.k8s.io"])
            ch = WsChannels(ws)
            await ch.send(0, b"hello\n")
            await ch.read_until(1, b"att:hello")
            await ws.close()
            await settle(srv)
            assert b.containers["c4"].running()  # type: ignore[union-attr]
    run(go())


def test_spdy_streams_nobody_reads_cannot_stall_the_session() -> None:
    async def go() -> None:
        async with serving(backend()) as srv:
            url = srv.get_exec(ExecRequest("c1", ("sh", "-c", "sleep 0.2; echo done")))
            client, _ = await SpdyClient.connect(url, ["v4.channel.k8s.io"])
            junk = await client.open_stream({"streamType": "junk"})
            s = await spdy_streams(client, ["error", "stdout", "stderr"])
            # 8 MiB on streams the server never reads (far past its 1 MiB buffer).
            await junk.write(b"j" * (4 << 20))
            await s["error"].write(b"e" * (4 << 20))
            assert await s["stdout"].read_all() == b"done\n"
            assert await s["error"].read_all() == b'{"metadata":{},"status":"Success"}'
            await client.close()
    run(go())
