"""A TCP proxy on 127.0.0.1 that can throttle the bytes it relays (for interrupted pulls)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class ThrottlingProxy:
    """Relays every connection to ``target``; ``rate`` bytes/s downstream (0 = unlimited)."""

    def __init__(self, target_port: int, rate: int = 0, cut_after: int = 0) -> None:
        """``cut_after``: drop the first connection that relays that many bytes downstream."""
        self.target_port = target_port
        self.rate = rate
        self.cut_after = cut_after
        self.connections = 0
        self.requests = bytearray()  # what clients sent (request lines and headers)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self.connections += 1
                self._socks += [client, upstream]
            for src, dst, throttled in ((client, upstream, False), (upstream, client, True)):
                t = threading.Thread(target=self._pipe, args=(src, dst, throttled), daemon=True)
                t.start()
                self._threads.append(t)

    def _pipe(self, src: socket.socket, dst: socket.socket, throttled: bool) -> None:
        relayed = 0
        try:
            while not self._stop.is_set():
                data = src.recv(16384)
                if not data:
                    break
                if not throttled:
                    with self._lock:
                        self.requests += data[:4096]
                dst.sendall(data)
                relayed += len(data)
                if throttled and self.cut_after and relayed >= self.cut_after:
                    self.cut_after = 0  # once
                    break
                if throttled and self.rate:
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            for s in self._socks:
                s.close()
        for t in self._threads:
            t.join(2)
