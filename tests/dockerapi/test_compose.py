"""Debian's docker-compose 1.29 (which speaks the Engine API through docker-py) against a real
daemon's docker.sock: a project of two services on a user network (B reaches A by service
name), a named volume, a published port, depends_on with a healthcheck; up, ps, logs, exec,
run --rm, scale, down -v, after which nothing of the project is left."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import DaemonProcess, short_tmpdir
from tests.dockerapi.conftest import docker_sock, needs_container_routes
from tests.registry.registryd import free_port

COMPOSE = shutil.which("docker-compose")

PROJECT = """\
version: "2.4"
services:
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html
              && echo started >> /data/starts && exec httpd -f -p 8080 -h /www"]
    volumes: ["store:/data"]
    networks: [backend]
    ports: ["127.0.0.1:{port}:8080"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 1s
      timeout: 2s
      retries: 30
  client:
    image: busybox
    command: ["sh", "-c", "while true; do echo got $$(wget -q -O- http://web:8080/); sleep 1;
              done"]
    depends_on:
      web:
        condition: service_healthy
    networks: [backend]
networks:
  backend: {{}}
volumes:
  store: {{}}
"""


@pytest.fixture
def project(engine: DaemonProcess) -> Iterator[tuple[Path, str, int]]:
    if COMPOSE is None:
        pytest.fail("docker-compose (Debian's 1.29) is needed: scripts/bootstrap installs it")
    directory = short_tmpdir("sv-compose-")
    port = free_port()
    (directory / "docker-compose.yml").write_text(PROJECT.format(port=port))
    try:
        yield directory, "svcomp", port
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _compose(engine: DaemonProcess, directory: Path, project: str, *args: str,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    assert COMPOSE is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
    env.update({"DOCKER_HOST": f"unix://{docker_sock(engine)}",
                "COMPOSE_INTERACTIVE_NO_CLI": "1", "DOCKER_CONFIG": str(directory)})
    return subprocess.run([COMPOSE, "-p", project, *args], cwd=directory, env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _until(what: str, check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_compose_project_up_to_down(engine: DaemonProcess,
                                    project: tuple[Path, str, int]) -> None:
    directory, name, port = project
    needs_container_routes(engine)

    def compose(*args: str) -> subprocess.CompletedProcess[str]:
        done = _compose(engine, directory, name, *args)
        assert done.returncode == 0, f"compose {' '.join(args)}: {done.stdout}{done.stderr}"
        return done

    try:
        compose("up", "-d")
        ps = compose("ps")
        assert f"{name}_web_1" in ps.stdout and f"{name}_client_1" in ps.stdout
        assert ps.stdout.count(" Up ") >= 2, ps.stdout
        # B reaches A by its service name on the user network.
        _until("the client's wget through the service name",
               lambda: "got hello-from-web" in _compose(engine, directory, name, "logs",
                                                        "client").stdout)
        # The published port.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
            assert resp.read().decode().strip() == "hello-from-web"
        health = engine.cli("inspect", "-f", "{{.State.Health.Status}}", f"{name}_web_1",
                            check=True)
        assert health.stdout.strip() == "healthy"
        out = compose("exec", "-T", "web", "cat", "/data/starts")
        assert out.stdout.strip() == "started"
        # (compose attaches after it starts the container: give the attach time to come)
        out = compose("run", "--rm", "client", "sh", "-c",
                      "sleep 1; wget -q -O- http://web:8080/")
        assert "hello-from-web" in out.stdout
        compose("scale", "client=2")
        assert len(compose("ps", "-q", "client").stdout.split()) == 2
        logs = compose("logs", "--no-color", "web")
        assert "web_1" in logs.stdout
    finally:
        down = _compose(engine, directory, name, "down", "-v", "--remove-orphans")
    assert down.returncode == 0, down.stdout + down.stderr
    label = f"label=com.docker.compose.project={name}"
    assert engine.cli("ps", "-a", "-q", "--filter", label, check=True).stdout.strip() == ""
    networks = engine.cli("network", "ls", "--format", "{{.Name}}", check=True).stdout.split()
    assert f"{name}_backend" not in networks
    volumes = engine.cli("volume", "ls", "-q", check=True).stdout.split()
    assert f"{name}_store" not in volumes
