"""The asyncio client, used by the console (and anything else living in an event loop)."""

from __future__ import annotations

import grpc

from servin.client.channel import channel_options, grpc_credentials, open_endpoint
from servin.client.facades import (
    AsyncContainers,
    AsyncImages,
    AsyncNetworks,
    AsyncPods,
    AsyncSystem,
    AsyncVolumes,
)
from servin.client.hosts import Target, resolve_target

_ERRORS = (grpc.RpcError,)


class AsyncClient:
    """An asyncio connection to one daemon. ``async with AsyncClient(host) as c: ...``.

    ``host`` is a URL (resolved as ``-H`` is), a resolved ``Target``, or None for the
    environment, the current context or the default socket.
    """

    def __init__(self, host: str | Target | None = None) -> None:
        target = host if isinstance(host, Target) else resolve_target(host)
        self.url = target.url
        endpoint, self.address, self._tunnel = open_endpoint(target)
        try:
            if endpoint.tls is not None:
                self._channel = grpc.aio.secure_channel(
                    endpoint.grpc_target, grpc_credentials(endpoint.tls), options=channel_options()
                )
            else:
                self._channel = grpc.aio.insecure_channel(
                    endpoint.grpc_target, options=channel_options()
                )
        except BaseException:
            if self._tunnel is not None:
                self._tunnel.close()
            raise
        self.containers = AsyncContainers(self._channel, self.url, _ERRORS)
        self.images = AsyncImages(self._channel, self.url, _ERRORS)
        self.volumes = AsyncVolumes(self._channel, self.url, _ERRORS)
        self.networks = AsyncNetworks(self._channel, self.url, _ERRORS)
        self.pods = AsyncPods(self._channel, self.url, _ERRORS)
        self.system = AsyncSystem(self._channel, self.url, _ERRORS)

    async def close(self) -> None:
        """Close the channel (and the ssh tunnel)."""
        await self._channel.close()
        if self._tunnel is not None:
            self._tunnel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()
