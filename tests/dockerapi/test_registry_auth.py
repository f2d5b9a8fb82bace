"""Pull and push through docker.sock to a registry with TLS (its own CA, trusted through the
daemon's certs.d) and htpasswd: the credentials ride in X-Registry-Auth, from the docker
CLI's login or docker-py's auth_config."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests.daemon import DaemonProcess
from tests.dockerapi.conftest import docker_sock
from tests.registry.conftest import PASSWORD, USER, trusting_daemon
from tests.registry.registryd import Registry

DockerCLI = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def trusting(tls_registry: Registry, busybox_tar: Path) -> Iterator[DaemonProcess]:
    """A daemon that trusts the TLS registry's CA, with busybox imported."""
    with trusting_daemon(tls_registry, busybox_tar) as d:
        yield d


def test_cli_login_push_pull_logout(trusting: DaemonProcess, tls_registry: Registry,
                                    docker_cli: DockerCLI) -> None:
    sock = docker_sock(trusting)
    repo = f"{tls_registry.host}/auth-cli/box"
    assert docker_cli(sock, "tag", "busybox", f"{repo}:1").returncode == 0
    out = docker_cli(sock, "push", f"{repo}:1")
    assert out.returncode == 1, out.stdout
    assert any(word in out.stderr.lower() for word in ("unauthorized", "authentication",
                                                       "credentials")), out.stderr
    out = docker_cli(sock, "login", tls_registry.host, "-u", USER, "--password-stdin",
                     input=PASSWORD)
    assert out.returncode == 0, out.stderr
    try:
        out = docker_cli(sock, "push", f"{repo}:1")
        assert out.returncode == 0, out.stderr
        assert "1: digest: sha256:" in out.stdout
        assert docker_cli(sock, "rmi", f"{repo}:1").returncode == 0
        out = docker_cli(sock, "pull", f"{repo}:1")
        assert out.returncode == 0, out.stderr
        assert f"Status: Downloaded newer image for {repo}:1" in out.stdout
    finally:
        assert docker_cli(sock, "logout", tls_registry.host).returncode == 0
    assert docker_cli(sock, "rmi", f"{repo}:1").returncode == 0
    out = docker_cli(sock, "pull", f"{repo}:1")  # anonymous again: refused
    assert out.returncode == 1


def test_docker_py_auth_config(trusting: DaemonProcess, tls_registry: Registry) -> None:
    client = docker.DockerClient(base_url=f"unix://{docker_sock(trusting)}", version="auto",
                                 timeout=60)
    try:
        repo = f"{tls_registry.host}/auth-py/box"
        client.images.get("busybox").tag(repo, "2")
        auth = {"username": USER, "password": PASSWORD}
        messages = [json.loads(line) for line in client.images.push(
            repo, tag="2", auth_config=auth).splitlines() if line.strip()]
        assert not any("error" in m for m in messages), messages
        assert messages[-1]["aux"]["Tag"] == "2"
        refused = [json.loads(line) for line in client.images.push(
            repo, tag="2", auth_config={"username": USER, "password": "wrong"}).splitlines()
            if line.strip()]
        assert "error" in refused[-1], refused
        client.images.remove(f"{repo}:2")
        with pytest.raises(docker.errors.APIError):
            client.images.pull(repo, tag="2")
        image = client.images.pull(repo, tag="2", auth_config=auth)
        assert f"{repo}:2" in image.tags
    finally:
        client.close()
