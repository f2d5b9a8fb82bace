"""TLS for the Docker API's tcp listeners, with the half-close a hijacked connection needs.

asyncio's own TLS ends the connection when the client sends close_notify. The docker CLI
sends exactly that when its stdin ends (``CloseWrite`` on a TLS connection) and then waits for
the rest of the output, as it does on a unix socket. So TLS is done here with an
``ssl.SSLObject`` over the plain stream: close_notify reads as end of input, and writing goes
on until the server is done.

``TLSReader`` and ``TLSWriter`` offer the parts of ``asyncio.StreamReader``/``StreamWriter``
the HTTP server uses; reading pulls from the socket only when asked (natural back-pressure).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

_HANDSHAKE_READ = 16 * 1024


class TLSReader:
    """Decrypted bytes from the client."""

    def __init__(self, tls: ssl.SSLObject, incoming: ssl.MemoryBIO,
                 raw: asyncio.StreamReader, writer: TLSWriter) -> None:
        self._tls = tls
        self._incoming = incoming
        self._raw = raw
        self._writer = writer
        self._eof = False

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes; b"" once the client sent close_notify or closed."""
        size = n if n > 0 else 64 * 1024
        while not self._eof:
            try:
                data = self._tls.read(size)
            except ssl.SSLWantReadError:
                raw = await self._raw.read(64 * 1024)
                if raw:
                    self._incoming.write(raw)
                else:
                    self._incoming.write_eof()
                continue
            except ssl.SSLZeroReturnError:  # close_notify: the client's half-close
                self._eof = True
                break
            except ssl.SSLError as exc:  # a ragged end or a broken record
                self._eof = True
                if self._incoming.eof:
                    break
                raise ConnectionResetError(f"TLS error: {exc.reason or exc}") from None
            finally:
                self._writer.flush_tls()  # anything the TLS layer must answer
            if data:
                return data
            self._eof = True
        return b""


class _TLSTransport:
    """What the HTTP server asks of a transport, for a TLS connection."""

    def __init__(self, writer: TLSWriter) -> None:
        self._writer = writer

    def is_closing(self) -> bool:
        return self._writer.raw.transport.is_closing()

    def get_write_buffer_size(self) -> int:
        return self._writer.raw.transport.get_write_buffer_size()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self._writer.write_eof()

    def close(self) -> None:
        self._writer.raw.close()

    def abort(self) -> None:
        self._writer.raw.transport.abort()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self._writer.tls
        if name == "peercert":
            return self._writer.tls.getpeercert()
        return self._writer.raw.get_extra_info(name, default)


class TLSWriter:
    """Encrypts what the server writes."""

    def __init__(self, tls: ssl.SSLObject, outgoing: ssl.MemoryBIO,
                 raw: asyncio.StreamWriter) -> None:
        self.tls = tls
        self._outgoing = outgoing
        self.raw = raw
        self.transport = _TLSTransport(self)
        self._eof_sent = False

    def flush_tls(self) -> None:
        """Send whatever the TLS layer produced (records, alerts, tickets)."""
        pending = self._outgoing.read()
        if pending and not self.raw.transport.is_closing():
            self.raw.write(pending)

    def write(self, data: bytes) -> None:
        if self._eof_sent or self.raw.transport.is_closing():
            return  # as a closed asyncio transport does: nothing more goes out
        if data:
            try:
                self.tls.write(data)
            except ssl.SSLError:
                self.raw.transport.abort()
                return
            self.flush_tls()

    def writelines(self, parts: list[bytes]) -> None:
        self.write(b"".join(parts))

    async def drain(self) -> None:
        await self.raw.drain()

    def write_eof(self) -> None:
        """close_notify: the client reads the end of the output."""
        if self._eof_sent:
            return
        self._eof_sent = True
        with contextlib.suppress(ssl.SSLError):
            self.tls.unwrap()
        self.flush_tls()

    def close(self) -> None:
        self.raw.close()


async def accept_tls(context: ssl.SSLContext, raw_reader: asyncio.StreamReader,
                     raw_writer: asyncio.StreamWriter,
                     timeout: float) -> tuple[TLSReader, TLSWriter]:
    """The server side of the handshake within ``timeout`` seconds; ConnectionError or
    TimeoutError when it fails (the caller closes the raw connection)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=True)
    async with asyncio.timeout(timeout):
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pending = outgoing.read()
                if pending:
                    raw_writer.write(pending)
                data = await raw_reader.read(_HANDSHAKE_READ)
                if not data:
                    raise ConnectionResetError(
                        "the client left during the TLS handshake") from None
                incoming.write(data)
            except ssl.SSLError as exc:
                pending = outgoing.read()  # the alert that says why
                if pending:
                    raw_writer.write(pending)
                raise ConnectionResetError(f"TLS handshake failed: {exc.reason or exc}") \
                    from None
    writer = TLSWriter(tls, outgoing, raw_writer)
    writer.flush_tls()
    return TLSReader(tls, incoming, raw_reader, writer), writer
