"""The servin daemon: one asyncio process serving the engine's doors on its sockets.

This is the wiring of the core and its front doors (the core never imports its server).
Start-up order: take the root lock (one daemon per root), open the engine and repair what a
crash left, bind every socket, bring the core up (host networking, running containers
reattached), then serve until SIGTERM/SIGINT; shutdown reverses it.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import signal
from pathlib import Path

import grpc

from servin.engine.config import DaemonConfig
from servin.engine.engine import Engine
from servin.engine.permissions import ROOT_MODE
from servin.engine.server.cri.servicer import build_cri_server
from servin.engine.server.cri.servicer import register as register_cri
from servin.engine.server.cri.streaming import StreamingConfig, StreamingServer
from servin.engine.server.cri.streaming.corebackend import CoreStreamingBackend
from servin.engine.server.docker.door import DockerDoor
from servin.engine.server.grpc.server import build_server
from servin.engine.server.sockets import prepare_unix_socket, secure_unix_socket
from servin.errors import Conflict

log = logging.getLogger("servin.daemon")


class RootLock:
    """An exclusive flock on ``<root>/servin.lock`` held for the daemon's lifetime."""

    def __init__(self, root: Path) -> None:
        self.path = root / "servin.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise Conflict naming the daemon that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=ROOT_MODE)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise Conflict(
                    f"another servin daemon (pid {holder}) is already using root {self.path.parent}"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


class Daemon:
    """The running daemon: engine plus servers."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.lock = RootLock(config.root)
        self.engine: Engine | None = None
        self._stop = asyncio.Event()
        self._sockets: list[Path] = []
        # The CRI streaming server (exec/attach/port-forward URLs): made with the engine, for
        # the CRI door's Exec, Attach and PortForward to register requests with.
        self.streaming: StreamingServer | None = None

    def request_stop(self) -> None:
        """Begin a clean shutdown (signal handlers call this)."""
        self._stop.set()

    async def run(self) -> None:
        """Serve until asked to stop."""
        self.lock.acquire()
        try:
            await self._serve()
        finally:
            self.lock.release()

    async def _serve(self) -> None:
        engine = Engine(self.config)
        self.engine = engine
        engine.events.bind(asyncio.get_running_loop())
        await asyncio.to_thread(engine.repair)
        streaming = StreamingServer(CoreStreamingBackend(engine.api),
                                    streaming_config(self.config))
        self.streaming = streaming
        server = build_server(engine.api)
        # The Kubernetes CRI (runtime.v1) on the same sockets as servin.v1, and alone on
        # cri_socket if the config asks.
        register_cri(server, engine.api, streaming)
        servers = [server]
        if self.config.cri_socket:
            servers.append(build_cri_server(engine.api, streaming))
        # The Docker Engine API door (servin/engine/server/docker/door.py).
        docker = DockerDoor(engine.api, self.config)
        started = False
        try:
            for host in self.config.effective_hosts():
                self._bind(server, host)
            if self.config.cri_socket:
                self._bind(servers[-1], f"unix://{self.config.cri_socket}")
            await docker.bind()
            # Host networking is touched only once the sockets are ours (a daemon refused
            # for a taken socket leaves the host as it was).
            started = True
            await engine.start()
            await self._start_streaming(streaming)
            for each in servers:
                await each.start()
            for path in self._sockets:
                secure_unix_socket(path, self.config.socket_group)
            await docker.start()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
            engine.events.publish("daemon", "start", engine.id)
            log.info(
                "servin daemon ready",
                extra={
                    "hosts": ",".join(self.config.effective_hosts()),
                    "docker_hosts": ",".join(docker.hosts),
                    "streaming": streaming.base_url,
                    "root": str(self.config.root),
                    "pid": os.getpid(),
                },
            )
            await self._stop.wait()
            log.info("shutting down")
        finally:
            await docker.stop()
            for each in servers:
                await each.stop(grace=3)
            # Every session ends: an exec still running is killed, attachments detach.
            await streaming.stop()
            if started:
                await engine.stop()
            else:
                await engine.registries.aclose()
            for path in self._sockets:
                path.unlink(missing_ok=True)
            engine.close()

    async def _start_streaming(self, streaming: StreamingServer) -> None:
        """Listen for streaming sessions; a daemon whose port is taken (another daemon on the
        default 10010) serves on without them: the CRI's Exec, Attach and PortForward answer
        Unavailable, everything else works."""
        try:
            await streaming.start()
        except OSError as exc:
            log.error("the CRI streaming server is not running: cannot listen on %s:%d: %s "
                      "(set streaming_port; 0 picks a free port)", self.config.streaming_address,
                      self.config.streaming_port, exc.strerror or exc)

    def _bind(self, server: grpc.aio.Server, host: str) -> None:
        if host.startswith("unix://"):
            path = Path(host[len("unix://") :])
            prepare_unix_socket(path)
            server.add_insecure_port(f"unix:{path}")
            self._sockets.append(path)
        else:
            address = host[len("tcp://") :]
            try:
                if self.config.tls_cert:
                    server.add_secure_port(address, self._tls_credentials())
                else:
                    log.warning("listening on %s without TLS: anyone who reaches it is root", host)
                    server.add_insecure_port(address)
            except RuntimeError as exc:
                raise Conflict(f"cannot listen on {host}: {exc}") from exc


    def _tls_credentials(self) -> grpc.ServerCredentials:
        """Server credentials from the TLS config (client certificates required with verify)."""
        cfg = self.config
        return grpc.ssl_server_credentials(
            [(Path(cfg.tls_key).read_bytes(), Path(cfg.tls_cert).read_bytes())],
            root_certificates=Path(cfg.tls_ca).read_bytes() if cfg.tls_verify else None,
            require_client_auth=cfg.tls_verify,
        )


def run_daemon(config: DaemonConfig) -> None:
    """Run the daemon in this process until SIGTERM/SIGINT."""
    asyncio.run(Daemon(config).run())


def streaming_config(config: DaemonConfig) -> StreamingConfig:
    """The streaming server's settings from the daemon's configuration."""
    return StreamingConfig(
        address=config.streaming_address, port=config.streaming_port,
        tls_cert=config.streaming_tls_cert or None, tls_key=config.streaming_tls_key or None,
        base_url=config.streaming_base_url or None)
