"""A layer blob's bytes read straight off the connection in the thread that unpacks them.

The registry session (httpx, on the event loop) does what needs its logic: authentication,
retries, mirrors, redirects. It hands over where the bytes are (``Location``: the final URL
and the headers that reach it); ``BlobSource`` then reads the body with ``http.client`` in
the caller's worker thread, in chunks of a megabyte, and tees every chunk into the content
store's writer (one sha256 pass, one write) on its way to the decompressor and the tar
reader. No chunk crosses a thread or the event loop, so three layers transfer and unpack on
their own threads instead of queueing behind one event loop's per-chunk work.

A connection cut short is resumed with a ``Range`` request from the bytes already stored;
an expired token or redirect is resolved again through the session (``relocate``).
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from servin.engine.store.content import BlobWriter
from servin.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable

CHUNK = 1 << 20
RETRIES = 3  # connections of one blob in all, before giving up
MAX_REDIRECTS = 5
TIMEOUT = 30.0
_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class Location:
    """Where a blob's bytes are served: the final URL and the headers to send there."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)


class Cancelled(Unavailable):
    """The transfer was stopped from outside (the pull was cancelled)."""


class BlobSource(io.RawIOBase):
    """The bytes of one blob, fetched as they are read, each chunk also given to ``writer``.

    ``relocate(offset)`` (blocking; it runs the session's logic on the event loop) returns
    where to fetch from; it is asked once at the start and again when the location stops
    working (an expired token or signature). ``progress(stored)`` is called after chunks.
    The stream ends exactly at ``size`` bytes: a server sending more is refused.
    """

    def __init__(self, relocate: Callable[[int], Location], size: int, writer: BlobWriter,
                 contexts: Callable[[str], ssl.SSLContext],
                 progress: Callable[[int], None] = lambda n: None, what: str = "blob") -> None:
        super().__init__()
        self._relocate = relocate
        self.size = size
        self.writer = writer
        self._contexts = contexts
        self._progress = progress
        self._what = what
        self._location: Location | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._resp: http.client.HTTPResponse | None = None
        self._skip = 0  # bytes a server that ignored our Range sends again first
        self._failures = 0
        self._cancelled = threading.Event()

    def readable(self) -> bool:
        return True

    def cancel(self) -> None:
        """Stop the transfer: the reading thread's next read fails (callable from any thread)."""
        self._cancelled.set()
        conn = self._conn
        if conn is not None and conn.sock is not None:
            try:  # noqa: SIM105 - wakes a thread blocked in recv
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]  # bytes-like
        """Fill ``buffer`` with the next bytes of the blob (0 at its end)."""
        view = memoryview(buffer).cast("B")
        while True:
            if self._cancelled.is_set():
                raise Cancelled(f"{self._what}: the transfer was cancelled")
            left = self.size - self.writer.size
            if left <= 0:
                self._check_end()
                return 0
            try:
                if self._resp is None:
                    self._open()
                assert self._resp is not None
                want = view[:min(len(view), left, CHUNK)] if not self._skip else \
                    view[:min(len(view), self._skip, CHUNK)]
                n = self._resp.readinto(want)
            except (OSError, http.client.HTTPException) as exc:
                if self._cancelled.is_set():
                    raise Cancelled(f"{self._what}: the transfer was cancelled") from None
                self._retry(exc)
                continue
            if n == 0:
                self._retry(EOFError("the connection closed early"))
                continue
            if self._skip:
                self._skip -= n
                continue
            chunk = view[:n]
            self.writer.write(chunk)
            self._progress(self.writer.size)
            return n

    def drain(self) -> None:
        """Read (and store) whatever is left of the blob."""
        scratch = memoryview(bytearray(CHUNK))
        while self.readinto(scratch):
            pass

    def close(self) -> None:
        """Drop the connection (the writer stays the caller's)."""
        self._disconnect()
        super().close()

    # -- connections ----------------------------------------------------------------------

    def _check_end(self) -> None:
        """At the blob's size: a server still sending (a bigger blob) is refused."""
        resp = self._resp
        if resp is None:
            return
        try:
            extra = resp.read(1)
        except (OSError, http.client.HTTPException):
            extra = b""
        if extra:
            raise InvalidArgument(f"{self._what} is larger than the {self.size} bytes the "
                                  "manifest says")
        self._disconnect()

    def _retry(self, exc: BaseException) -> None:
        self._disconnect()
        self._failures += 1
        if self._failures >= RETRIES:
            raise Unavailable(f"{self._what}: downloading failed: {exc}") from None

    def _disconnect(self) -> None:
        if self._resp is not None:
            self._resp.close()
            self._resp = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _open(self, relocated: bool = False) -> None:
        """Connect and send the GET (from the bytes stored so far), following redirects."""
        offset = self.writer.size
        if self._location is None:
            self._location = self._relocate(offset)
        location = self._location
        url, headers = location.url, dict(location.headers)
        for _ in range(MAX_REDIRECTS + 1):
            if offset:
                headers["Range"] = f"bytes={offset}-"
            resp = self._request(url, headers)
            status = resp.status
            if status in _REDIRECTS and resp.getheader("location"):
                target = urljoin(url, resp.getheader("location", ""))
                self._disconnect()
                if urlsplit(target).netloc != urlsplit(url).netloc:
                    headers.pop("Authorization", None)  # credentials stay with their host
                url = target
                continue
            if status in (200, 206):
                # A server that ignores Range sends the blob from its start.
                self._skip = offset if status == 200 else 0
                return
            self._disconnect()
            if status in (401, 403) and not relocated:
                # An expired token or signature: ask the session where to go now (once).
                self._location = None
                self._location = self._relocate(offset)
                self._open(relocated=True)
                return
            raise _status_error(status, self._what)
        raise Unavailable(f"{self._what}: more than {MAX_REDIRECTS} redirects")

    def _request(self, url: str, headers: dict[str, str]) -> http.client.HTTPResponse:
        parts = urlsplit(url)
        host = parts.netloc
        if parts.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, timeout=TIMEOUT, context=self._contexts(host))
        elif parts.scheme == "http":
            conn = http.client.HTTPConnection(host, timeout=TIMEOUT)
        else:
            raise InvalidArgument(f"{self._what}: cannot fetch from {url}")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        self._conn = conn
        conn.request("GET", path, headers=headers)
        self._resp = conn.getresponse()
        return self._resp


def _status_error(status: int, what: str) -> Exception:
    if status == 404:
        return NotFound(f"{what}: not found on the registry")
    if status in (401, 403):
        return PermissionDenied(f"{what}: access denied (HTTP {status})")
    return Unavailable(f"{what}: the registry answered HTTP {status}")
