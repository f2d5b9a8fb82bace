"""A registry front that demands bearer tokens (as Docker Hub does), relaying to a real one.

``/token`` plays the token server: it checks basic credentials and hands out a token
naming the scope it was asked for; every ``/v2/`` request needs a valid token for its
repository (else 401 with a ``Bearer realm=...,service=...,scope=...`` challenge), and is
then relayed to the plain registry behind.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import threading
from urllib.parse import parse_qs, urlsplit

SERVICE = "servin-test-registry"


class TokenFront:
    """Runs the front on 127.0.0.1; ``token_requests`` records what the token server saw."""

    def __init__(self, backend_port: int, user: str, password: str) -> None:
        self.backend_port = backend_port
        self.user, self.password = user, password
        self.token_requests: list[dict[str, object]] = []
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                front.handle(self)

            def do_HEAD(self) -> None:
                front.handle(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def handle(self, req: http.server.BaseHTTPRequestHandler) -> None:
        url = urlsplit(req.path)
        if url.path == "/token":
            self._token(req, parse_qs(url.query))
            return
        parts = url.path.split("/")
        # /v2/<name...>/(manifests|blobs)/<ref>
        scope = ""
        if len(parts) > 4 and parts[-2] in ("manifests", "blobs"):
            scope = f"repository:{'/'.join(parts[2:-2])}:pull"
        auth = req.headers.get("Authorization", "")
        granted = auth.startswith("Bearer ") and \
            (not scope or scope in base64.b64decode(auth[7:]).decode().split(" "))
        if not granted:
            challenge = f'Bearer realm="http://{self.host}/token",service="{SERVICE}"'
            if scope:
                challenge += f',scope="{scope}"'
            self._reply(req, 401, b'{"errors":[{"code":"UNAUTHORIZED","message":"auth"}]}',
                        {"WWW-Authenticate": challenge, "Content-Type": "application/json"})
            return
        conn = http.client.HTTPConnection("127.0.0.1", self.backend_port, timeout=30)
        headers = {k: v for k, v in req.headers.items() if k.lower() not in
                   ("authorization", "host", "connection")}
        conn.request(req.command, req.path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        keep = {k: v for k, v in resp.getheaders() if k.lower() in
                ("content-type", "docker-content-digest", "content-range", "location")}
        if req.command == "HEAD":
            keep["Content-Length"] = resp.getheader("Content-Length") or "0"
        self._reply(req, resp.status, body, keep)
        conn.close()

    def _token(self, req: http.server.BaseHTTPRequestHandler,
               query: dict[str, list[str]]) -> None:
        auth = req.headers.get("Authorization", "")
        user = password = ""
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        self.token_requests.append({"user": user, "service": query.get("service", [""])[0],
                                    "scope": query.get("scope", [])})
        if (user, password) != (self.user, self.password):
            self._reply(req, 401, b'{"details":"incorrect username or password"}',
                        {"Content-Type": "application/json"})
            return
        # The token just lists its scopes (base64): enough for the front to check them.
        scopes = [s.replace(":pull,push", ":pull") for s in query.get("scope", [])]
        token = base64.b64encode((" ".join(scopes) or "login").encode()).decode()
        self._reply(req, 200, json.dumps({"token": token, "expires_in": 300}).encode(),
                    {"Content-Type": "application/json"})

    @staticmethod
    def _reply(req: http.server.BaseHTTPRequestHandler, status: int, body: bytes,
               headers: dict[str, str]) -> None:
        req.send_response(status)
        for key, value in headers.items():
            req.send_header(key, value)
        if "Content-Length" not in headers:
            req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        if req.command != "HEAD":
            req.wfile.write(body)
