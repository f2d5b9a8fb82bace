"""Test clients for the CRI streaming server, written apart from the server's code.

They share nothing with ``servin.engine.server.cri.streaming`` but the SPDY dictionary (whose
bytes test_spdy.py checks against the spec's checksum): their own HTTP upgrade, their own SPDY
frame encoder and decoder, their own WebSocket framing (RFC 6455, masked client frames), their
own Kubernetes channel handling. By default the SPDY client behaves like moby/spdystream (what
kubelet, kubectl and crictl use): no flow control at all; with ``flow_control=True`` it speaks
SPDY/3.1 windows (SETTINGS first, WINDOW_UPDATE as it consumes, honours the server's windows).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import struct
import urllib.parse
import zlib
from dataclasses import dataclass, field

from servin.engine.server.cri.streaming.spdy import HEADER_DICTIONARY


class HttpRefused(Exception):
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body!r}")
        self.status = status
        self.headers = headers
        self.body = body


async def _http_upgrade(url: str, method: str, headers: list[tuple[str, str]],
                        ssl: object = None
                        ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, dict[str, str]]:
    u = urllib.parse.urlsplit(url)
    reader, writer = await asyncio.open_connection(u.hostname, u.port, ssl=ssl)
    path = u.path + (f"?{u.query}" if u.query else "")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {u.netloc}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if method == "POST":
        lines.append("Content-Length: 0")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *rest = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    resp: dict[str, str] = {}
    for line in rest:
        if ":" in line:
            k, v = line.split(":", 1)
            key = k.strip().lower()
            resp[key] = (resp[key] + "," if key in resp else "") + v.strip()
    if status != 101:
        body = await reader.read(int(resp.get("content-length", "0")) or 65536)
        writer.close()
        raise HttpRefused(status, resp, body)
    return reader, writer, resp


# --- SPDY ---------------------------------------------------------------------------------


class SpdyStreamReset(Exception):
    pass


@dataclass
class ClientStream:
    id: int
    client: SpdyClient
    data: asyncio.Queue = field(default_factory=asyncio.Queue)  # bytes, b"" = end
    replied: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop()
                                    .create_future())
    reset: int | None = None
    send_window: int = 65536
    unacked: int = 0

    async def write(self, data: bytes) -> None:
        await self.client._send_data(self, data, fin=False)

    async def close(self) -> None:
        await self.client._send_data(self, b"", fin=True)

    async def read(self) -> bytes:
        """Next chunk; b"" at the end (FIN, reset or connection loss)."""
        data = await self.data.get()
        if data:
            self.client._consumed(self, len(data))
        else:
            self.data.put_nowait(b"")  # stay at the end
        return data

    async def read_all(self) -> bytes:
        out = b""
        while chunk := await self.read():
            out += chunk
        return out


class SpdyClient:
    """A minimal SPDY/3 client session over an upgraded HTTP connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 flow_control: bool) -> None:
        self.reader = reader
        self.writer = writer
        self.flow_control = flow_control
        self.streams: dict[int, ClientStream] = {}
        self.next_id = 1
        self.zc = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY,
                                   HEADER_DICTIONARY)
        self.zd = zlib.decompressobj(zdict=HEADER_DICTIONARY)
        self.session_window = 65536
        self.session_unacked = 0
        self.window_event = asyncio.Event()
        self.pings: dict[int, asyncio.Future] = {}
        self.goaway: tuple[int, int] | None = None
        self.closed = asyncio.Event()
        self.task = asyncio.create_task(self._read_loop())
        if flow_control:
            # SETTINGS INITIAL_WINDOW_SIZE 64 KiB: tells the server this client does windows.
            self._control(4, 0, struct.pack(">I", 1) + struct.pack(">II", 7, 65536))

    @classmethod
    async def connect(cls, url: str, protocols: list[str], *, flow_control: bool = False,
                      ssl: object = None) -> tuple[SpdyClient, str]:
        headers = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")]
        headers += [("X-Stream-Protocol-Version", p) for p in protocols]
        reader, writer, resp = await _http_upgrade(url, "POST", headers, ssl)
        return cls(reader, writer, flow_control), resp.get("x-stream-protocol-version", "")

    # frames out
    def _control(self, ftype: int, flags: int, payload: bytes) -> None:
        self.writer.write(struct.pack(">HHI", 0x8003, ftype, (flags << 24) | len(payload))
                          + payload)

    def _headers(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers))
        for k, v in headers.items():
            raw += struct.pack(">I", len(k)) + k.lower().encode()
            raw += struct.pack(">I", len(v)) + v.encode()
        return self.zc.compress(raw) + self.zc.flush(zlib.Z_SYNC_FLUSH)

    async def open_stream(self, headers: dict[str, str], *, wait_reply: bool = True
                          ) -> ClientStream:
        sid = self.next_id
        self.next_id += 2
        stream = ClientStream(sid, self)
        self.streams[sid] = stream
        self._control(1, 0, struct.pack(">IIH", sid, 0, 0) + self._headers(headers))
        await self.writer.drain()
        if wait_reply:
            await asyncio.wait_for(stream.replied, 10)
        return stream

    async def _send_data(self, stream: ClientStream, data: bytes, fin: bool) -> None:
        view = memoryview(data)
        while True:
            n = len(view)
            if self.flow_control:
                n = min(n, stream.send_window, self.session_window)
                if n <= 0 and len(view):
                    self.window_event.clear()
                    await self.window_event.wait()
                    continue
            n = min(n, 16384)
            last = n == len(view)
            chunk = bytes(view[:n])
            flags = 1 if (fin and last) else 0
            self.writer.write(struct.pack(">II", stream.id, (flags << 24) | n) + chunk)
            stream.send_window -= n
            self.session_window -= n
            view = view[n:]
            await self.writer.drain()
            if last:
                return

    def ping(self) -> asyncio.Future:
        pid = 1 + 2 * len(self.pings)
        fut = asyncio.get_running_loop().create_future()
        self.pings[pid] = fut
        self._control(6, 0, struct.pack(">I", pid))
        return fut

    def _consumed(self, stream: ClientStream, n: int) -> None:
        if not self.flow_control or self.closed.is_set():
            return
        stream.unacked += n
        self.session_unacked += n
        if stream.unacked >= 32768:
            self._control(9, 0, struct.pack(">II", stream.id, stream.unacked))
            stream.unacked = 0
        if self.session_unacked >= 32768:
            self._control(9, 0, struct.pack(">II", 0, self.session_unacked))
            self.session_unacked = 0

    # frames in
    async def _read_loop(self) -> None:
        try:
            while True:
                head = await self.reader.readexactly(8)
                w1, w2 = struct.unpack(">II", head)
                payload = await self.reader.readexactly(w2 & 0xFFFFFF)
                flags = w2 >> 24
                if w1 & 0x80000000:
                    self._on_control(w1 & 0xFFFF, flags, payload)
                else:
                    stream = self.streams.get(w1 & 0x7FFFFFFF)
                    if stream is None:
                        continue
                    if payload:
                        stream.data.put_nowait(payload)
                    if flags & 1:
                        stream.data.put_nowait(b"")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.closed.set()
            self.window_event.set()
            for stream in self.streams.values():
                stream.data.put_nowait(b"")
                if not stream.replied.done():
                    stream.replied.set_exception(ConnectionError("connection closed"))

    def _on_control(self, ftype: int, flags: int, p: bytes) -> None:
        if ftype == 2:  # SYN_REPLY
            (sid,) = struct.unpack_from(">I", p)
            self.zd.decompress(p[4:])
            stream = self.streams.get(sid & 0x7FFFFFFF)
            if stream is not None and not stream.replied.done():
                stream.replied.set_result(True)
            if stream is not None and flags & 1:
                stream.data.put_nowait(b"")
        elif ftype == 3:  # RST_STREAM
            sid, status = struct.unpack(">II", p)
            stream = self.streams.get(sid)
            if stream is not None:
                stream.reset = status
                stream.data.put_nowait(b"")
                if not stream.replied.done():
                    stream.replied.set_exception(SpdyStreamReset(status))
        elif ftype == 6:  # PING
            (pid,) = struct.unpack(">I", p)
            if pid in self.pings:
                self.pings[pid].set_result(True)
            else:
                self._control(6, 0, p)
        elif ftype == 7:  # GOAWAY
            self.goaway = struct.unpack(">II", p)
        elif ftype == 9:  # WINDOW_UPDATE
            sid, delta = struct.unpack(">II", p)
            if sid == 0:
                self.session_window += delta
            elif sid in self.streams:
                self.streams[sid].send_window += delta
            self.window_event.set()
        elif ftype in (1, 8):
            self.zd.decompress(p[10:] if ftype == 1 else p[4:])  # keep the context in step

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()
        self.task.cancel()

    def abort(self) -> None:
        """Vanish: drop the TCP connection without a word."""
        transport = self.writer.transport
        transport.abort()  # type: ignore[attr-defined]
        self.task.cancel()


