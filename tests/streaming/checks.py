"""What the streaming tests share on the client side: the subprotocols, the success status, and
checks that read an exec's or a stream's bytes back and compare them with what was sent."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from typing import Any

from tests.streaming.clients import SpdyClient, WsChannels, WsClient

V4 = ["v4.channel.k8s.io"]
V5 = ["v5.channel.k8s.io"]
SUCCESS = {"metadata": {}, "status": "Success"}


def fd_count() -> int:
    """The open file descriptors of this process (where an in-process server lives)."""
    return len(os.listdir("/proc/self/fd"))


def run(coro: Any, timeout: float = 60) -> Any:
    """Run ``coro`` to its end, failing after ``timeout`` seconds."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def spdy_streams(client: SpdyClient, names: list[str]) -> dict:
    """Open one exec/attach stream per name (``streamType``), in that order."""
    return {n: await client.open_stream({"streamType": n}) for n in names}


async def read_until(stream, needle: bytes, out: bytearray) -> None:  # type: ignore[no-untyped-def]
    """Read ``stream`` into ``out`` until ``needle`` shows up (fails if the stream ends)."""
    async with asyncio.timeout(20):
        while needle not in out:
            chunk = await stream.read()
            assert chunk, f"stream ended before {needle!r}: {bytes(out)!r}"
            out += chunk


async def check_ws_pty_resizes(url: str, keys: bytes = b"") -> None:
    """An ``sh -i`` exec on a pty over WebSocket (v5) follows two resizes (``stty size``), then
    exits with success; ``keys`` go to the shell before its last line."""
    ws = await WsClient.connect(url, V5)
    ch = WsChannels(ws)
    await ch.send(4, b'{"Width":90,"Height":20}')
    await ch.send(0, b"stty size\n")
    await ch.read_until(1, b"20 90")
    await ch.send(4, b'{"Width":132,"Height":43}')
    await ch.send(0, keys + b"stty size; exit\n")
    await ch.read_until(1, b"43 132")
    await asyncio.wait_for(ch.done.wait(), 20)
    assert json.loads(ch.drain(3)) == SUCCESS


async def read_digest(stream) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """Read ``stream`` to its end: how many bytes came, and their SHA-256."""
    h, n = hashlib.sha256(), 0
    while chunk := await stream.read():
        h.update(chunk)
        n += len(chunk)
    return n, h.hexdigest()


async def check_spdy_exec(url: str, size: int, digest: str) -> None:
    """An exec over SPDY (v4) sends ``size`` bytes of stdout with ``digest``, then success."""
    client, _ = await SpdyClient.connect(url, V4)
    error = await client.open_stream({"streamType": "error"})
    out = await client.open_stream({"streamType": "stdout"})
    assert await read_digest(out) == (size, digest)
    assert json.loads(await error.read_all()) == SUCCESS
    await client.close()


async def check_ws_exec(url: str, size: int, digest: str) -> None:
    """An exec over WebSocket (v5) sends ``size`` bytes of stdout with ``digest``, then
    success."""
    ws = await WsClient.connect(url, V5)
    ch = WsChannels(ws)
    await ch.done.wait()
    data = ch.drain(1)
    assert (len(data), hashlib.sha256(data).hexdigest()) == (size, digest)
    assert json.loads(ch.drain(3)) == SUCCESS
    await ws.close()
