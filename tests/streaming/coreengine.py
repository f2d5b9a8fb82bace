"""The real core behind the streaming server, for tests: an Engine (real containers, monitors,
execs) and a StreamingServer over ``CoreStreamingBackend``, run on their own event loop in a
thread, as the daemon runs them. Tests drive it from their own loops with their own clients.

(The URLs of a daemon come from the CRI door's Exec/Attach/PortForward: the daemon-level
tests use that; this harness lets the backend be tested on its own.)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import shutil
import threading
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from servin.devtools.daemonproc import claim_net_slot, release_net_slot, short_tmpdir
from servin.engine.config import DaemonConfig
from servin.engine.containers.model import ContainerConfig, CreateRequest, HostConfig
from servin.engine.engine import Engine
from servin.engine.pods.model import PodConfig, PodCreateRequest
from servin.engine.runtime.monitor.client import stop_zygote
from servin.engine.server.cri.streaming import (
    AttachRequest,
    ExecRequest,
    PortForwardRequest,
    StreamingConfig,
    StreamingServer,
)
from servin.engine.server.cri.streaming.corebackend import CoreStreamingBackend

T = TypeVar("T")


class CoreHarness:
    """An engine and its streaming server on a private loop (``call`` runs a coroutine there)."""

    def __init__(self, busybox_tar: Path) -> None:
        self.base = short_tmpdir("svst-")
        self.slot = claim_net_slot()
        self.busybox_tar = busybox_tar
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="core-harness",
                                       daemon=True)
        self.engine: Engine | None = None
        self.server: StreamingServer | None = None
        self.containers: list[str] = []
        self.pods: list[str] = []

    # -- lifecycle
    def start(self) -> CoreHarness:
        self.thread.start()
        self.call(self._start())
        return self

    async def _start(self) -> None:
        config = DaemonConfig(
            root=self.base / "root", exec_root=self.base / "run",
            bridge_name=f"svt{self.slot}", default_network_subnet=f"10.200.{self.slot}.0/24",
            address_pool=f"10.201.{self.slot}.0/24", address_pool_size=28,
            streaming_port=0)
        engine = Engine(config)
        self.engine = engine
        engine.events.bind(asyncio.get_running_loop())
        await asyncio.to_thread(engine.repair)
        await engine.start()
        await engine.api.images.import_rootfs(_chunks(self.busybox_tar), reference="busybox",
                                              changes=['CMD ["sh"]'])
        self.server = StreamingServer(CoreStreamingBackend(engine.api),
                                      StreamingConfig(port=0))
        await self.server.start()

    def stop(self) -> None:
        try:
            self.call(self._stop(), timeout=120)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)
            if not self.thread.is_alive():
                self.loop.close()
            # Whatever the engine left to the garbage collector is closed now, not in the
            # middle of a later test that counts this process's fds.
            gc.collect()
            release_net_slot(self.slot)
            shutil.rmtree(self.base, ignore_errors=True)

    async def _stop(self) -> None:
        engine = self.engine
        if self.server is not None:
            await self.server.stop()
        if engine is None:
            return
        # Everything the engine has, not only what this harness made: a test's own pod or
        # container would otherwise run on, with its monitor, after the engine is gone.
        with contextlib.suppress(Exception):
            self.pods += [view.pod.id for view in await engine.api.pods.list()]
            self.containers += [row.container.id
                                for row in await engine.api.containers.list(all=True)]
        for pod_id in self.pods:
            with contextlib.suppress(Exception):  # best effort: the next one still goes
                await engine.api.pods.remove(pod_id, force=True)
        for cid in self.containers:
            with contextlib.suppress(Exception):
                await engine.api.containers.remove(cid, force=True)
        await engine.stop()
        engine.close()
        # The monitor zygote outlives an engine on purpose (as it outlives a daemon).
        stop_zygote(self.base / "run")

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run ``coro`` on the harness's loop and return its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    # -- what tests use
    @property
    def api(self) -> Any:
        assert self.engine is not None
        return self.engine.api

    def run_container(self, cmd: list[str], *, tty: bool = False, open_stdin: bool = False,
                      binds: list[str] | None = None) -> str:
        """Create and start a busybox container (network mode none: its own netns, lo only)."""
        async def go() -> str:
            created = await self.api.containers.create(CreateRequest(
                config=ContainerConfig(image="busybox", cmd=cmd, tty=tty, open_stdin=open_stdin),
                host_config=HostConfig(network_mode="none", binds=list(binds or []))))
            cid: str = created.container.id
            self.containers.append(cid)
            await self.api.containers.start(cid)
            return cid
        return self.call(go())

    def run_pod(self) -> str:
        """Create and start a pod with a network namespace of its own (lo only); its ID."""
        async def go() -> str:
            view = await self.api.pods.create(PodCreateRequest(
                config=PodConfig(network_mode="none")))
            pod_id: str = view.pod.id
            self.pods.append(pod_id)
            await self.api.pods.start(pod_id)
            return pod_id
        return self.call(go())

    def run_member(self, pod_id: str, cmd: list[str]) -> str:
        """Create and start a busybox container in the pod."""
        async def go() -> str:
            created = await self.api.containers.create(CreateRequest(
                config=ContainerConfig(image="busybox", cmd=cmd), pod_id=pod_id))
            cid: str = created.container.id
            self.containers.append(cid)
            await self.api.containers.start(cid)
            return cid
        return self.call(go())

    def stop_pod(self, pod_id: str) -> None:
        self.call(self.api.pods.stop(pod_id, timeout=1))

    def stop_container(self, cid: str) -> None:
        self.call(self.api.containers.stop(cid, timeout=1))

    def running(self, cid: str) -> bool:
        async def go() -> bool:
            c = await self.api.containers.get(cid)
            return bool(c.state.running)
        return self.call(go())

    def running_execs(self, cid: str) -> list[str]:
        async def go() -> list[str]:
            return list(self.api.execs.running_in(cid))
        return self.call(go())

    def _register(self, request: ExecRequest | AttachRequest | PortForwardRequest) -> str:
        async def go() -> str:
            assert self.server is not None
            if isinstance(request, ExecRequest):
                return self.server.get_exec(request)
            if isinstance(request, AttachRequest):
                return self.server.get_attach(request)
            return self.server.get_port_forward(request)
        return self.call(go())

    def exec_url(self, cid: str, cmd: list[str], **stdio: bool) -> str:
        return self._register(ExecRequest(cid, tuple(cmd), **stdio))

    def attach_url(self, cid: str, **stdio: bool) -> str:
        return self._register(AttachRequest(cid, **stdio))

    def port_forward_url(self, pod_id: str, ports: tuple[int, ...] = ()) -> str:
        return self._register(PortForwardRequest(pod_id, ports))

    def active_connections(self) -> int:
        async def go() -> int:
            assert self.server is not None
            return self.server.active_connections
        return self.call(go())

    def settle(self, timeout: float = 20) -> None:
        """Wait until the server has finished every connection."""
        async def go() -> None:
            assert self.server is not None
            async with asyncio.timeout(timeout):
                while self.server.active_connections:
                    await asyncio.sleep(0.02)
        self.call(go(), timeout + 5)


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk
