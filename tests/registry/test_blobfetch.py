"""BlobSource against a small HTTP server: whole bodies, cuts resumed with Range, redirects
(credentials stay with their host), expired locations, and blobs that are not what was said."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from servin.engine.images.registry.blobfetch import BlobSource, Location
from servin.engine.store.compression import GzipStream
from servin.engine.store.content import ContentStore
from servin.errors import InvalidArgument, PermissionDenied, Unavailable

BLOB = bytes(range(256)) * 20000  # 5 MB
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


class _Server:
    """Serves BLOB at /blob; behaviour switches per test; records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.cut_first = 0  # send only this many bytes on the first connection, then drop
        self.ignore_range = False
        self.redirect_to = ""  # /blob answers 307 to this URL
        self.token = ""  # required Authorization header value, when set
        self.extra = b""  # bytes sent past the blob
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                if self.path == "/blob" and outer.redirect_to:
                    self.send_response(307)
                    self.send_header("Location", outer.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if outer.token and self.headers.get("Authorization") != outer.token:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = BLOB + outer.extra
                start = 0
                ranged = self.headers.get("Range", "")
                if ranged and not outer.ignore_range:
                    start = int(ranged.removeprefix("bytes=").rstrip("-"))
                    self.send_response(206)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                data = body[start:]
                if outer.cut_first and len(outer.requests) == 1:
                    self.wfile.write(data[:outer.cut_first])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


def _fetch(store: ContentStore, relocate, size: int = len(BLOB)) -> tuple[bytes, str]:
    writer = store.writer()
    source = BlobSource(relocate, size, writer, lambda host: None, what="blob")  # type: ignore[arg-type, return-value]
    try:
        got = io.BufferedReader(source).read()
    finally:
        source.close()
    digest = writer.commit()
    return got, digest


def test_whole_body_is_read_and_stored_once(server: _Server, tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    got, digest = _fetch(store, lambda offset: Location(f"{server.url}/direct"))
    assert got == BLOB and digest == DIGEST
    assert store.blob_path(DIGEST).read_bytes() == BLOB
    assert len(server.requests) == 1


@pytest.mark.parametrize("ignore_range", [False, True])
def test_a_cut_is_resumed_from_what_is_stored(server: _Server, tmp_path: Path,
                                             ignore_range: bool) -> None:
    server.cut_first = 1_000_000
    server.ignore_range = ignore_range  # then the server resends from 0: the start is skipped
    got, digest = _fetch(ContentStore(tmp_path), lambda offset: Location(f"{server.url}/direct"))
    assert got == BLOB and digest == DIGEST
    assert len(server.requests) == 2
    assert server.requests[1][1]["range"] == "bytes=1000000-"


def test_redirects_drop_credentials_for_another_host(server: _Server, tmp_path: Path) -> None:
    other = _Server()
    try:
        server.redirect_to = f"{other.url}/direct"
        got, _ = _fetch(ContentStore(tmp_path),
                        lambda offset: Location(f"{server.url}/blob",
                                                {"Authorization": "Bearer secret"}))
        assert got == BLOB
        assert server.requests[0][1]["authorization"] == "Bearer secret"
        assert "authorization" not in other.requests[0][1]
    finally:
        other.close()


def test_an_expired_location_is_asked_for_again_once(server: _Server, tmp_path: Path) -> None:
    server.token = "Bearer fresh"
    asked: list[int] = []

    def relocate(offset: int) -> Location:
        asked.append(offset)
        token = "Bearer stale" if len(asked) == 1 else "Bearer fresh"
        return Location(f"{server.url}/direct", {"Authorization": token})

    got, _ = _fetch(ContentStore(tmp_path), relocate)
    assert got == BLOB and asked == [0, 0]

    server.token = "Bearer never"
    with pytest.raises(PermissionDenied):
        _fetch(ContentStore(tmp_path / "2"), relocate)


def test_a_blob_bigger_than_said_is_refused(server: _Server, tmp_path: Path) -> None:
    server.extra = b"more"
    with pytest.raises(InvalidArgument, match="larger than"):
        _fetch(ContentStore(tmp_path), lambda offset: Location(f"{server.url}/direct"))


def test_a_server_that_keeps_failing_is_given_up(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(Unavailable):
        _fetch(ContentStore(tmp_path), lambda offset: Location("http://127.0.0.1:1/none"))


def test_gzip_stream_matches_gzip(tmp_path: Path) -> None:
    import gzip
    import zlib

    data = BLOB + bytes(3 << 20) + b"tail"
    members = gzip.compress(data[:1000], 1) + b"\0\0" + gzip.compress(data[1000:], 9)
    assert io.BufferedReader(GzipStream(io.BytesIO(members))).read() == data
    damaged = bytearray(gzip.compress(data))
    damaged[-6] ^= 0xFF  # the CRC
    with pytest.raises(zlib.error):
        io.BufferedReader(GzipStream(io.BytesIO(bytes(damaged)))).read()
    with pytest.raises(EOFError):
        io.BufferedReader(GzipStream(io.BytesIO(gzip.compress(data)[:-100]))).read()
    with pytest.raises(gzip.BadGzipFile):
        io.BufferedReader(GzipStream(io.BytesIO(gzip.compress(b"x") + b"junk"))).read()
