"""The daemon's streaming server reached the way the kubelet and crictl reach it: URLs from the
CRI's Exec, Attach and PortForward on the daemon's socket, real pods and containers, our own
SPDY and WebSocket clients. Also: stopping the daemon ends sessions and kills their execs, and a
bounded load (50 execs, 20 port-forward streams, 10 MiB each, every byte checked) leaves the
daemon's fd count where it was."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from servin.api.cri.runtime.v1 import api_pb2
from servin.devtools import critest_images as ci
from tests.cri.conftest import CRI, running_cri
from tests.daemon import short_tmpdir
from tests.registry.registryd import Registry, start_registry
from tests.streaming.checks import (
    SUCCESS,
    V4,
    V5,
    check_spdy_exec,
    check_ws_exec,
    check_ws_pty_resizes,
    read_until,
    run,
    spdy_streams,
)
from tests.streaming.clients import SpdyClient, WsChannels, WsClient, WsPipe
from tests.streaming.conftest import BLOB_SIZE

HTTPD = ("mkdir -p /www && echo hello from the pod > /www/index.html && "
         "exec httpd -f -p 8080 -h /www")


@pytest.fixture(scope="module")
def cri() -> Iterator[CRI]:
    registry: Registry = start_registry(short_tmpdir("sv-s2reg-"))
    try:
        ci.push_all(registry.host)
        with running_cri(registry) as env:
            yield env
    finally:
        registry.stop()


@pytest.fixture(scope="module")
def pod(cri: CRI) -> tuple[str, str, str]:
    """A pod with an httpd (serving index.html and the test blob) and a shell container."""
    pod_id = cri.run_pod("stream")
    web = cri.create(pod_id, "stream", "web", ["sh", "-c", HTTPD])
    cri.runtime.StartContainer(api_pb2.StartContainerRequest(container_id=web), timeout=60)
    shell = cri.create(pod_id, "stream", "shell", ["sh"], stdin=True, tty=True)
    cri.runtime.StartContainer(api_pb2.StartContainerRequest(container_id=shell), timeout=60)
    deadline = time.monotonic() + 30
    while cri.exec_sync(web, ["wget", "-q", "--spider",
                              "http://127.0.0.1:8080/index.html"]).exit_code != 0:
        assert time.monotonic() < deadline, "httpd never answered"
        time.sleep(0.1)
    return pod_id, web, shell


def exec_url(cri: CRI, cid: str, cmd: list[str], **stdio: bool) -> str:
    request = api_pb2.ExecRequest(container_id=cid, cmd=cmd, **stdio)
    url = str(cri.runtime.Exec(request, timeout=30).url)
    assert url.startswith("http://127.0.0.1:")  # absolute, on loopback
    return url


def test_interactive_exec_through_the_daemon(cri: CRI, pod: tuple[str, str, str]) -> None:
    _, web, _ = pod
    for transport in ("spdy", "ws"):
        url = exec_url(cri, web, ["sh", "-i"], tty=True, stdin=True, stdout=True)

        async def go(url: str = url, transport: str = transport) -> None:
            if transport == "spdy":
                client, _ = await SpdyClient.connect(url, V4)
                s = await spdy_streams(client, ["error", "stdin", "stdout", "resize"])
                out = bytearray()
                await s["resize"].write(b'{"Width":100,"Height":30}')
                await s["stdin"].write(b"stty size\n")
                await read_until(s["stdout"], b"30 100", out)
                await s["resize"].write(b'{"Width":120,"Height":40}')
                await s["stdin"].write(b"stty size; exit 4\n")
                await read_until(s["stdout"], b"40 120", out)
                status = json.loads(await s["error"].read_all())
                assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "4"}]
                await client.close()
            else:
                await check_ws_pty_resizes(url)
        run(go())


def test_attach_through_the_daemon(cri: CRI, pod: tuple[str, str, str]) -> None:
    _, _, shell = pod
    for protocols in (V4, V5):
        url = str(cri.runtime.Attach(api_pb2.AttachRequest(
            container_id=shell, stdin=True, tty=True, stdout=True), timeout=30).url)

        async def go(url: str = url, protocols: list[str] = protocols) -> None:
            if protocols is V4:
                client, _ = await SpdyClient.connect(url, protocols)
                s = {n: await client.open_stream({"streamType": n})
                     for n in ("error", "stdin", "stdout", "resize")}
                await s["stdin"].write(b"echo at$((40+2))\n")
                out = b""
                while b"at42" not in out:
                    out += await s["stdout"].read()
                client.abort()  # detaches; the shell goes on
            else:
                ws = await WsClient.connect(url, protocols)
                ch = WsChannels(ws)
                await ch.send(0, b"echo ws$((40+2))\n")
                await ch.read_until(1, b"ws42")
                await ws.close()
        run(go())
    status = cri.runtime.ContainerStatus(
        api_pb2.ContainerStatusRequest(container_id=shell), timeout=30).status
    assert status.state == api_pb2.CONTAINER_RUNNING


def test_port_forward_through_the_daemon(cri: CRI, pod: tuple[str, str, str]) -> None:
    pod_id, _, _ = pod
    get = b"GET /index.html HTTP/1.0\r\n\r\n"
    for transport in ("spdy", "ws-tunnel", "ws-channels"):
        ports = [8080] if transport == "ws-channels" else []
        url = str(cri.runtime.PortForward(api_pb2.PortForwardRequest(
            pod_sandbox_id=pod_id, port=ports), timeout=30).url)

        async def go(url: str = url, transport: str = transport) -> None:
            if transport == "ws-channels":
                ws = await WsClient.connect(url, ["v4.channel.k8s.io"])
                ch = WsChannels(ws)
                await ch.send(0, get)
                body = await ch.read_until(0, b"hello from the pod")
                assert body[2:].startswith(b"HTTP/1.1 200")
                await ws.close()
                return
            if transport == "spdy":
                client, _ = await SpdyClient.connect(url, ["portforward.k8s.io"])
            else:
                ws = await WsClient.connect(url, ["SPDY/3.1+portforward.k8s.io"])
                pipe = WsPipe(ws)
                client = SpdyClient(pipe.reader, pipe, flow_control=False)  # type: ignore[arg-type]
            err = await client.open_stream({"port": "8080", "requestID": "0",
                                            "streamType": "error"})
            data = await client.open_stream({"port": "8080", "requestID": "0",
                                             "streamType": "data"})
            await data.write(get)
            body = await data.read_all()
            assert body.startswith(b"HTTP/1.1 200") and body.endswith(b"hello from the pod\n")
            assert await err.read_all() == b""
            await client.close()
        run(go())


def _daemon_fds(cri: CRI) -> int:
    assert cri.daemon.proc is not None
    return len(os.listdir(f"/proc/{cri.daemon.proc.pid}/fd"))


def test_load_through_the_daemon(cri: CRI, pod: tuple[str, str, str], blob: Path) -> None:
    """50 concurrent execs and 20 concurrent port-forward streams of 10 MiB each (the blob is
    copied into the web container), every byte checked; the daemon's fds back afterwards."""
    pod_id, web, _ = pod
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    # The blob goes in through a stdin exec (itself a 10 MiB stream through the daemon).
    url = exec_url(cri, web, ["sh", "-c", "cat > /www/blob"], stdin=True, stdout=True)

    async def upload() -> None:
        ch = WsChannels(await WsClient.connect(url, V5))
        data = blob.read_bytes()
        for i in range(0, len(data), 1 << 20):
            await ch.send(0, data[i:i + (1 << 20)])
        await ch.close_channel(0)
        await asyncio.wait_for(ch.done.wait(), 60)
        assert json.loads(ch.drain(3)) == SUCCESS
    run(upload())
    check = cri.exec_sync(web, ["sha256sum", "/www/blob"])
    assert check.stdout.split()[0].decode() == digest
    time.sleep(0.5)  # let the upload's session close
    before = _daemon_fds(cri)

    async def exec_one(i: int) -> None:
        u = exec_url(cri, web, ["cat", "/www/blob"], stdout=True)
        await (check_spdy_exec if i % 2 else check_ws_exec)(u, BLOB_SIZE, digest)

    async def forwards(count: int, tunnel: bool) -> None:
        u = str(cri.runtime.PortForward(api_pb2.PortForwardRequest(pod_sandbox_id=pod_id),
                                        timeout=30).url)
        if tunnel:
            ws = await WsClient.connect(u, ["SPDY/3.1+portforward.k8s.io"])
            pipe = WsPipe(ws)
            client = SpdyClient(pipe.reader, pipe, flow_control=False)  # type: ignore[arg-type]
        else:
            client, _ = await SpdyClient.connect(u, ["portforward.k8s.io"])

        async def one(i: int) -> None:
            err = await client.open_stream({"port": "8080", "requestID": str(i),
                                            "streamType": "error"})
            data = await client.open_stream({"port": "8080", "requestID": str(i),
                                             "streamType": "data"})
            await data.write(b"GET /blob HTTP/1.0\r\n\r\n")
            raw = await data.read_all()
            head, _, body = raw.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head[:100]
            assert (len(body), hashlib.sha256(body).hexdigest()) == (BLOB_SIZE, digest)
            assert await err.read_all() == b""

        await asyncio.gather(*(one(i) for i in range(count)))
        await client.close()

    async def go() -> None:
        await asyncio.gather(*(exec_one(i) for i in range(50)), forwards(10, False),
                             forwards(10, True))
    run(go(), 240)
    deadline = time.monotonic() + 20
    while (_daemon_fds(cri) != before or _cats(cri, web)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _daemon_fds(cri) == before
    assert _cats(cri, web) == 0  # no exec left running


def _cats(cri: CRI, cid: str) -> int:
    """The load's ``cat /www/blob`` execs still running in container ``cid``."""
    ps = cri.exec_sync(cid, ["ps"])
    return sum(line.rstrip().endswith(b"cat /www/blob") for line in ps.stdout.splitlines())


def test_stopping_the_daemon_ends_sessions_and_their_execs(cri: CRI,
                                                            pod: tuple[str, str, str]) -> None:
    # Last in this module: the daemon does not come back.
    _, web, _ = pod
    url = exec_url(cri, web, ["sh", "-c", "echo up; exec sleep 4343"], stdin=True, stdout=True)

    async def go() -> None:
        ch = WsChannels(await WsClient.connect(url, V5))
        await ch.read_until(1, b"up")
        assert _sleepers() == 1
        await asyncio.to_thread(cri.daemon.stop)
        await asyncio.wait_for(ch.done.wait(), 20)
    run(go())
    assert _sleepers() == 0


def _sleepers() -> int:
    """Processes on this host running ``sleep 4343`` (only this test starts one)."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x004343\x00":
                count += 1
        except OSError:
            continue
    return count
