"""The one client layer of Servin: the CLI and the console reach the daemon only through here.

``Client`` (blocking) and ``AsyncClient`` (asyncio) expose the servin.v1 services as typed
facades (``client.images.List(...)``, declared in ``facades.py``) taking and returning the
generated protobuf messages, with every gRPC failure turned into a ``servin.errors``
exception. Hosts are ``unix:///path``, ``tcp://host:port`` or
``ssh://user@host[:port][/remote/socket]``.

``Client`` speaks gRPC through ``h2channel`` (HTTP/2 on the ``h2`` library, no grpc import:
the CLI's start-up budget cannot afford grpcio); ``SERVIN_CLIENT_TRANSPORT=grpc`` puts it
on grpcio instead. ``AsyncClient`` uses grpc.aio.
"""

from servin.client.addresses import DEFAULT_HOST
from servin.client.hosts import resolve_host

__all__ = ["DEFAULT_HOST", "AsyncClient", "Client", "resolve_host"]


def __getattr__(name: str) -> object:
    # Lazy: a transport costs tens of milliseconds the CLI's --help should not pay.
    if name == "Client":
        from servin.client.sync import Client

        return Client
    if name == "AsyncClient":
        from servin.client.aio import AsyncClient

        return AsyncClient
    raise AttributeError(name)
