"""A deliberately small HTTP/1.1 client on raw sockets, to see the bytes the server sends."""

from __future__ import annotations

import contextlib
import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RawResponse:
    """One parsed response."""

    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


def connect(path: Path | str, timeout: float = 10) -> socket.socket:
    """A connected unix socket."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(path))
    return s


class Reader:
    """Buffered reads from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            if not self._fill():
                raise EOFError(f"connection closed before {marker!r}: {self.buf[:200]!r}")
        head, _, self.buf = self.buf.partition(marker)
        return head

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError(f"connection closed after {len(self.buf)} of {n} bytes")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def rest(self) -> bytes:
        """Everything until the peer closes."""
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out

    def head(self) -> RawResponse:
        """A status line and headers."""
        lines = self.until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        version, status, *reason = lines[0].split(" ", 2)
        assert version.startswith("HTTP/1."), lines[0]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return RawResponse(int(status), reason[0] if reason else "", headers)

    def chunks(self) -> list[bytes]:
        """A chunked body, chunk by chunk."""
        out = []
        while True:
            size = int(self.until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                self.until(b"\r\n")
                return out
            out.append(self.exactly(size))
            assert self.exactly(2) == b"\r\n"

    def response(self, method: str = "GET") -> RawResponse:
        """A whole response."""
        resp = self.head()
        if method == "HEAD" or resp.status in (204, 304) or resp.status < 200:
            return resp
        if resp.headers.get("transfer-encoding") == "chunked":
            resp.body = b"".join(self.chunks())
        elif "content-length" in resp.headers:
            resp.body = self.exactly(int(resp.headers["content-length"]))
        else:
            resp.body = self.rest()
        return resp


def request(path: Path | str, method: str, target: str, body: bytes = b"",
            headers: dict[str, str] | None = None) -> RawResponse:
    """One request on a new connection."""
    with connect(path) as s:
        s.sendall(encode_request(method, target, body, headers))
        return Reader(s).response(method)


def encode_request(method: str, target: str, body: bytes = b"",
                   headers: dict[str, str] | None = None) -> bytes:
    """Request bytes with Host and (for a body) Content-Length."""
    lines = [f"{method} {target} HTTP/1.1", "Host: docker"]
    all_headers = dict(headers or {})
    if body and "Transfer-Encoding" not in all_headers:
        all_headers.setdefault("Content-Length", str(len(body)))
    lines += [f"{k}: {v}" for k, v in all_headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class TLSClient:
    """A TLS client on ``ssl.SSLObject`` that can half-close (send close_notify and keep
    reading), as Go's ``tls.Conn.CloseWrite`` does for the docker CLI."""

    def __init__(self, port: int, ca: Path, cert: tuple[str, str] | None = None) -> None:
        import ssl

        self._ssl = ssl
        ctx = ssl.create_default_context(cafile=str(ca))
        if cert:
            ctx.load_cert_chain(*cert)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname="127.0.0.1")
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._pump()
        self._flush()
        self.buf = b""

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def _pump(self) -> None:
        self._flush()
        data = self.sock.recv(65536)
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()

    def sendall(self, data: bytes) -> None:
        self.tls.write(data)
        self._flush()

    def recv(self, n: int = 65536) -> bytes:
        """Up to n bytes; b"" at the server's close_notify or close."""
        ssl = self._ssl
        while True:
            try:
                return self.tls.read(n)
            except ssl.SSLWantReadError:
                self._pump()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def close_write(self) -> None:
        """close_notify; reading goes on."""
        with contextlib.suppress(self._ssl.SSLWantReadError):
            self.tls.unwrap()
        self._flush()

    def close(self) -> None:
        self.sock.close()
