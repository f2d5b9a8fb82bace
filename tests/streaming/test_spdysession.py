"""The asyncio SPDY session over a socket pair, against the independent test client."""

from __future__ import annotations

import asyncio
import socket

import pytest

from servin.engine.server.cri.streaming.spdysession import SpdySession, SpdyStream
from servin.engine.server.cri.streaming.transport import Activity, SocketTransport
from tests.streaming.clients import SpdyClient


@pytest.mark.parametrize("flow_control", [False, True])
def test_many_echo_streams_are_all_forgotten_at_the_end(flow_control: bool) -> None:
    async def go() -> None:
        a, b = socket.socketpair()
        tasks: set[asyncio.Task] = set()

        async def echo(stream: SpdyStream) -> None:
            while data := await stream.read():
                await stream.write(data)
            await stream.close()

        def on_stream(stream: SpdyStream) -> bool:
            if stream.header("kind") != "echo":
                return False
            task = asyncio.create_task(echo(stream))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            return True

        sr, sw = await asyncio.open_connection(sock=a)
        session = SpdySession(SocketTransport(sr, sw, Activity()), on_stream)
        run = asyncio.create_task(session.run())
        cr, cw = await asyncio.open_connection(sock=b)
        client = SpdyClient(cr, cw, flow_control=flow_control)

        async def one(i: int) -> None:
            stream = await client.open_stream({"kind": "echo"})
            payload = str(i).encode() * (1000 + 300 * i)
            async def send() -> None:
                await stream.write(payload)
                await stream.close()

            sender = asyncio.create_task(send())
            got = await stream.read_all()
            await sender
            assert got == payload

        await asyncio.gather(*(one(i) for i in range(200)))
        while tasks:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert session._streams == {} and session.conn.open_stream_ids() == []
        assert session.conn.peer_flow_control is flow_control
        await client.close()
        await asyncio.wait_for(run, 5)
        await session.close()

    asyncio.run(asyncio.wait_for(go(), 60))
