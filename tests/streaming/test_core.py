"""The streaming server over the real core (``CoreStreamingBackend``): exec through a pty with
resizes, attach, port-forward to a busybox httpd in a container, with both transports; single-use
and expiring URLs; sessions cleaned up when the client vanishes or the container exits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.streaming.checks import (
    SUCCESS,
    V4,
    V5,
    check_ws_pty_resizes,
    read_until,
    run,
    spdy_streams,
)
from tests.streaming.clients import HttpRefused, SpdyClient, WsChannels, WsClient, WsPipe
from tests.streaming.coreengine import CoreHarness

HTTPD = ("mkdir -p /www && echo hello from httpd > /www/index.html && "
         "exec httpd -f -p 8080 -h /www")
GET = b"GET /index.html HTTP/1.0\r\n\r\n"


@pytest.fixture(scope="module")
def core(busybox_tar: Path) -> Iterator[CoreHarness]:
    h = CoreHarness(busybox_tar).start()
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture(scope="module")
def sleeper(core: CoreHarness) -> str:
    return core.run_container(["sleep", "100000"])


@pytest.fixture(scope="module")
def httpd(core: CoreHarness) -> str:
    return core.run_container(["sh", "-c", HTTPD])


def test_spdy_interactive_pty_shell_sees_resizes(core: CoreHarness, sleeper: str) -> None:
    url = core.exec_url(sleeper, ["sh", "-i"], tty=True, stdin=True, stderr=False)

    async def go() -> None:
        client, _ = await SpdyClient.connect(url, V4)
        s = await spdy_streams(client, ["error", "stdin", "stdout", "resize"])
        out = bytearray()
        await s["resize"].write(b'{"Width":100,"Height":30}')
        await s["stdin"].write(b"stty size\n")
        await read_until(s["stdout"], b"30 100", out)
        await s["resize"].write(b'{"Width":120,"Height":40}')
        await s["stdin"].write(b"tty; stty size\n")
        await read_until(s["stdout"], b"40 120", out)
        assert b"/dev/pts/" in out
        await s["stdin"].write(b"exit 5\n")
        status = json.loads(await s["error"].read_all())
        assert status["reason"] == "NonZeroExitCode"
        assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "5"}]
        await client.close()
    run(go())
    core.settle()
    assert core.running_execs(sleeper) == []


def test_ws_interactive_pty_shell_sees_resizes(core: CoreHarness, sleeper: str) -> None:
    url = core.exec_url(sleeper, ["sh", "-i"], tty=True, stdin=True, stderr=False)

    # ctrl-p ctrl-q are data for the CRI (no detach keys): the shell still answers.
    run(check_ws_pty_resizes(url, b"\x10\x11\x15"))


@pytest.mark.parametrize("transport", ["spdy", "ws"])
def test_exec_pipes_and_exit_code(core: CoreHarness, sleeper: str, transport: str) -> None:
    url = core.exec_url(sleeper, ["sh", "-c", "cat; echo oops >&2; exit 3"], stdin=True)

    async def go() -> None:
        if transport == "spdy":
            client, _ = await SpdyClient.connect(url, V4)
            s = await spdy_streams(client, ["error", "stdin", "stdout", "stderr"])
            await s["stdin"].write(b"x" * 300_000)
            await s["stdin"].close()
            out, err = await asyncio.gather(s["stdout"].read_all(), s["stderr"].read_all())
            status = json.loads(await s["error"].read_all())
            await client.close()
        else:
            ws = await WsClient.connect(url, V5)
            ch = WsChannels(ws)
            await ch.send(0, b"x" * 300_000)
            await ch.close_channel(0)
            await asyncio.wait_for(ch.done.wait(), 20)
            out, err, status = ch.drain(1), ch.drain(2), json.loads(ch.drain(3))
        assert out == b"x" * 300_000 and err == b"oops\n"
        assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    run(go())


def test_exec_in_unknown_or_stopped_container_is_reported(core: CoreHarness) -> None:
    url = core.exec_url("no-such-container", ["true"])

    async def go() -> None:
        ws = await WsClient.connect(url, V5)
        ch = WsChannels(ws)
        await asyncio.wait_for(ch.done.wait(), 20)
        status = json.loads(ch.drain(3))
        assert status["status"] == "Failure" and "no-such-container" in status["message"]
    run(go())


@pytest.mark.parametrize("transport", ["spdy", "ws"])
def test_attach_leaves_the_container_running(core: CoreHarness, transport: str) -> None:
    cid = core.run_container(["sh", "-c", "while read l; do echo att:$l; done"],
                             open_stdin=True)
    url = core.attach_url(cid, stdin=True)

    async def go() -> None:
        if transport == "spdy":
            client, _ = await SpdyClient.connect(url, V4)
            s = await spdy_streams(client, ["error", "stdin", "stdout", "stderr"])
            await s["stdin"].write(b"hello\n")
            await read_until(s["stdout"], b"att:hello", bytearray())
            client.abort()  # vanishes: detaches, the container's stdin stays open
        else:
            ws = await WsClient.connect(url, V4)
            ch = WsChannels(ws)
            await ch.send(0, b"hello\n")
            await ch.read_until(1, b"att:hello")
            await ws.close()
    run(go())
    core.settle()
    assert core.running(cid)
    # A second attachment still reaches the same shell.
    url = core.attach_url(cid, stdin=True)

    async def again() -> None:
        ws = await WsClient.connect(url, V5)
        ch = WsChannels(ws)
        await ch.send(0, b"again\n")
        await ch.read_until(1, b"att:again")
        await ws.close()
    run(again())
    core.stop_container(cid)


def test_attach_reports_success_when_the_container_ends(core: CoreHarness) -> None:
    cid = core.run_container(["sh", "-c", "read l; echo bye:$l; exit 7"], tty=True,
                             open_stdin=True)
    url = core.attach_url(cid, tty=True, stdin=True, stderr=False)

    async def go() -> None:
        ws = await WsClient.connect(url, V5)
        ch = WsChannels(ws)
        await ch.send(0, b"now\n")
        await ch.read_until(1, b"bye:now")
        await asyncio.wait_for(ch.done.wait(), 20)
        assert json.loads(ch.drain(3)) == SUCCESS
    run(go())


async def _http_through(data, err) -> bytes:  # type: ignore[no-untyped-def]
    await data.write(GET)
    body = await data.read_all()
    assert await err.read_all() == b""
    return body


def _wait_for_httpd(core: CoreHarness, cid: str) -> None:
    """httpd listens a moment after its container starts: wait (inside) until it answers."""
    url = core.exec_url(cid, ["sh", "-c", "until wget -q -O /dev/null "
                                          "http://127.0.0.1:8080/index.html; do sleep 0.1; done"])

    async def go() -> None:
        ch = WsChannels(await WsClient.connect(url, V5))
        await asyncio.wait_for(ch.done.wait(), 30)
        assert json.loads(ch.drain(3)) == SUCCESS
    run(go())


@pytest.mark.parametrize("transport", ["spdy", "ws-tunnel", "ws-channels"])
def test_port_forward_to_busybox_httpd(core: CoreHarness, httpd: str, transport: str) -> None:
    _wait_for_httpd(core, httpd)
    url = core.port_forward_url(httpd, (8080,) if transport == "ws-channels" else ())

    async def go() -> None:
        if transport == "ws-channels":
            ws = await WsClient.connect(url, ["v4.channel.k8s.io"])
            ch = WsChannels(ws)
            await ch.send(0, GET)
            body = await ch.read_until(0, b"hello from httpd")
            assert body[:2] == (8080).to_bytes(2, "little")
            assert body[2:].startswith(b"HTTP/1.1 200")
            await ws.close()
            return
        if transport == "spdy":
            client, _ = await SpdyClient.connect(url, ["portforward.k8s.io"])
        else:
            ws = await WsClient.connect(url, ["SPDY/3.1+portforward.k8s.io"])
            pipe = WsPipe(ws)
            client = SpdyClient(pipe.reader, pipe, flow_control=False)  # type: ignore[arg-type]
        # Three connections at once on one session.
        pairs = []
        for i in range(3):
            headers = {"port": "8080", "requestID": str(i)}
            err = await client.open_stream({**headers, "streamType": "error"})
            data = await client.open_stream({**headers, "streamType": "data"})
            pairs.append((data, err))
        bodies = await asyncio.gather(*(_http_through(d, e) for d, e in pairs))
        for body in bodies:
            assert body.startswith(b"HTTP/1.1 200") and body.endswith(b"hello from httpd\n")
        # A port nobody listens on: the error stream says so.
        err = await client.open_stream({"port": "1", "requestID": "9", "streamType": "error"})
        await client.open_stream({"port": "1", "requestID": "9", "streamType": "data"})
        assert b"error forwarding port 1" in await err.read_all()
        await client.close()
    run(go())
    core.settle()


def test_port_forward_into_a_pod_reaches_its_members(core: CoreHarness) -> None:
    pod = core.run_pod()
    cid = core.run_member(pod, ["sh", "-c", HTTPD])
    _wait_for_httpd(core, cid)
    url = core.port_forward_url(pod)

    async def go() -> None:
        client, _ = await SpdyClient.connect(url, ["portforward.k8s.io"])
        err = await client.open_stream({"port": "8080", "requestID": "0", "streamType": "error"})
        data = await client.open_stream({"port": "8080", "requestID": "0", "streamType": "data"})
        body = await _http_through(data, err)
        assert body.startswith(b"HTTP/1.1 200") and body.endswith(b"hello from httpd\n")
        await client.close()
    run(go())
    core.stop_pod(pod)
    url = core.port_forward_url(pod)

    async def stopped() -> None:
        client, _ = await SpdyClient.connect(url, ["portforward.k8s.io"])
        err = await client.open_stream({"port": "8080", "requestID": "0", "streamType": "error"})
        await client.open_stream({"port": "8080", "requestID": "0", "streamType": "data"})
        assert b"is not running" in await err.read_all()
        await client.close()
    run(stopped())


def test_port_forward_to_a_stopped_container_is_refused(core: CoreHarness) -> None:
    cid = core.run_container(["sleep", "100000"])
    core.stop_container(cid)
    url = core.port_forward_url(cid)

    async def go() -> None:
        client, _ = await SpdyClient.connect(url, ["portforward.k8s.io"])
        err = await client.open_stream({"port": "80", "requestID": "0", "streamType": "error"})
        await client.open_stream({"port": "80", "requestID": "0", "streamType": "data"})
        assert b"is not running" in await err.read_all()
        await client.close()
    run(go())


def test_url_used_twice_or_after_expiry_is_refused(core: CoreHarness, sleeper: str) -> None:
    url = core.exec_url(sleeper, ["echo", "once"])

    async def use(u: str) -> bytes:
        client, _ = await SpdyClient.connect(u, V4)
        s = await spdy_streams(client, ["error", "stdout", "stderr"])
        out = await s["stdout"].read_all()
        assert json.loads(await s["error"].read_all()) == SUCCESS
        await client.close()
        return out

    async def go() -> None:
        assert await use(url) == b"once\n"
        for connect in (lambda: SpdyClient.connect(url, V4), lambda: WsClient.connect(url, V5)):
            with pytest.raises(HttpRefused) as info:
                await connect()
            assert info.value.status == 404
    run(go())

    async def shorten(ttl: float) -> float:
        assert core.server is not None
        old, core.server.cache.ttl = core.server.cache.ttl, ttl
        return old

    old = core.call(shorten(0.2))
    try:
        urls = [core.exec_url(sleeper, ["true"]), core.port_forward_url(sleeper),
                core.attach_url(sleeper)]
    finally:
        core.call(shorten(old))

    async def expired() -> None:
        await asyncio.sleep(0.5)
        for u in urls:
            with pytest.raises(HttpRefused) as info:
                await WsClient.connect(u, V5)
            assert info.value.status == 404
    run(expired())


@pytest.mark.parametrize("transport", ["spdy", "ws"])
def test_vanished_client_leaves_no_exec_behind(core: CoreHarness, transport: str) -> None:
    cid = core.run_container(["sleep", "100000"])
    url = core.exec_url(cid, ["sh", "-c", "echo up; exec sleep 1000"], stdin=True)

    async def go() -> None:
        if transport == "spdy":
            client, _ = await SpdyClient.connect(url, V4)
            s = await spdy_streams(client, ["error", "stdin", "stdout", "stderr"])
            await read_until(s["stdout"], b"up", bytearray())
            client.abort()
        else:
            ws = await WsClient.connect(url, V5)
            ch = WsChannels(ws)
            await ch.read_until(1, b"up")
            ws.abort()
    run(go())
    core.settle()

    async def no_execs() -> None:
        async with asyncio.timeout(20):
            while core.api.execs.running_in(cid):
                await asyncio.sleep(0.05)
    core.call(no_execs())
    core.stop_container(cid)


def test_sessions_end_when_the_container_exits(core: CoreHarness) -> None:
    cid = core.run_container(["sleep", "100000"])
    exec_url = core.exec_url(cid, ["sh", "-c", "echo up; exec sleep 1000"], stdin=True)
    attach_url = core.attach_url(cid)

    async def go() -> None:
        ws = await WsClient.connect(exec_url, V5)
        ch = WsChannels(ws)
        await ch.read_until(1, b"up")
        att = WsChannels(await WsClient.connect(attach_url, V5))
        await asyncio.to_thread(core.stop_container, cid)
        await asyncio.wait_for(ch.done.wait(), 20)
        await asyncio.wait_for(att.done.wait(), 20)
        status = json.loads(ch.drain(3))
        assert status["status"] == "Failure"  # killed with its container
    run(go())
    core.settle()


@pytest.mark.parametrize("transport", ["spdy", "ws"])
def test_stdin_faster_than_the_process_reads(core: CoreHarness, sleeper: str,
                                             transport: str) -> None:
    # The process reads nothing for a second: the client's 20 MiB wait (back-pressure) and
    # then all arrive.
    size = 20 * 1024 * 1024
    url = core.exec_url(sleeper, ["sh", "-c", "sleep 1; wc -c"], stdin=True)
    chunk = b"z" * (1 << 20)

    async def go() -> None:
        if transport == "spdy":
            client, _ = await SpdyClient.connect(url, V4)
            s = await spdy_streams(client, ["error", "stdin", "stdout", "stderr"])
            for _ in range(size // len(chunk)):
                await s["stdin"].write(chunk)
            await s["stdin"].close()
            out = await s["stdout"].read_all()
            assert json.loads(await s["error"].read_all()) == SUCCESS
            await client.close()
        else:
            ch = WsChannels(await WsClient.connect(url, V5))
            for _ in range(size // len(chunk)):
                await ch.send(0, chunk)
            await ch.close_channel(0)
            await asyncio.wait_for(ch.done.wait(), 60)
            out = ch.drain(1)
            assert json.loads(ch.drain(3)) == SUCCESS
        assert out.strip() == str(size).encode()
    run(go())
