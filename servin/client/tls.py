"""TLS for the lean transport: a connected socket wrapped so two threads may use it at once.

The h2 transport reads on a background thread while callers write. OpenSSL does not allow
``SSL_read`` and ``SSL_write`` on one connection from two threads at the same time, so the TLS
state lives in an ``ssl.SSLObject`` over memory BIOs, touched only under a lock, while the
blocking socket reads and writes happen outside it.
"""

from __future__ import annotations

import socket
import ssl
import threading

from servin.client.addresses import TLSConfig

RECV_SIZE = 256 * 1024


def client_context(tls: TLSConfig) -> ssl.SSLContext:
    """An SSL context offering HTTP/2 (ALPN ``h2``), with the CA and client cert of ``tls``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.verify:
        if tls.ca:
            context.load_verify_locations(cafile=tls.ca)
        else:
            context.load_default_certs()
    else:  # --tls without --tlsverify: encrypted, the daemon's identity unchecked (as docker)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.cert:
        context.load_cert_chain(tls.cert, tls.key or None)
    context.set_alpn_protocols(["h2"])
    return context


class TLSSocket:
    """The parts of a socket the h2 transport uses (recv, sendall, shutdown, close), over TLS.

    ``recv`` runs on one thread (the reader), ``sendall`` on any number of others.
    """

    def __init__(self, sock: socket.socket, tls: TLSConfig, server_hostname: str) -> None:
        self.sock = sock
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._tls = client_context(tls).wrap_bio(
            self._in, self._out, server_hostname=server_hostname
        )
        self._lock = threading.Lock()  # guards the SSLObject and both BIOs
        self._send_lock = threading.Lock()  # keeps records in order on the wire; before _lock
        self._handshake()

    def _handshake(self) -> None:
        while True:
            try:
                with self._lock:
                    self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                data = self.sock.recv(RECV_SIZE)
                if not data:
                    raise ConnectionResetError(
                        "the daemon closed the connection in the TLS handshake"
                    ) from None
                with self._lock:
                    self._in.write(data)
        self._flush()
        if self._tls.selected_alpn_protocol() not in (None, "h2"):
            raise ssl.SSLError("the daemon did not agree to HTTP/2 over TLS")

    def _flush(self) -> None:
        with self._send_lock:
            with self._lock:
                data = self._out.read()
            if data:
                self.sock.sendall(data)

    def recv(self, size: int) -> bytes:
        """Up to ``size`` decrypted bytes; b"" once the daemon closed the connection."""
        while True:
            with self._lock:
                try:
                    data = self._tls.read(size)
                except ssl.SSLWantReadError:
                    data = None
                except ssl.SSLZeroReturnError:
                    return b""
                pending = self._out.pending
            if pending:
                self._flush()  # e.g. replies to TLS 1.3 key updates
            if data is not None:
                return data
            raw = self.sock.recv(RECV_SIZE)
            with self._lock:
                if raw:
                    self._in.write(raw)
                else:
                    self._in.write_eof()

    def sendall(self, data: bytes) -> None:
        """Encrypt and write all of ``data``."""
        with self._send_lock:
            with self._lock:
                self._tls.write(data)
                out = self._out.read()
            self.sock.sendall(out)

    def shutdown(self, how: int) -> None:
        """Shut the underlying socket down (the reader's recv then returns)."""
        self.sock.shutdown(how)

    def close(self) -> None:
        """Close the underlying socket."""
        self.sock.close()

    def settimeout(self, value: float | None) -> None:
        """Set the underlying socket's timeout."""
        self.sock.settimeout(value)
