"""The state every CRI verb module shares: the core's API and the streaming server, and the
lookups of CRI objects among the core's.

Each verb family is a mixin over ``Verbs`` (one module per verb or small family, as
containerd's CRI server is laid out); ``servicer.py`` assembles them into the service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from servin.engine.containers.model import Container
from servin.engine.engine import CoreAPI
from servin.engine.server.cri import common
from servin.engine.server.cri.streaming.server import StreamingServer
from servin.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    from servin.engine.pods.service import PodView


class Verbs:
    """The collaborators of the CRI servicers (no state of their own)."""

    core: CoreAPI
    streaming: StreamingServer | None

    def handlers(self) -> list[str]:
        """The runtime handlers a sandbox may name ("" = the daemon's default)."""
        return ["", *self.core.system.runtimes()]

    async def cri_container(self, container_id: str) -> Container:
        """A CRI container by ID (or unique prefix); NotFound for anything else."""
        if not container_id:
            raise InvalidArgument("container ID is required")
        try:
            c = await self.core.containers.get(container_id)
        except NotFound:
            raise NotFound(f"container {container_id!r} not found") from None
        if c.host_config.annotations.get(common.KIND) != common.CONTAINER_KIND:
            raise NotFound(f"container {container_id!r} not found")
        return c

    async def cri_sandbox(self, sandbox_id: str) -> PodView:
        """A CRI pod sandbox by ID (or unique prefix); NotFound for anything else."""
        if not sandbox_id:
            raise InvalidArgument("pod sandbox ID is required")
        try:
            view = await self.core.pods.inspect(sandbox_id)
        except NotFound:
            raise NotFound(f"pod sandbox {sandbox_id!r} not found") from None
        if view.pod.config.annotations.get(common.KIND) != common.SANDBOX_KIND:
            raise NotFound(f"pod sandbox {sandbox_id!r} not found")
        return view
