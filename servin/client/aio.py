"""The asyncio client, used by the console (and anything else living in an event loop)."""

from __future__ import annotations

from typing import Any

import grpc

from servin.client.channel import channel_options, channel_target
from servin.client.hosts import resolve_host
from servin.client.services import AsyncService

_ERRORS = (grpc.RpcError,)


class AsyncClient:
    """An asyncio connection to one daemon. ``async with AsyncClient(host) as c: ...``."""

    def __init__(self, host: str | None = None) -> None:
        self.url = resolve_host(host)
        target, self.address, self._tunnel = channel_target(self.url)
        self._channel = grpc.aio.insecure_channel(target, options=channel_options())
        self.containers: Any = AsyncService(self._channel, "containers", self.url, _ERRORS)
        self.images: Any = AsyncService(self._channel, "images", self.url, _ERRORS)
        self.volumes: Any = AsyncService(self._channel, "volumes", self.url, _ERRORS)
        self.networks: Any = AsyncService(self._channel, "networks", self.url, _ERRORS)
        self.pods: Any = AsyncService(self._channel, "pods", self.url, _ERRORS)
        self.system: Any = AsyncService(self._channel, "system", self.url, _ERRORS)

    async def close(self) -> None:
        """Close the channel (and the ssh tunnel)."""
        await self._channel.close()
        if self._tunnel is not None:
            self._tunnel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()