# --- WebSocket ----------------------------------------------------------------------------


class WsClient:
    """A minimal RFC 6455 client: masked frames out, whole messages in, pings answered."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 subprotocol: str) -> None:
        self.reader = reader
        self.writer = writer
        self.subprotocol = subprotocol
        self.close_code: int | None = None

    @classmethod
    async def connect(cls, url: str, protocols: list[str], ssl: object = None) -> WsClient:
        key = base64.b64encode(os.urandom(16)).decode()
        headers = [("Connection", "Upgrade"), ("Upgrade", "websocket"),
                   ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", key)]
        if protocols:
            headers.append(("Sec-WebSocket-Protocol", ", ".join(protocols)))
        reader, writer, resp = await _http_upgrade(url, "GET", headers, ssl)
        expect = base64.b64encode(hashlib.sha1(
            key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()).decode()
        assert resp.get("sec-websocket-accept") == expect
        return cls(reader, writer, resp.get("sec-websocket-protocol", ""))

    def _frame(self, opcode: int, payload: bytes) -> bytes:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack(">BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack(">BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack(">BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 4096 else \
            _xor(payload, mask)
        return head + mask + masked

    async def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            self.writer.write(self._frame(1, data.encode()))
        else:
            self.writer.write(self._frame(2, data))
        await self.writer.drain()

    async def recv(self) -> bytes | str | None:
        """The next data message; None after a close frame or the connection's end."""
        parts: list[bytes] = []
        opcode_first = None
        try:
            while True:
                b1, b2 = await self.reader.readexactly(2)
                n = b2 & 0x7F
                if n == 126:
                    (n,) = struct.unpack(">H", await self.reader.readexactly(2))
                elif n == 127:
                    (n,) = struct.unpack(">Q", await self.reader.readexactly(8))
                assert not b2 & 0x80, "server frames are never masked"
                payload = await self.reader.readexactly(n)
                opcode = b1 & 0x0F
                if opcode == 9:
                    self.writer.write(self._frame(10, payload))
                    continue
                if opcode == 10:
                    continue
                if opcode == 8:
                    self.close_code = struct.unpack(">H", payload[:2])[0] if payload else 1005
                    self.writer.write(self._frame(8, payload[:2]))
                    return None
                if opcode in (1, 2):
                    opcode_first = opcode
                parts.append(payload)
                if b1 & 0x80:
                    data = b"".join(parts)
                    return data.decode() if opcode_first == 1 else data
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    async def ping(self, payload: bytes = b"hb") -> None:
        self.writer.write(self._frame(9, payload))
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()

    def abort(self) -> None:
        self.writer.transport.abort()  # type: ignore[attr-defined]


