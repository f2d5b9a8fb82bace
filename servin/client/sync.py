"""The blocking client, used by the CLI."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import grpc

from servin.api.servin.v1 import images_pb2
from servin.client.channel import channel_options, channel_target
from servin.client.hosts import resolve_host
from servin.client.services import SyncService

IMPORT_CHUNK = 1024 * 1024


class Client:
    """A connection to one daemon. Use as a context manager or call ``close``."""

    def __init__(self, host: str | None = None) -> None:
        self.url = resolve_host(host)
        target, self.address, self._tunnel = channel_target(self.url)
        self._channel = grpc.insecure_channel(target, options=channel_options())
        self.containers: Any = SyncService(self._channel, "containers", self.url)
        self.images: Any = SyncService(self._channel, "images", self.url)
        self.volumes: Any = SyncService(self._channel, "volumes", self.url)
        self.networks: Any = SyncService(self._channel, "networks", self.url)
        self.pods: Any = SyncService(self._channel, "pods", self.url)
        self.system: Any = SyncService(self._channel, "system", self.url)

    def import_image(
        self,
        source: BinaryIO | Path,
        reference: str = "",
        *,
        changes: Iterable[str] = (),
        message: str = "",
        platform: str = "",
    ) -> images_pb2.ImportImageResponse:
        """Stream a rootfs tarball (path or open binary file) into a new image."""

        def messages() -> Iterator[images_pb2.ImportImageInput]:
            yield images_pb2.ImportImageInput(
                reference=reference, changes=list(changes), message=message, platform=platform
            )
            stream = open(source, "rb") if isinstance(source, Path) else source  # noqa: SIM115
            try:
                while chunk := stream.read(IMPORT_CHUNK):
                    yield images_pb2.ImportImageInput(data=chunk)
            finally:
                if isinstance(source, Path):
                    stream.close()

        return self.images.Import(messages())

    def close(self) -> None:
        """Close the channel (and the ssh tunnel)."""
        self._channel.close()
        if self._tunnel is not None:
            self._tunnel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
