"""The embedded DNS resolver of user-defined networks.

The daemon listens on UDP port 53 of each user network's gateway address (the bridge's
address on the host, so nothing is needed inside the container) and answers with the
addresses of running containers on that network: by name, short ID, host name and
``--network-alias`` (several containers on one alias answer in rotating order). Every other
question is forwarded to the container's ``--dns`` servers, else the host's resolvers.
Packets are encoded and decoded with dnslib.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import socket
from collections.abc import Callable
from pathlib import Path

from dnslib import QTYPE, RCODE, RR, A, DNSRecord

log = logging.getLogger(__name__)

FORWARD_TIMEOUT = 3.0
TTL = 600
_NAMESERVER = re.compile(r"^\s*nameserver\s+(\S+)", re.M)

# Looks up (network_id, name, client address) -> addresses (a client's links name containers
# for it alone); and a client address -> its --dns servers.
Lookup = Callable[[str, str, str], list[str]]
Upstreams = Callable[[str, str], list[str]]


def host_resolvers(path: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The host's nameservers (the daemon runs on the host, so loopback ones work too)."""
    try:
        return _NAMESERVER.findall(path.read_text())
    except OSError:
        return []


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer, network_id: str) -> None:
        self.server = server
        self.network_id = network_id
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(data, addr))
        self.server.tasks.add(task)
        task.add_done_callback(self.server.tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self.server.resolve(self.network_id, data, addr[0])
        if reply and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


class DNSServer:
    """One UDP listener per user network, all answered from the engine's records."""

    def __init__(self, lookup: Lookup, upstreams: Upstreams) -> None:
        self.lookup = lookup
        self.upstreams = upstreams
        self._listeners: dict[str, asyncio.DatagramTransport] = {}
        self._tcp: dict[str, asyncio.Server] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def listen(self, network_id: str, address: str) -> None:
        """Serve the network on ``address``:53 (idempotent). Failures are logged, not raised."""
        if network_id in self._listeners:
            return
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Listener(self, network_id), local_addr=(address, 53),
                family=socket.AF_INET,
            )
        except OSError as exc:
            log.warning("cannot serve DNS on a network",
                        extra={"network": network_id, "address": address, "error": str(exc)})
            return
        self._listeners[network_id] = transport
        try:
            # Clients retry over TCP when an answer is truncated.
            self._tcp[network_id] = await asyncio.start_server(
                lambda r, w: self._serve_tcp(network_id, r, w), address, 53,
                family=socket.AF_INET,
            )
        except OSError as exc:
            log.warning("cannot serve DNS over TCP on a network",
                        extra={"network": network_id, "address": address, "error": str(exc)})

    async def _serve_tcp(self, network_id: str, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        client = (writer.get_extra_info("peername") or ("", 0))[0]
        try:
            while True:
                size = int.from_bytes(await reader.readexactly(2), "big")
                reply = await self.resolve(network_id, await reader.readexactly(size), client)
                if reply is None:
                    break
                writer.write(len(reply).to_bytes(2, "big") + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def stop(self, network_id: str) -> None:
        """Stop serving a network."""
        transport = self._listeners.pop(network_id, None)
        if transport is not None:
            transport.close()
        server = self._tcp.pop(network_id, None)
        if server is not None:
            server.close()

    async def close(self) -> None:
        """Stop every listener and pending answer."""
        for network_id in list(self._listeners):
            self.stop(network_id)
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def resolve(self, network_id: str, data: bytes, client: str) -> bytes | None:
        """The answer to one query packet (None for garbage)."""
        try:
            request = DNSRecord.parse(data)
        except Exception:  # dnslib raises several kinds on malformed packets
            return None
        if not request.questions:
            return None
        question = request.q
        name = str(question.qname).rstrip(".").lower()
        addresses = self.lookup(network_id, name, client) if name else []
        if addresses:
            reply = request.reply()
            if question.qtype in (QTYPE.A, QTYPE.ANY):
                random.shuffle(addresses)  # round-robin across the containers of an alias
                for address in addresses:
                    reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(address), ttl=TTL))
            # A known container name with no IPv6: an empty NOERROR answer for AAAA.
            packed: bytes = reply.pack()
            return packed
        return await self._forward(request, data, self.upstreams(network_id, client))

    async def _forward(self, request: DNSRecord, data: bytes, servers: list[str]) -> bytes:
        for server in servers:
            try:
                return await asyncio.wait_for(_udp_query(data, server), FORWARD_TIMEOUT)
            except (OSError, TimeoutError):
                continue
        reply = request.reply()
        reply.header.rcode = RCODE.SERVFAIL
        failed: bytes = reply.pack()
        return failed


async def _udp_query(data: bytes, server: str) -> bytes:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[bytes] = loop.create_future()

    class _Client(asyncio.DatagramProtocol):
        def datagram_received(self, reply: bytes, addr: tuple[str, int]) -> None:
            if not future.done():
                future.set_result(reply)

        def error_received(self, exc: Exception) -> None:
            if not future.done():
                future.set_exception(exc)

    transport, _ = await loop.create_datagram_endpoint(_Client, remote_addr=(server, 53))
    try:
        transport.sendto(data)
        return await future
    finally:
        transport.close()
