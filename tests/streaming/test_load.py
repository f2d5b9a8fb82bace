"""A bounded load test: 50 concurrent execs and 20 concurrent port-forward streams, each moving
10 MiB, every byte checked; the process's fd count returns to where it was."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from servin.engine.server.cri.streaming import ExecRequest, PortForwardRequest
from tests.streaming.checks import check_spdy_exec, check_ws_exec, fd_count, read_digest
from tests.streaming.clients import SpdyClient
from tests.streaming.conftest import BLOB_SIZE, serving, settle
from tests.streaming.hostbackend import HostProcessBackend
from tests.streaming.netns import NetnsPod


def test_50_execs_and_20_port_forwards_of_10_mib(blob: Path, pod: NetnsPod) -> None:
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()

    async def forwards(url: str, count: int) -> None:
        # Many streams on one SPDY session, as kubectl port-forward does.
        client, _ = await SpdyClient.connect(url, ["portforward.k8s.io"])

        async def one(i: int) -> None:
            error = await client.open_stream({"port": "9000", "requestID": str(i),
                                              "streamType": "error"})
            data = await client.open_stream({"port": "9000", "requestID": str(i),
                                             "streamType": "data"})
            await data.close()
            assert await read_digest(data) == (BLOB_SIZE, digest)
            assert await error.read_all() == b""

        await asyncio.gather(*(one(i) for i in range(count)))
        await client.close()

    async def go() -> None:
        b = HostProcessBackend()
        b.add_container("c1")
        b.add_pod("pod1", pod.netns_path)
        async with serving(b) as srv:
            before = fd_count()
            jobs = []
            for i in range(50):
                url = srv.get_exec(ExecRequest("c1", ("cat", str(blob)), stderr=False))
                check = check_spdy_exec if i % 2 else check_ws_exec
                jobs.append(check(url, BLOB_SIZE, digest))
            for _ in range(2):  # 2 sessions x 10 streams
                jobs.append(forwards(srv.get_port_forward(PortForwardRequest("pod1")), 10))
            await asyncio.gather(*jobs)
            await settle(srv)
            assert b.closed_sessions == 50 and not b.sessions
            assert fd_count() == before

    asyncio.run(asyncio.wait_for(go(), 280))
