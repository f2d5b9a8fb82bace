"""The real docker CLI (v28, client only) and docker-py, pointed at a Servin daemon."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.daemon import DaemonProcess, short_tmpdir

DOCKER = shutil.which("docker", path="/usr/local/bin:/usr/bin:/bin")


def docker_sock(daemon: DaemonProcess) -> Path:
    """The daemon's default Docker API socket."""
    return daemon.exec_root / "docker.sock"


@pytest.fixture
def client(engine: DaemonProcess) -> Iterator[docker.DockerClient]:
    """docker-py on the module's daemon's docker.sock."""
    c = docker.DockerClient(base_url=f"unix://{docker_sock(engine)}", version="auto",
                            timeout=60)
    try:
        yield c
    finally:
        c.close()


def needs_container_routes(daemon: DaemonProcess) -> None:
    """Skip, saying why, when this build does not serve the container endpoints yet (issue
    #18's two halves are built apart and merged together)."""
    from tests.dockerapi.rawhttp import request

    if request(docker_sock(daemon), "GET", "/containers/json").status == 404:
        pytest.skip("this build does not serve the Docker API container endpoints yet")


@pytest.fixture(scope="module")
def docker_config() -> Iterator[Path]:
    """A private DOCKER_CONFIG directory (no user contexts, credentials or plugins), one per
    test file: a login one file leaves behind must not lend its credentials to another's
    pushes (the registries are per session)."""
    path = short_tmpdir("sv-dcfg-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def docker_cli(docker_config: Path):  # type: ignore[no-untyped-def]
    """``docker_cli(host, *args)``: run the docker CLI against ``host`` (a unix socket path or
    a URL) and return the CompletedProcess (text)."""
    if DOCKER is None:
        pytest.fail("the docker CLI (v28, client only) is needed: install it in /usr/local/bin")

    def run(host: Path | str, *args: str, input: str | None = None, timeout: float = 60,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        url = host if isinstance(host, str) else f"unix://{host}"
        full = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        # DOCKER_BUILDKIT=0: the classic builder, whatever the daemon offers (dockerd 20.10
        # may offer BuildKit; Servin says Builder-Version 1 and the CLI picks it anyway).
        full.update({"DOCKER_CONFIG": str(docker_config), "DOCKER_CLI_HINTS": "false",
                     "DOCKER_BUILDKIT": "0"})
        full.update(env or {})
        return subprocess.run([DOCKER, "-H", url, *args], input=input, capture_output=True,
                              text=True, timeout=timeout, env=full)

    return run


# The registries of the registry tests (session-scoped): TLS + htpasswd for POST /auth,
# plain HTTP for pull, push and search.
from tests.registry.conftest import plain_registry, tls_registry  # noqa: E402, F401
