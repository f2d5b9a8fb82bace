"""Docker API listeners chosen with --docker-host (unix and tcp with TLS client certificates,
as the gRPC door's), and POST /auth checking credentials with a real registry."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests.cli.test_remote import _make_pki
from tests.daemon import DaemonProcess, short_tmpdir
from tests.registry.conftest import PASSWORD, USER, write_config
from tests.registry.registryd import Registry, free_port

DockerCLI = Callable[..., subprocess.CompletedProcess[str]]


class Secured:
    """A daemon whose Docker API is on its own unix socket and on TLS tcp."""

    def __init__(self, daemon: DaemonProcess, sock: Path, url: str, pki: dict[str, Path]):
        self.daemon, self.sock, self.url, self.pki = daemon, sock, url, pki

    def tls_args(self, cert: str = "client") -> list[str]:
        return ["--tlsverify", "--tlscacert", str(self.pki["ca"]),
                "--tlscert", str(self.pki[cert]), "--tlskey", str(self.pki[f"{cert}-key"])]


@pytest.fixture(scope="module")
def secured(tls_registry: Registry) -> Iterator[Secured]:
    base = short_tmpdir()
    pki = _make_pki(base / "pki")
    config = write_config(base, tls_registry)
    sock = base / "api" / "docker.sock"
    url = f"tcp://127.0.0.1:{free_port()}"
    d = DaemonProcess(base, [
        "--config", str(config), "--docker-host", f"unix://{sock}", "--docker-host", url,
        "--tlscert", str(pki["server"]), "--tlskey", str(pki["server-key"]),
        "--tlscacert", str(pki["ca"]), "--tlsverify",
    ]).start()
    try:
        yield Secured(d, sock, url, pki)
    finally:
        d.cleanup()


def test_docker_hosts_replace_the_default_socket(secured: Secured,
                                                 docker_cli: DockerCLI) -> None:
    assert not (secured.daemon.exec_root / "docker.sock").exists()
    out = docker_cli(secured.sock, "version", "--format", "{{.Server.APIVersion}}")
    assert (out.returncode, out.stdout.strip()) == (0, "1.50"), out.stderr
    assert oct(secured.sock.stat().st_mode & 0o777) == "0o660"


def test_tcp_with_tls_client_certificates(secured: Secured, docker_cli: DockerCLI,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    out = docker_cli(secured.url, *secured.tls_args(), "info", "--format",
                     "{{.DockerRootDir}} {{.Swarm.LocalNodeState}}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(secured.daemon.root), "inactive"]
    # No client certificate, or one the CA did not sign: refused.
    for args in (["--tlsverify", "--tlscacert", str(secured.pki["ca"])],
                 secured.tls_args("other")):
        out = docker_cli(secured.url, *args, "version")
        assert out.returncode != 0 and "Server:" not in out.stdout, out.stdout
    # docker-py over TLS (requests would let a CA bundle from the environment override the
    # session's CA).
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    tls = docker.tls.TLSConfig(client_cert=(str(secured.pki["client"]),
                                            str(secured.pki["client-key"])),
                               ca_cert=str(secured.pki["ca"]), verify=True)
    client = docker.DockerClient(base_url=secured.url.replace("tcp://", "https://"), tls=tls,
                                 version="auto")
    try:
        assert client.ping() and client.info()["DockerRootDir"] == str(secured.daemon.root)
    finally:
        client.close()
    # Warned about in info: nothing (TLS with verification).
    info = docker_cli(secured.url, *secured.tls_args(), "info", "--format", "{{json .Warnings}}")
    assert "without" not in info.stdout


def test_auth_checks_credentials_with_the_registry(
        secured: Secured, tls_registry: Registry, docker_cli: DockerCLI) -> None:
    out = docker_cli(secured.sock, "login", tls_registry.host, "-u", USER, "--password-stdin",
                     input=PASSWORD)
    assert out.returncode == 0, out.stderr
    assert "Login Succeeded" in out.stdout
    out = docker_cli(secured.sock, "login", tls_registry.host, "-u", USER,
                     "--password-stdin", input="wrong")
    assert out.returncode == 1
    assert "incorrect username or password" in out.stderr, out.stderr
    client = docker.DockerClient(base_url=f"unix://{secured.sock}", version="auto")
    try:
        assert client.login(USER, PASSWORD, registry=tls_registry.host,
                            reauth=True)["Status"] == "Login Succeeded"
        with pytest.raises(docker.errors.APIError) as err:
            client.login(USER, "nope", registry=tls_registry.host, reauth=True)
        assert err.value.status_code == 403
    finally:
        client.close()
