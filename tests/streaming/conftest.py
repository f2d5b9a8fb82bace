"""Fixtures of the streaming tests: a netns "pod", a test backend, a server per test."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from servin.engine.server.cri.streaming import StreamingConfig, StreamingServer
from tests.streaming.hostbackend import HostProcessBackend
from tests.streaming.netns import NetnsPod

BLOB_SIZE = 10 * 1024 * 1024


@pytest.fixture(scope="session")
def blob(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 MiB of random bytes: what the load tests move and check."""
    path = tmp_path_factory.mktemp("blob") / "blob"
    path.write_bytes(os.urandom(BLOB_SIZE))
    return path


@pytest.fixture(scope="module")
def pod(blob: Path) -> Iterator[NetnsPod]:
    p = NetnsPod(blob).start()
    try:
        yield p
    finally:
        p.stop()


@contextlib.asynccontextmanager
async def serving(backend: HostProcessBackend, **config: object) -> AsyncIterator[StreamingServer]:
    server = StreamingServer(backend, StreamingConfig(port=0, **config))  # type: ignore[arg-type]
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        await backend.stop_all()


async def settle(server: StreamingServer, timeout: float = 10) -> None:
    """Wait until the server has finished every connection."""
    async with asyncio.timeout(timeout):
        while server.active_connections:
            await asyncio.sleep(0.02)


@pytest.fixture(autouse=True)
def no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every streaming test also fails if the server (or asyncio, for a task that died
    unnoticed) logged an error: a hidden traceback."""
    caplog.set_level("INFO", logger="servin.engine.server.cri.streaming")
    yield
    errors = [r for r in caplog.get_records("call")
              if r.name.startswith(("servin.engine.server.cri.streaming", "asyncio"))
              and r.levelname in ("ERROR", "CRITICAL")]
    assert not errors, [r.getMessage() for r in errors]
