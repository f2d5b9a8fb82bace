"""The Docker API's HTTP server and router, on a server built in the test with its own routes.

Everything is checked at the byte level with raw sockets: versioned and unversioned routes,
version negotiation errors, HEAD, keep-alive, errors from the one table, chunked and
100-continue request bodies read as they stream, streamed responses that reach the client
before the handler ends, a client leaving mid-stream, and hijacked connections with the
client's half-close.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from servin.engine.server.docker import params
from servin.engine.server.docker.door import default_headers
from servin.engine.server.docker.http import HTTPServer, Request, Response
from servin.engine.server.docker.responses import json_response
from servin.engine.server.docker.router import Router
from servin.engine.server.docker.streams import STDOUT, MuxWriter, demultiplex
from servin.engine.server.docker.system import SystemRoutes
from servin.errors import Conflict, NotFound
from tests.daemon import short_tmpdir
from tests.dockerapi.rawhttp import Reader, TLSClient, connect, encode_request, request
from tests.registry.registryd import free_port, make_ca_and_cert


class ServerThread:
    """An HTTPServer on a unix socket, its loop in a thread; the test talks to it with
    blocking sockets."""

    def __init__(self, router: Router, tls: ssl.SSLContext | None = None,
                 **options: Any) -> None:
        self.dir = short_tmpdir("sv-http-")
        self.path = self.dir / "api.sock"
        self.loop = asyncio.new_event_loop()
        self.server = HTTPServer(router, default_headers=default_headers(), **options)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.call(self.server.listen_unix(str(self.path)))
        self.port = 0
        if tls is not None:
            self.port = free_port()
            self.call(self.server.listen_tcp("127.0.0.1", self.port, ssl=tls))

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def close(self) -> None:
        self.call(self.server.close(grace=1))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        shutil.rmtree(self.dir)


class ProbeRoutes:
    """Routes a test registers on its own server."""

    def __init__(self) -> None:
        self.pieces: list[int] = []
        self.release = asyncio.Event()
        self.cancelled = threading.Event()
        self.seen: list[str] = []

    def register(self, router: Router) -> None:
        router.add("GET", "/query", self.query)
        router.add("POST", "/upload", self.upload)
        router.add("POST", "/json", self.json)
        router.add("GET", "/stream", self.stream)
        router.add("GET", "/forever", self.forever)
        router.add("POST", "/hijack", self.hijack)
        router.add("GET", "/fail/{kind}", self.fail)
        router.add("GET", "/images/{name:path}/json", self.image)
        router.add("GET", "/containers/{id}/json", self.container)
        router.add("GET", "/whoami", self.whoami)

    async def query(self, req: Request) -> Response:
        return json_response({
            "all": params.bool_value(req, "all"),
            "stream": params.bool_value(req, "stream", True),
            "tail": params.int_value(req, "tail", -1),
            "filters": params.filters(req),
            "version": req.api_version,
            "path": req.path,
        })

    async def upload(self, req: Request) -> Response:
        digest, size = hashlib.sha256(), 0
        async for piece in req.chunks():
            self.pieces.append(len(piece))
            digest.update(piece)
            size += len(piece)
        return json_response({"size": size, "sha256": digest.hexdigest()})

    async def json(self, req: Request) -> Response:
        return json_response(await params.read_json_object(req, limit=1024))

    async def stream(self, req: Request) -> None:
        out = await req.stream(200, "application/vnd.docker.multiplexed-stream")
        mux = MuxWriter(out.write)
        await mux.write(STDOUT, b"first\n")
        await self.release.wait()
        await mux.write(STDOUT, b"second\n")

    async def forever(self, req: Request) -> None:
        out = await req.stream(200, "application/json")
        await out.write(b'{"started":true}\n')
        try:
            await asyncio.Event().wait()
        finally:
            self.cancelled.set()

    async def hijack(self, req: Request) -> None:
        self.seen.append(req.header("content-type"))
        body = await params.read_json(req, default={})
        conn = await req.hijack(multiplexed=params.bool_value(req, "mux"))
        await conn.writer.write(f"hello {body.get('who', '')}\n".encode())
        received = b""
        async for data in conn.reader:
            received += data
            await conn.writer.write(data.upper())
        # stdin ended (the client half-closed); output keeps flowing.
        await asyncio.sleep(0.1)
        await conn.writer.write(f"got {len(received)} bytes, bye\n".encode())
        conn.writer.close_write()

    async def fail(self, req: Request) -> Response:
        kind = req.params["kind"]
        if kind == "notfound":
            raise NotFound("no such container: x")
        if kind == "conflict":
            raise Conflict("container is running")
        raise RuntimeError("a bug")

    async def image(self, req: Request) -> Response:
        return json_response({"name": req.params["name"]})

    async def container(self, req: Request) -> Response:
        return json_response({"id": req.params["id"]})

    async def whoami(self, req: Request) -> Response:
        return json_response(req.peer_credentials())


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[ServerThread, ProbeRoutes]]:
    router = Router()
    routes = ProbeRoutes()
    routes.register(router)
    SystemRoutes(core=None).register(router)  # type: ignore[arg-type]  # _ping needs none
    server = ServerThread(router)
    try:
        yield server, routes
    finally:
        server.close()


def test_versioned_and_unversioned_routes(api: tuple[ServerThread, ProbeRoutes]) -> None:
    server, _ = api
    for target in ("/_ping", "/v1.50/_ping", "/v1.24/_ping", "/v1.41/_ping"):
        resp = request(server.path, "GET", target)
        assert resp.status == 200, (target, resp)
        assert resp.body == b"OK"
        assert resp.headers["api-version"] == "1.50"
        assert resp.headers["docker-experimental"] == "false"
        assert resp.headers["ostype"] == "linux"
        assert resp.headers["builder-version"] == "1"
        assert resp.headers["server"].startswith("Servin/")
        assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    resp = request(server.path, "GET", "/v1.43/query?all=1")
    assert resp.json()["version"] == "1.43" and resp.json()["path"] == "/query"
    assert request(server.path, "GET", "/query").json()["version"] == "1.50"
    # Path parameters: one segment, or several for image names.
    resp = request(server.path, "GET", "/v1.50/images/registry:5000/team/app:1/json")
    assert resp.json() == {"name": "registry:5000/team/app:1"}
    assert request(server.path, "GET", "/containers/abc/json").json() == {"id": "abc"}
    assert request(server.path, "GET", "/containers/a/b/json").status == 404
    assert request(server.path, "GET", "/containers/my%20name/json").json() == {"id": "my name"}


def test_peer_credentials(api: tuple[ServerThread, ProbeRoutes]) -> None:
    server, _ = api
    assert request(server.path, "GET", "/whoami").json() == [os.getpid(), os.getuid(),
                                                              os.getgid()]


def test_version_negotiation_errors(api: tuple[ServerThread, ProbeRoutes]) -> None:
    server, _ = api
    resp = request(server.path, "GET", "/v1.51/_ping")
    assert resp.status == 400
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == {"message": "client version 1.51 is too new. Maximum supported API "
                                      "version is 1.50"}
    resp = request(server.path, "GET", "/v2.0/nothing")  # unknown: 404 before versions
    assert resp.status == 404
    resp = request(server.path, "GET", "/v1.23/_ping")
    assert resp.status == 400
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.body == (b"client version 1.23 is too old. Minimum supported API version is "
                         b"1.24, please upgrade your client to a newer version\n")


def test_head_ping_has_headers_and_no_body(api: tuple[ServerThread, ProbeRoutes]) -> None:
    server, _ = api
    with connect(server.path) as s:
        # Two HEADs and a GET on one connection: a body after HEAD would break the framing.
        s.sendall(encode_request("HEAD", "/_ping") + encode_request("HEAD", "/v1.50/_ping")
                  + encode_request("GET", "/_ping"))
        reader = Reader(s)
        for _ in range(2):
            resp = reader.response("HEAD")
            assert resp.status == 200
            assert resp.headers["content-length"] == "0"
            assert resp.headers["api-version"] == "1.50"
            assert resp.headers["swarm"] == "inactive"
            assert resp.headers["cache-control"] == "no-cache, no-store, must-revalidate"
        assert reader.response().body == b"OK"


def test_unknown_routes_and_errors(api: tuple[ServerThread, ProbeRoutes]) -> None:
    server, _ = api
    for method, target in (("GET", "/nothing"), ("GET", "/v1.50/nothing/here"),
                           ("POST", "/_ping"), ("HEAD", "/query"), ("GET", "/v1.50")):
        resp = request(server.path, method, target)
        assert resp.status == 404, (method, target)
        if method != "HEAD":
            assert resp.json() == {"message": "page not found"}
    resp = request(server.path, "GET", "/fail/notfound")
    assert (resp.status, resp.json()) == (404, {"message": "no such container: x"})
    resp = request(server.path, "GET", "/fail/conflict")
    assert (resp.status, resp.json()) == (409, {"message": "container is running"})
    resp = request(server.path, "GET", "/fail/bug")
    assert resp.status == 500 and "message" in resp.json()
    assert request(server.path, "OPTIONS", "/anything").status == 200


def test_query_values_as_docker_parses_them(api: tuple[ServerThread, ProbeRoutes]) -> None:
    server, _ = api

    def get(query: str) -> Any:
        resp = request(server.path, "GET", "/query?" + query)
        assert resp.status == 200, resp
        return resp.json()

    for value, expected in (("1", True), ("true", True), ("True", True), ("yes", True),
                            ("0", False), ("false", False), ("FALSE", False), ("no", False),
                            ("none", False), ("", False)):
        assert get(f"all={value}")["all"] is expected, value
    assert get("")["stream"] is True and get("stream=0")["stream"] is False
    assert get("tail=25")["tail"] == 25 and get("")["tail"] == -1
    bad = request(server.path, "GET", "/query?tail=abc")
    assert bad.status == 400 and "tail" in bad.json()["message"]
    # The CLI's map form and docker-py's list form.
    assert get('filters={"label":{"a=b":true},"status":{"running":true}}')["filters"] == {
        "label": ["a=b"], "status": ["running"]}
    assert get('filters={"label":["a=b","c"]}')["filters"] == {"label": ["a=b", "c"]}
    assert get("filters=%7B%22name%22%3A%5B%22web%22%5D%7D")["filters"] == {"name": ["web"]}
    bad = request(server.path, "GET", "/query?filters=notjson")
    assert (bad.status, bad.json()) == (400, {"message": "invalid filter"})


def test_keep_alive_and_pipelining(api: tuple[ServerThread, ProbeRoutes]) -> None:
    server, _ = api
    with connect(server.path) as s:
        reader = Reader(s)
        for i in range(5):
            s.sendall(encode_request("GET", f"/containers/c{i}/json"))
            assert reader.response().json() == {"id": f"c{i}"}
        s.sendall(b"".join(encode_request("GET", f"/containers/p{i}/json") for i in range(3)))
        assert [reader.response().json()["id"] for _ in range(3)] == ["p0", "p1", "p2"]
        s.sendall(encode_request("GET", "/_ping", headers={"Connection": "close"}))
        assert reader.response().headers["connection"] == "close"
        assert s.recv(10) == b""


def _chunked(data: bytes, sizes: list[int]) -> bytes:
    out, pos, i = [], 0, 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        out.append(b"%x\r\n" % len(data[pos:pos + n]) + data[pos:pos + n] + b"\r\n")
        pos, i = pos + n, i + 1
    return b"".join(out) + b"0\r\n\r\n"


def test_chunked_request_body_is_streamed(api: tuple[ServerThread, ProbeRoutes]) -> None:
    server, routes = api
    data = os.urandom(3 * 1024 * 1024 + 17)
    routes.pieces.clear()
    with connect(server.path) as s:
        s.sendall(encode_request("POST", "/upload", headers={"Transfer-Encoding": "chunked"}))
        s.sendall(_chunked(data, [1, 4096, 70000, 300000, 5]))
        resp = Reader(s).response()
    assert resp.json() == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    # The handler saw the body in pieces as it arrived, never as one buffer.
    assert len(routes.pieces) > 10 and max(routes.pieces) <= 256 * 1024
    # Content-Length bodies too, and an empty one.
    resp = request(server.path, "POST", "/upload", data[:100000])
    assert resp.json()["sha256"] == hashlib.sha256(data[:100000]).hexdigest()
    assert request(server.path, "POST", "/upload").json()["size"] == 0


def test_expect_100_continue(api: tuple[ServerThread, ProbeRoutes]) -> None:
    server, _ = api
    body = b'{"who":"there"}'
    with connect(server.path) as s:
        s.sendall(encode_request("POST", "/json", headers={
            "Content-Length": str(len(body)), "Expect": "100-continue",
            "Content-Type": "application/json"}))
        reader = Reader(s)
        interim = reader.head()
        assert interim.status == 100  # asked for before the client sends the body
        s.sendall(body)
        assert reader.response().json() == {"who": "there"}


def test_json_bodies(api: tuple[ServerThread, ProbeRoutes]) -> None:
    server, _ = api
    jt = {"Content-Type": "application/json"}
    assert request(server.path, "POST", "/json", b'{"a": 1}', jt).json() == {"a": 1}
    assert request(server.path, "POST", "/json").json() == {}
    cases = [
        (b'{"a": 1}', {"Content-Type": "text/plain"},
         "unsupported Content-Type header (text/plain): must be 'application/json'"),
        (b'{"a": ', jt, "invalid JSON"),
        (b'{"a": 1} {"b": 2}', jt, "unexpected content after JSON"),
        (b"[1, 2]", jt, "invalid JSON: expected an object, got an array"),
        (b'{"a": "' + b"x" * 2000 + b'"}', jt, "request body is larger than 1024 bytes"),
    ]
    for body, headers, message in cases:
        resp = request(server.path, "POST", "/json", body, headers)
        assert resp.status == 400, body
        assert resp.json()["message"].startswith(message), resp.json()


def test_streamed_response_reaches_the_client_before_the_handler_ends(
        api: tuple[ServerThread, ProbeRoutes]) -> None:
    server, routes = api
    server.loop.call_soon_threadsafe(routes.release.clear)
    with connect(server.path) as s:
        s.sendall(encode_request("GET", "/v1.50/stream"))
        reader = Reader(s)
        head = reader.head()
        assert head.status == 200
        assert head.headers["transfer-encoding"] == "chunked"
        assert head.headers["content-type"] == "application/vnd.docker.multiplexed-stream"
        first = b""
        while len(first) < 8 + 6:  # the handler is still waiting: this came out at once
            first += b"".join([reader.exactly(int(reader.until(b"\r\n"), 16))])
            reader.exactly(2)
        assert demultiplex(first) == [(1, b"first\n")]
        server.loop.call_soon_threadsafe(routes.release.set)
        rest = b"".join(reader.chunks())
        assert demultiplex(rest) == [(1, b"second\n")]
        # The connection is still good for another request.
        s.sendall(encode_request("GET", "/_ping"))
        assert reader.response().body == b"OK"


def test_client_leaving_cancels_a_streaming_handler(
        api: tuple[ServerThread, ProbeRoutes]) -> None:
    server, routes = api
    routes.cancelled.clear()
    s = connect(server.path)
    s.sendall(encode_request("GET", "/forever"))
    reader = Reader(s)
    assert reader.head().status == 200
    assert b"started" in reader.exactly(len(b"11\r\n") + 17)
    s.close()
    assert routes.cancelled.wait(10), "the handler was not cancelled when its client left"
    # Every client of this module's server has gone: so have their connections.
    deadline = time.monotonic() + 10
    while server.server.connections and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.server.connections == 0


@pytest.mark.parametrize("upgrade", [True, False])
def test_hijack_round_trip_with_half_close(api: tuple[ServerThread, ProbeRoutes],
                                           upgrade: bool) -> None:
    server, _ = api
    body = b'{"who":"docker"}'
    headers = {"Content-Type": "application/json"}
    if upgrade:
        headers.update({"Connection": "Upgrade", "Upgrade": "tcp"})
    with connect(server.path) as s:
        # The first stdin bytes travel with the request, as a fast client may send them.
        s.sendall(encode_request("POST", "/v1.50/hijack?mux=1", body, headers) + b"early ")
        reader = Reader(s)
        head = reader.head()
        if upgrade:
            assert (head.status, head.reason) == (101, "UPGRADED")
            assert head.headers["connection"] == "Upgrade" and head.headers["upgrade"] == "tcp"
            assert head.headers["content-type"] == "application/vnd.docker.multiplexed-stream"
        else:
            assert head.status == 200
            assert head.headers["content-type"] == "application/vnd.docker.raw-stream"
        assert reader.until(b"\n") == b"hello docker"
        s.sendall(b"stdin data")
        expected = b"EARLY STDIN DATA"
        got = b""
        while len(got) < len(expected):
            got += reader.exactly(1)
        assert got == expected
        s.shutdown(socket.SHUT_WR)  # stdin EOF; the output must keep coming
        assert reader.rest() == b"got 16 bytes, bye\n"


def test_hijack_content_type_follows_the_api_version(
        api: tuple[ServerThread, ProbeRoutes]) -> None:
    server, _ = api
    headers = {"Connection": "Upgrade", "Upgrade": "tcp"}
    with connect(server.path) as s:
        s.sendall(encode_request("POST", "/v1.41/hijack?mux=1", b"", headers))
        head = Reader(s).head()
        assert head.headers["content-type"] == "application/vnd.docker.raw-stream"


def test_header_timeout_closes_slow_clients() -> None:
    router = Router()
    SystemRoutes(core=None).register(router)  # type: ignore[arg-type]
    server = ServerThread(router, header_timeout=0.5, idle_timeout=1.0)
    try:
        with connect(server.path) as s:
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n")  # never finished
            assert s.recv(100) == b""  # closed by the server (the socket times out at 10 s)
        with connect(server.path) as s:  # silent after connecting: the same
            assert s.recv(100) == b""
        # A byte now and then does not keep it open.
        with connect(server.path) as s, pytest.raises((BrokenPipeError, ConnectionResetError)):
            for byte in b"GET /_ping HTTP/1.1\r\nHost: x\r\n" * 10:  # 35 s if open
                s.sendall(bytes([byte]))
                time.sleep(0.1)
        with connect(server.path) as s:  # idle keep-alive: closed after idle_timeout
            s.sendall(encode_request("GET", "/_ping"))
            assert Reader(s).response().body == b"OK"
            assert s.recv(100) == b""
        assert request(server.path, "GET", "/_ping").body == b"OK"
    finally:
        server.close()


def test_malformed_requests_get_400(api: tuple[ServerThread, ProbeRoutes]) -> None:
    server, _ = api
    for raw in (b"NOT HTTP AT ALL\r\n\r\n", b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
                b"GET /_ping HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"):
        with connect(server.path) as s:
            s.sendall(raw)
            resp = Reader(s).response()
            assert resp.status == 400, raw
            assert s.recv(10) == b""
    assert request(server.path, "GET", "/_ping").body == b"OK"


def test_close_ends_streams() -> None:
    router = Router()
    routes = ProbeRoutes()
    routes.register(router)
    server = ServerThread(router)
    s = connect(server.path)
    s.sendall(encode_request("GET", "/forever"))
    assert Reader(s).head().status == 200
    server.close()
    assert routes.cancelled.is_set()
    s.close()


def test_tls_keeps_writing_after_the_clients_close_notify() -> None:
    router = Router()
    routes = ProbeRoutes()
    routes.register(router)
    SystemRoutes(core=None).register(router)  # type: ignore[arg-type]
    pki = short_tmpdir("sv-pki-")
    ca, cert, key = make_ca_and_cert(pki)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ServerThread(router, tls=context, header_timeout=5)
    try:
        client = TLSClient(server.port, ca)
        reader = Reader(client)  # type: ignore[arg-type]
        for _ in range(2):  # keep-alive over TLS
            client.sendall(encode_request("GET", "/_ping"))
            assert reader.response().body == b"OK"
        headers = {"Connection": "Upgrade", "Upgrade": "tcp"}
        client.sendall(encode_request("POST", "/hijack", b"", headers))
        assert reader.head().status == 101
        assert reader.until(b"\n") == b"hello "
        client.sendall(b"over tls")
        assert reader.exactly(8) == b"OVER TLS"
        client.close_write()  # close_notify: stdin EOF, the output keeps coming
        assert reader.rest() == b"got 8 bytes, bye\n"
        client.close()
        # A client that is not speaking TLS, and one that never finishes the handshake.
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(encode_request("GET", "/_ping"))
            assert s.recv(100)[:1] in (b"", b"\x15")  # nothing, or a TLS alert
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            assert s.recv(100) == b""  # closed after header_timeout
        assert request(server.path, "GET", "/_ping").body == b"OK"
    finally:
        server.close()
        shutil.rmtree(pki)
