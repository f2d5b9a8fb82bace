"""6. Listing: ``ps -a`` over N created containers. The containers are created through each
engine's API (servin.client; the Docker Engine API of dockerd and of ``podman system
service``), which is much faster than N CLI calls."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.env import Environment
from bench.measure import Measure
from bench.model import Row, ScenarioResult
from servin.api.servin.v1 import containers_pb2
from servin.client.sync import Client

NAME = "listing"
TITLE = "Listing"
WORKERS = 2


def create_servin(host: str, count: int) -> None:
    spec = containers_pb2.ContainerSpec(image="busybox", cmd=["true"], network_mode="none")

    def make(i: int) -> None:
        with Client(host) as client:
            for j in range(i, count, WORKERS):
                req = containers_pb2.CreateContainerRequest(name=f"bench-ls-{j}", spec=spec)
                client.containers.Create(req)

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(make, range(WORKERS)))


def create_docker_api(socket: str, image: str, count: int, version: str,
                      prefix: str = "bench-ls") -> None:
    """Create ``count`` containers named ``PREFIX-N`` and labelled ``PREFIX`` through a
    Docker Engine API on a unix socket."""
    body = {"Image": image, "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"},
            "Labels": {prefix: ""}}

    def make(i: int) -> None:
        transport = httpx.HTTPTransport(uds=socket)
        with httpx.Client(transport=transport, base_url="http://engine", timeout=120) as http:
            for j in range(i, count, WORKERS):
                resp = http.post(f"/{version}/containers/create", params={"name": f"{prefix}-{j}"},
                                 json=body)  # fmt: skip
                if resp.status_code != 201:
                    raise RuntimeError(f"create failed ({resp.status_code}): {resp.text.strip()}")

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(make, range(WORKERS)))


def run(env: Environment, result: ScenarioResult) -> None:
    count, rounds = (10, 2) if env.quick else (1000, 5)
    engines = [env.servin]
    create_servin(env.daemon.host, count)
    docker = env.docker()
    if docker is not None:
        create_docker_api(str(docker.socket), "busybox", count, "v1.41")
        engines.append(docker.engine)
    podman = env.podman()
    if podman is not None:
        create_docker_api(podman.start_service(), "localhost/busybox", count, "v1.40")
        engines.append(podman.engine)
    try:
        times = {e.name: Measure("ms") for e in engines}
        for engine in engines:
            listed = engine.output("ps", "-aq").split()
            if len(listed) < count:
                raise RuntimeError(f"{engine.name} ps -a lists {len(listed)} of {count}")
        for _ in range(rounds):
            for engine in engines:
                times[engine.name].add(engine.time("ps", "-a") * 1000)
        metric = f"`ps -a` with {count} containers"
        if len(engines) == 1:
            result.add(Row(metric, times["servin"]))
        for engine in engines[1:]:
            target = "<= 0.5x" if engine.name == "docker" else ""
            result.add(Row(metric, times["servin"], engine.name, times[engine.name], target))
    finally:
        for engine in engines:
            engine.remove_all()
