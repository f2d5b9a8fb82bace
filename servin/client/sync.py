"""The blocking client, used by the CLI.

It talks through the lean transport (``servin.client.h2channel``: gRPC over the ``h2``
library, no grpc import, which keeps ``servin ps`` fast); ``SERVIN_CLIENT_TRANSPORT=grpc``
switches to grpcio's channel instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, BinaryIO, Protocol

from servin.client.channel import Endpoint, open_endpoint
from servin.client.facades import (
    SyncContainers,
    SyncImages,
    SyncNetworks,
    SyncPods,
    SyncSystem,
    SyncVolumes,
)
from servin.client.hosts import Target, resolve_target
from servin.client.services import Channel, Errors
from servin.errors import InvalidArgument

if TYPE_CHECKING:  # only import_image needs these: ps should not load them
    from pathlib import Path

    from servin.api.servin.v1 import images_pb2

IMPORT_CHUNK = 1024 * 1024
TRANSPORT_ENV = "SERVIN_CLIENT_TRANSPORT"
TRANSPORTS = ("h2", "grpc")


class _ClosableChannel(Channel, Protocol):
    def close(self) -> None: ...


def _open_channel(endpoint: Endpoint) -> tuple[_ClosableChannel, Errors]:
    """The channel for ``endpoint`` on the chosen transport, and its call failure classes."""
    transport = os.environ.get(TRANSPORT_ENV) or "h2"
    if transport == "grpc":
        import grpc

        from servin.client.channel import channel_options, grpc_credentials

        if endpoint.tls is not None:
            channel = grpc.secure_channel(
                endpoint.grpc_target, grpc_credentials(endpoint.tls), options=channel_options()
            )
        else:
            channel = grpc.insecure_channel(endpoint.grpc_target, options=channel_options())
        return channel, (grpc.RpcError,)
    if transport == "h2":
        from servin.client.errors import StatusError
        from servin.client.h2channel import H2Channel

        return H2Channel(endpoint), (StatusError,)
    raise InvalidArgument(f"{TRANSPORT_ENV}={transport!r}: use one of {', '.join(TRANSPORTS)}")


def registry_auth(reference: str) -> images_pb2.RegistryAuth:
    """The stored credentials for the registry ``reference`` lives in."""
    from servin.api.servin.v1 import images_pb2
    from servin.client import credentials
    from servin.reference import parse_reference

    stored = credentials.get(parse_reference(reference).domain)
    return images_pb2.RegistryAuth(username=stored.username, password=stored.password,
                                   identity_token=stored.identity_token)


class Client:
    """A connection to one daemon. Use as a context manager or call ``close``.

    ``host`` is a URL (resolved as ``-H`` is), a resolved ``Target``, or None for the
    environment, the current context or the default socket.
    """

    def __init__(self, host: str | Target | None = None) -> None:
        target = host if isinstance(host, Target) else resolve_target(host)
        self.url = target.url
        endpoint, self.address, self._tunnel = open_endpoint(target)
        try:
            self._channel, errors = _open_channel(endpoint)
        except BaseException:
            if self._tunnel is not None:
                self._tunnel.close()
            raise
        self.containers = SyncContainers(self._channel, self.url, errors)
        self.images = SyncImages(self._channel, self.url, errors)
        self.volumes = SyncVolumes(self._channel, self.url, errors)
        self.networks = SyncNetworks(self._channel, self.url, errors)
        self.pods = SyncPods(self._channel, self.url, errors)
        self.system = SyncSystem(self._channel, self.url, errors)

    def import_image(
        self,
        source: BinaryIO | Path,
        reference: str = "",
        *,
        changes: Iterable[str] = (),
        message: str = "",
        platform: str = "",
        created: int | None = None,
    ) -> images_pb2.ImportImageResponse:
        """Stream a rootfs tarball (path or open binary file) into a new image (``created``:
        its creation time in Unix seconds, default now)."""
        from pathlib import Path

        from servin.api.servin.v1 import images_pb2

        def messages() -> Iterator[images_pb2.ImportImageInput]:
            first = images_pb2.ImportImageInput(
                reference=reference, changes=list(changes), message=message, platform=platform
            )
            if created is not None:
                first.created.FromSeconds(created)
            yield first
            stream = open(source, "rb") if isinstance(source, Path) else source  # noqa: SIM115
            try:
                while chunk := stream.read(IMPORT_CHUNK):
                    yield images_pb2.ImportImageInput(data=chunk)
            finally:
                if isinstance(source, Path):
                    stream.close()

        return self.images.Import(messages())

    def load_images(self, source: BinaryIO | Path) -> Iterator[images_pb2.ImageProgress]:
        """Stream a docker-archive or OCI layout tarball (path or open binary file) in;
        yields the daemon's progress, then one message per loaded image."""
        from pathlib import Path

        from servin.api.servin.v1 import images_pb2


        def messages() -> Iterator[images_pb2.LoadImageInput]:
            stream = open(source, "rb") if isinstance(source, Path) else source  # noqa: SIM115
            try:
                while chunk := stream.read(IMPORT_CHUNK):
                    yield images_pb2.LoadImageInput(data=chunk)
            finally:
                if isinstance(source, Path):
                    stream.close()

        return self.images.Load(messages())

    def build(self, options: images_pb2.BuildOptions,
              context: Iterable[bytes]) -> Iterator[images_pb2.BuildProgress]:
        """Build an image: the options, then the context's tar stream (sent by a background
        thread while the progress comes back)."""
        from servin.api.servin.v1 import images_pb2

        def messages() -> Iterator[images_pb2.BuildInput]:
            yield images_pb2.BuildInput(options=options)
            for chunk in context:
                if chunk:
                    yield images_pb2.BuildInput(data=chunk)

        return self.images.Build(messages())

    def save_images(self, references: Iterable[str], fmt: str = "") -> Iterator[bytes]:
        """The named images as a tarball (``docker-archive`` or ``oci-archive``), in chunks."""
        from servin.api.servin.v1 import images_pb2

        request = images_pb2.SaveImagesRequest(references=list(references), format=fmt)
        for chunk in self.images.Save(request):
            yield chunk.data

    def pull(self, reference: str, platform: str = "") -> Iterator[images_pb2.ImageProgress]:
        """Pull an image; the stored credentials of its registry go with the request."""
        from servin.api.servin.v1 import images_pb2

        return self.images.Pull(images_pb2.PullImageRequest(
            reference=reference, platform=platform, auth=registry_auth(reference)))

    def push(self, reference: str) -> Iterator[images_pb2.ImageProgress]:
        """Push an image; the stored credentials of its registry go with the request."""
        from servin.api.servin.v1 import images_pb2

        return self.images.Push(images_pb2.PushImageRequest(
            reference=reference, auth=registry_auth(reference)))

    def login(self, server: str, username: str, password: str) -> images_pb2.LoginResponse:
        """Have the daemon check credentials with a registry (storing them is the caller's)."""
        from servin.api.servin.v1 import images_pb2

        return self.images.Login(images_pb2.LoginRequest(
            server=server,
            auth=images_pb2.RegistryAuth(username=username, password=password)))

    def close(self) -> None:
        """Close the channel (and the ssh tunnel)."""
        self._channel.close()
        if self._tunnel is not None:
            self._tunnel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
