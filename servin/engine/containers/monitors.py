"""The engine's handle on containers' monitors and OCI runtimes: paths, clients, spawning.

Every container that runs has a monitor process (servin.engine.runtime.monitor) that owns
its stdio, logs and exit status and outlives the daemon. Only the core's container services
talk to monitors, through this one object; front doors never do.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from servin.engine.config import DaemonConfig
from servin.engine.containers.model import Container, ContainerPaths
from servin.engine.runtime.monitor.client import (
    Attachment,
    MonitorClient,
    SpawnResult,
    ensure_zygote,
    spawn,
)
from servin.engine.runtime.monitor.protocol import RuntimeConfig, SpawnSpec, monitor_alive
from servin.engine.runtime.monitor.runtimes import make_runtime
from servin.engine.runtime.oci import OCIRuntime
from servin.errors import InvalidArgument, Unavailable

log = logging.getLogger(__name__)

# An attach request waiting for its container's start: the future its attachment goes to,
# and the request's options (those of ``MonitorClient.attach``).
WaitingAttach = tuple[asyncio.Future[Attachment], dict[str, bool]]


class Monitors:
    """Paths, monitor clients, runtimes and the zygote of one daemon's containers."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self._zygote: Path | None = None
        self._zygote_lock = asyncio.Lock()

    def paths(self, container_id: str) -> ContainerPaths:
        """Where a container's files live."""
        return ContainerPaths.of(self.config.root, self.config.exec_root, container_id)

    def client(self, container_id: str) -> MonitorClient:
        """A client of the container's monitor (it connects on each call)."""
        return MonitorClient(self.paths(container_id).state_dir)

    def runtime_config(self, name: str) -> RuntimeConfig:
        """How the monitor runs runtime ``name``; InvalidArgument for an unknown one."""
        if name == "native":
            return RuntimeConfig()
        binary = self.config.runtimes.get(name) or shutil.which(name)
        if not binary:
            raise InvalidArgument(
                f"unknown or missing runtime {name!r}: install it or configure "
                "its path under [runtimes] in the config"
            )
        return RuntimeConfig(
            name=name, binary=binary, root=str(self.config.exec_root / "runtime" / name)
        )

    def runtime(self, c: Container) -> OCIRuntime:
        """The OCI runtime object of a container (for pause, resume, update, delete)."""
        return make_runtime(self.runtime_config(c.runtime), self.paths(c.id).state_dir)

    async def spawn(self, spec: SpawnSpec,
                    attach: Sequence[Mapping[str, bool]] = ()) -> SpawnResult:
        """Have the per-exec-root zygote fork a container's monitor (``attach``: attach
        streams to pass along, see ``client.spawn``); a zygote that died (killed, OOM) is
        started again, once."""
        for attempt in (1, 2):
            async with self._zygote_lock:
                if self._zygote is None:
                    self._zygote = await asyncio.to_thread(ensure_zygote, self.config.exec_root)
                zygote = self._zygote
            try:
                return await spawn(zygote, spec, attach)
            except Unavailable as exc:
                if "monitor zygote" not in str(exc):
                    raise  # the zygote answered: the creation itself failed
                self._zygote = None
                if attempt == 2 or await asyncio.to_thread(monitor_alive, spec.state_dir):
                    raise
                log.warning("the monitor zygote is gone: starting it again")
        raise AssertionError("unreachable")
