"""8. Docker API: the per-request cost of each daemon's Docker Engine API socket, and the
container path through it.

One keep-alive connection, a small raw-socket client, ``GET /_ping`` and ``GET /version``
one after the other: the time per request, and the daemon's CPU time per request. Then the
real docker CLI (v28) runs ``docker run --rm --network none busybox true`` against each
daemon's socket (create, attach, wait, start, the exit, the removal): the wall time of the
whole command; and ``docker logs`` of a 100 MB log to /dev/null.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

from bench.env import Environment
from bench.measure import Measure
from bench.measure import run as run_command
from bench.model import Row, ScenarioResult
from bench.procfs import cpu_seconds
from bench.scenarios.listing import create_docker_api
from bench.scenarios.logs import writer_command

NAME = "dockerapi"
TITLE = "Docker API"
TARGETS = ("/_ping", "/version")
LOG_MB = 100


class KeepAliveClient:
    """GETs on one connection; responses are read by their Content-Length."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(path)
        self.buf = b""

    def get(self, target: str) -> None:
        self.sock.sendall(f"GET {target} HTTP/1.1\r\nHost: docker\r\n\r\n".encode())
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._fill()
        head = self.buf[:end].lower()
        start = head.find(b"content-length:")
        if not head.startswith(b"http/1.1 200") or start < 0:
            raise RuntimeError(f"GET {target}: {head[:200]!r}")
        stop = head.find(b"\r\n", start)
        total = end + 4 + int(head[start + 15:stop if stop > 0 else None])
        while len(self.buf) < total:
            self._fill()
        self.buf = self.buf[total:]

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise RuntimeError("the daemon closed the connection")
        self.buf += data

    def close(self) -> None:
        self.sock.close()


def measure(path: str, pid: int, target: str, count: int) -> tuple[float, float]:
    """(µs per request, daemon CPU µs per request) over ``count`` requests after a warm-up."""
    client = KeepAliveClient(path)
    try:
        for _ in range(min(count, 200)):
            client.get(target)
        cpu = cpu_seconds(pid)
        start = time.perf_counter()
        for _ in range(count):
            client.get(target)
        elapsed = time.perf_counter() - start
        return elapsed / count * 1e6, (cpu_seconds(pid) - cpu) / count * 1e6
    finally:
        client.close()


def run(env: Environment, result: ScenarioResult) -> None:
    count, rounds = (200, 1) if env.quick else (5000, 5)
    daemon = env.daemon
    assert daemon.proc is not None
    engines = [("servin", str(daemon.exec_root / "docker.sock"), daemon.proc.pid)]
    docker = env.docker()
    if docker is not None:
        engines.append(("docker", str(docker.socket), docker.pid))
    for target in TARGETS:
        latency = {name: Measure("µs") for name, _, _ in engines}
        cpu = {name: Measure("µs") for name, _, _ in engines}
        for _ in range(rounds):
            for name, path, pid in engines:
                per_request, cpu_per_request = measure(path, pid, target, count)
                latency[name].add(per_request)
                cpu[name].add(cpu_per_request)
        for metric, values in ((f"`GET {target}`, one connection: time per request", latency),
                               (f"`GET {target}`: daemon CPU per request", cpu)):
            if len(engines) == 1:
                result.add(Row(metric, values["servin"]))
            for name, _, _ in engines[1:]:
                result.add(Row(metric, values["servin"], name, values[name]))
    docker_cli = shutil.which("docker", path="/usr/local/bin:/usr/bin:/bin")
    if docker_cli is None:
        return
    scratch = env.scratch("docker-config")
    command_env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    command_env["DOCKER_CONFIG"] = str(scratch)

    def docker(path: str, *args: str) -> None:
        run_command([docker_cli, "-H", f"unix://{path}", *args], env=command_env,
                    stdout=subprocess.DEVNULL, timeout=1800)

    def add(metric: str, values: dict[str, Measure]) -> None:
        # The goal for the container path through the door: no slower than dockerd.
        if len(engines) == 1:
            result.add(Row(metric, values["servin"]))
        for name, _, _ in engines[1:]:
            result.add(Row(metric, values["servin"], name, values[name], "<= 1x"))

    runs = 3 if env.quick else 15
    times = {name: Measure("ms") for name, _, _ in engines}
    for i in range(runs + 1):
        for name, path, _ in engines:
            start = time.perf_counter()
            docker(path, "run", "--rm", "--network", "none", "busybox", "true")
            if i:  # the first is a warm-up
                times[name].add((time.perf_counter() - start) * 1e3)
    add("`docker run --rm --network none busybox true` (docker CLI v28): wall time", times)

    # `docker logs` of a big json-file log, demultiplexed by the CLI, to /dev/null.
    size_mb, rounds = (5, 1) if env.quick else (LOG_MB, 3)
    reads = {name: Measure("s") for name, _, _ in engines}
    for _, path, _ in engines:
        docker(path, "run", "--name", "bench-dockerapi-log", "--network", "none", "busybox",
               *writer_command(size_mb << 20))
    try:
        for _ in range(rounds):
            for name, path, _ in engines:
                start = time.perf_counter()
                docker(path, "logs", "bench-dockerapi-log")
                reads[name].add(time.perf_counter() - start)
    finally:
        for _, path, _ in engines:
            docker(path, "rm", "-f", "bench-dockerapi-log")
    add(f"`docker logs` of a {size_mb} MB log (docker CLI v28) to /dev/null", reads)

    # `docker ps -a` over many containers: each daemon's list through its own Docker API.
    count, rounds = (10, 2) if env.quick else (1000, 5)
    for _, path, _ in engines:
        create_docker_api(path, "busybox", count, "v1.41", prefix="bench-dps")
    try:
        listing = {name: Measure("ms") for name, _, _ in engines}
        for _, path, _ in engines:
            docker(path, "ps", "-a")  # warm-up
        for _ in range(rounds):
            for name, path, _ in engines:
                start = time.perf_counter()
                docker(path, "ps", "-a")
                listing[name].add((time.perf_counter() - start) * 1e3)
    finally:
        for _, path, _ in engines:
            docker(path, "container", "prune", "-f", "--filter", "label=bench-dps")
    add(f"`docker ps -a` with {count} containers (docker CLI v28)", listing)
