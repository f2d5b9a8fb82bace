"""A bounded load test over the real core: 50 concurrent execs and 20 concurrent port-forward
streams (to a busybox httpd in a container), each moving 10 MiB, every byte checked; the fd
count of the process serving them (the engine and its streaming server) returns to where it
was, and no exec is left running."""

from __future__ import annotations

import asyncio
import gc
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.streaming.clients import SpdyClient, WsChannels, WsClient, WsPipe
from tests.streaming.conftest import BLOB_SIZE
from tests.streaming.coreengine import CoreHarness, fd_count

EXECS = 50
FORWARDS = 20


@pytest.fixture(scope="module")
def core(busybox_tar: Path) -> Iterator[CoreHarness]:
    h = CoreHarness(busybox_tar).start()
    try:
        yield h
    finally:
        h.stop()


def test_50_execs_and_20_port_forwards_of_10_mib(core: CoreHarness, blob: Path) -> None:
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    data_dir = f"{blob.parent}:/data:ro"
    cid = core.run_container(["httpd", "-f", "-p", "9000", "-h", "/data"], binds=[data_dir])
    request = f"GET /{blob.name} HTTP/1.0\r\n\r\n".encode()

    async def wait_httpd() -> None:
        url = core.exec_url(cid, ["sh", "-c", "until wget -q --spider http://127.0.0.1:9000/"
                                              f"{blob.name}; do sleep 0.1; done"])
        ch = WsChannels(await WsClient.connect(url, ["v5.channel.k8s.io"]))
        await asyncio.wait_for(ch.done.wait(), 30)

    async def exec_spdy(url: str) -> None:
        client, _ = await SpdyClient.connect(url, ["v4.channel.k8s.io"])
        error = await client.open_stream({"streamType": "error"})
        out = await client.open_stream({"streamType": "stdout"})
        h, n = hashlib.sha256(), 0
        while chunk := await out.read():
            h.update(chunk)
            n += len(chunk)
        assert (n, h.hexdigest()) == (BLOB_SIZE, digest)
        assert await error.read_all() == b'{"metadata":{},"status":"Success"}'
        await client.close()

    async def exec_ws(url: str) -> None:
        ws = await WsClient.connect(url, ["v5.channel.k8s.io"])
        ch = WsChannels(ws)
        await ch.done.wait()
        data = ch.drain(1)
        assert (len(data), hashlib.sha256(data).hexdigest()) == (BLOB_SIZE, digest)
        assert ch.drain(3) == b'{"metadata":{},"status":"Success"}'
        await ws.close()

    async def forwards(client: SpdyClient, first: int, count: int) -> None:
        # Many streams on one SPDY session, as kubectl port-forward does.
        async def one(i: int) -> None:
            error = await client.open_stream({"port": "9000", "requestID": str(i),
                                              "streamType": "error"})
            data = await client.open_stream({"port": "9000", "requestID": str(i),
                                             "streamType": "data"})
            await data.write(request)
            raw = await data.read_all()
            head, _, body = raw.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            assert (len(body), hashlib.sha256(body).hexdigest()) == (BLOB_SIZE, digest)
            assert await error.read_all() == b""

        await asyncio.gather(*(one(i) for i in range(first, first + count)))
        await client.close()

    async def spdy_forwards(url: str, count: int) -> None:
        client, _ = await SpdyClient.connect(url, ["portforward.k8s.io"])
        await forwards(client, 0, count)

    async def tunnelled_forwards(url: str, count: int) -> None:
        ws = await WsClient.connect(url, ["SPDY/3.1+portforward.k8s.io"])
        pipe = WsPipe(ws)
        client = SpdyClient(pipe.reader, pipe, flow_control=False)  # type: ignore[arg-type]
        await forwards(client, 100, count)

    asyncio.run(asyncio.wait_for(wait_httpd(), 60))
    core.settle()
    gc.collect()
    before = fd_count()

    async def go() -> None:
        jobs = []
        for i in range(EXECS):
            url = core.exec_url(cid, ["cat", f"/data/{blob.name}"], stderr=False)
            jobs.append(exec_spdy(url) if i % 2 else exec_ws(url))
        jobs.append(spdy_forwards(core.port_forward_url(cid), FORWARDS // 2))
        jobs.append(tunnelled_forwards(core.port_forward_url(cid), FORWARDS // 2))
        await asyncio.gather(*jobs)

    asyncio.run(asyncio.wait_for(go(), 280))
    core.settle()
    assert core.running_execs(cid) == []
    gc.collect()
    assert fd_count() == before