def _xor(data: bytes, mask: bytes) -> bytes:
    n = len(data)
    m = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ m).to_bytes(n, "big")


class WsChannels:
    """The Kubernetes channel protocol on a WsClient: demultiplexes messages per channel."""

    def __init__(self, ws: WsClient, base64_codec: bool = False) -> None:
        self.ws = ws
        self.base64 = base64_codec
        self.queues: dict[int, asyncio.Queue] = {}
        self.done = asyncio.Event()
        self.task = asyncio.create_task(self._loop())

    def queue(self, ch: int) -> asyncio.Queue:
        return self.queues.setdefault(ch, asyncio.Queue())

    async def _loop(self) -> None:
        try:
            while (msg := await self.ws.recv()) is not None:
                if self.base64:
                    assert isinstance(msg, str)
                    ch, data = ord(msg[0]) - ord("0"), base64.b64decode(msg[1:])
                else:
                    assert isinstance(msg, bytes)
                    ch, data = msg[0], msg[1:]
                self.queue(ch).put_nowait(data)
        finally:
            self.done.set()

    async def send(self, ch: int, data: bytes) -> None:
        if self.base64:
            await self.ws.send(chr(ord("0") + ch) + base64.b64encode(data).decode())
        else:
            await self.ws.send(bytes([ch]) + data)

    async def close_channel(self, ch: int) -> None:
        """v5's close signal."""
        await self.ws.send(bytes([255, ch]))

    def drain(self, ch: int) -> bytes:
        q = self.queue(ch)
        out = b""
        while not q.empty():
            out += q.get_nowait()
        return out

    async def read_until(self, ch: int, needle: bytes, timeout: float = 15) -> bytes:
        out = b""
        q = self.queue(ch)
        async with asyncio.timeout(timeout):
            while needle not in out:
                out += await q.get()
        return out


class WsPipe:
    """Makes a WsClient look like the (reader, writer) a SpdyClient runs on: binary messages
    carry the SPDY bytes, in both directions."""

    def __init__(self, ws: WsClient) -> None:
        self.ws = ws
        self.reader = asyncio.StreamReader()
        self.transport = self
        self.task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        while (msg := await self.ws.recv()) is not None:
            assert isinstance(msg, bytes)
            self.reader.feed_data(msg)
        self.reader.feed_eof()

    def write(self, data: bytes) -> None:
        self.ws.writer.write(self.ws._frame(2, data))

    async def drain(self) -> None:
        await self.ws.writer.drain()

    def close(self) -> None:
        self.ws.writer.close()

    async def wait_closed(self) -> None:
        await self.ws.close()

    def abort(self) -> None:
        self.ws.abort()


def parse_status(raw: bytes) -> dict:
    return json.loads(raw) if raw else {}
