"""Debian's ``docker-registry`` on 127.0.0.1 in a temp dir, and small raw-API helpers.

Tests push blobs and manifests through these helpers when they need content Servin itself
would not produce (a second platform's manifest, an index), so the registry is fed the way
any other tool would feed it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_ca_and_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it (openssl)."""
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "2",
        "-subj", "/CN=servin test CA")
    run("req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext))
    return ca_crt, crt, key


@dataclass
class Registry:
    """One running registry."""

    directory: Path
    port: int
    proc: subprocess.Popen[bytes]
    scheme: str = "http"
    ca: Path | None = None
    username: str = ""
    password: str = ""

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}"

    def http(self) -> httpx.Client:
        auth = (self.username, self.password) if self.username else None
        verify = ssl.create_default_context(cafile=str(self.ca)) if self.ca else True
        return httpx.Client(base_url=self.base, verify=verify,
                            auth=auth, timeout=30)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.directory, ignore_errors=True)

    def log(self) -> str:
        return (self.directory / "registry.log").read_text(errors="replace")


def start_registry(directory: Path, *, tls: bool = False, user: str = "",
                   password: str = "") -> Registry:
    """Start ``docker-registry serve`` (plain, or TLS with htpasswd basic auth)."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    lines = [
        "version: 0.1",
        "log:",
        "  level: warn",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {directory / 'data'}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        "  secret: servin-tests",
    ]
    ca = None
    if tls:
        ca, crt, key = make_ca_and_cert(directory)
        lines += ["  tls:", f"    certificate: {crt}", f"    key: {key}"]
    if user:
        htpasswd = directory / "htpasswd"
        subprocess.run(["htpasswd", "-Bbc", str(htpasswd), user, password], check=True,
                       capture_output=True)
        lines += ["auth:", "  htpasswd:", "    realm: servin-tests", f"    path: {htpasswd}"]
    config = directory / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    log = open(directory / "registry.log", "wb")  # noqa: SIM115 - the child holds it
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL)
    log.close()
    reg = Registry(directory, port, proc, "https" if tls else "http", ca, user, password)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited:\n{reg.log()}")
        try:
            with reg.http() as http:
                if http.get("/v2/").status_code in (200, 401):
                    return reg
        except httpx.HTTPError:
            time.sleep(0.05)
    reg.stop()
    raise RuntimeError("docker-registry did not come up")


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def upload_blob(reg: Registry, repo: str, data: bytes) -> str:
    """Put a blob into ``repo`` (monolithic upload); return its digest."""
    digest = digest_of(data)
    with reg.http() as http:
        resp = http.post(f"/v2/{repo}/blobs/uploads/")
        assert resp.status_code == 202, resp.text
        url = httpx.URL(reg.base).join(resp.headers["location"])
        resp = http.put(url.copy_merge_params({"digest": digest}), content=data)
        assert resp.status_code == 201, resp.text
    return digest


def put_manifest(reg: Registry, repo: str, ref: str, doc: dict[str, Any]) -> str:
    """Put a manifest or index under ``ref``; return its digest."""
    body = json.dumps(doc).encode()
    with reg.http() as http:
        resp = http.put(f"/v2/{repo}/manifests/{ref}", content=body,
                        headers={"Content-Type": doc["mediaType"]})
        assert resp.status_code == 201, resp.text
    return digest_of(body)


def get_blob(reg: Registry, repo: str, digest: str) -> bytes:
    with reg.http() as http:
        resp = http.get(f"/v2/{repo}/blobs/{digest}")
        assert resp.status_code == 200, resp.text
        return resp.content


def get_manifest(reg: Registry, repo: str, ref: str) -> tuple[dict[str, Any], str]:
    with reg.http() as http:
        resp = http.get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": ", ".join([
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json"])})
        assert resp.status_code == 200, resp.text
        return resp.json(), digest_of(resp.content)
