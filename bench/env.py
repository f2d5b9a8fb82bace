"""The run's environment: the Servin daemon and the peers, each set up on first use."""

from __future__ import annotations

import compileall
import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import servin
from bench.engines import CliEngine, servin_engine
from bench.peers import DockerPeer, OciBundle, PodmanPeer, Registry
from servin.devtools.busybox import write_rootfs
from servin.devtools.daemonproc import DaemonProcess, short_tmpdir

T = TypeVar("T")


class Environment:
    """Everything the scenarios share. ``quick`` runs at tiny sizes with no peers.

    Peers start lazily (running only scenario 1 starts no registry) and are stopped, with
    every container they ran and every temp dir, by ``close()``.
    """

    def __init__(self, quick: bool) -> None:
        self.quick = quick
        # An installed servin has its bytecode compiled (pip does it); a checkout run with
        # PYTHONDONTWRITEBYTECODE would compile every module at every CLI start instead.
        compileall.compile_dir(Path(servin.__file__).parent, quiet=1)
        self.work = short_tmpdir("bench-")
        self._stack = contextlib.ExitStack()
        self._cache: dict[str, object] = {}
        self.busybox_tar = write_rootfs(self.work / "busybox.tar")

    def _once(self, key: str, make: Callable[[], T], stop: Callable[[T], None]) -> T:
        if key not in self._cache:
            value = make()
            self._stack.callback(stop, value)
            self._cache[key] = value
        return self._cache[key]  # type: ignore[return-value]

    # ---- Servin ----------------------------------------------------------------------

    def new_daemon(self) -> DaemonProcess:
        """A fresh Servin daemon (own root, exec root, socket) with busybox imported."""
        daemon = DaemonProcess(short_tmpdir("svb-"), log_level="info").start()
        try:
            daemon.cli("import", "-c", 'CMD ["sh"]', str(self.busybox_tar), "busybox", check=True)
        except BaseException:
            daemon.cleanup()
            raise
        return daemon

    @property
    def daemon(self) -> DaemonProcess:
        """The run's shared Servin daemon."""
        return self._once("servin", self.new_daemon, lambda d: d.cleanup())

    @property
    def servin(self) -> CliEngine:
        return servin_engine(self.daemon.host)

    # ---- peers (None in --quick) -------------------------------------------------------

    def docker(self) -> DockerPeer | None:
        if self.quick:
            return None

        def make() -> DockerPeer:
            peer = DockerPeer(short_tmpdir("bd-")).start()
            peer.import_busybox(self.busybox_tar)
            return peer

        return self._once("docker", make, lambda p: p.stop())

    def podman(self) -> PodmanPeer | None:
        if self.quick:
            return None

        def make() -> PodmanPeer:
            peer = PodmanPeer(short_tmpdir("bp-")).start()
            peer.import_busybox(self.busybox_tar)
            return peer

        return self._once("podman", make, lambda p: p.stop())

    def peers(self) -> list[CliEngine]:
        """The CLI peers (docker, podman) of a full run; [] in --quick."""
        found = [p.engine for p in (self.docker(), self.podman()) if p is not None]
        return found

    def bundle(self) -> OciBundle | None:
        if self.quick:
            return None
        return self._once(
            "bundle",
            lambda: OciBundle(short_tmpdir("bo-"), self.busybox_tar).build(),
            lambda b: b.cleanup(),
        )

    def registry(self) -> Registry:
        """The local registry (also in --quick: it is the pull scenario's source, not a peer)."""
        return self._once("registry", lambda: Registry(short_tmpdir("br-")).start(),
                          lambda r: r.stop())  # fmt: skip

    def scratch(self, name: str) -> Path:
        """A fresh directory under the run's work dir."""
        path = self.work / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            shutil.rmtree(self.work, ignore_errors=True)
