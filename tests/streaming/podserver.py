"""Servers a test "pod" runs inside its own network namespace (started by tests/streaming/netns.py).

127.0.0.1:8080  HTTP (GET / answers "hello from the pod"; GET /blob the blob file)
127.0.0.1:7000  echo until the client half-closes, then close
127.0.0.1:9000  send the blob file, then close
"""

from __future__ import annotations

import http.server
import socket
import socketserver
import subprocess
import sys
import threading


class Http(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello from the pod\n"
        if self.path == "/blob":
            with open(BLOB, "rb") as f:
                body = f.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)
        self.request.shutdown(socket.SHUT_WR)


class Blob(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        with open(BLOB, "rb") as f:
            self.request.sendfile(f)
        self.request.shutdown(socket.SHUT_WR)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


if __name__ == "__main__":
    BLOB = sys.argv[1]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 8080), Http),
               Server(("127.0.0.1", 7000), Echo), Server(("127.0.0.1", 9000), Blob)]
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("ready", flush=True)
    servers[0].serve_forever()
