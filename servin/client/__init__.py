"""The one client layer of Servin: the CLI and the console reach the daemon only through here.

``Client`` (blocking) and ``AsyncClient`` (asyncio) expose the servin.v1 services as
attributes (``client.images.List(...)``) taking and returning the generated protobuf
messages, with every gRPC failure turned into a ``servin.errors`` exception. Hosts are
``unix:///path``, ``tcp://host:port`` or ``ssh://user@host[:port][/remote/socket]``.
"""

from servin.client.hosts import DEFAULT_HOST, resolve_host

__all__ = ["DEFAULT_HOST", "AsyncClient", "Client", "resolve_host"]


def __getattr__(name: str) -> object:
    # Lazy: importing grpc costs tens of milliseconds the CLI's --help should not pay.
    if name == "Client":
        from servin.client.sync import Client

        return Client
    if name == "AsyncClient":
        from servin.client.aio import AsyncClient

        return AsyncClient
    raise AttributeError(name)
