"""4. Pull: a multi-layer image of random data from a private registry on 127.0.0.1:
``servin pull`` (each time into a fresh daemon, so no blob is cached) vs ``skopeo copy`` to a
directory vs ``podman pull``; and ``docker pull`` (the v28 CLI) through Servin's docker.sock
(a fresh daemon each time) vs through dockerd (the image and its layers removed between
rounds)."""

from __future__ import annotations

import shutil
import subprocess

from bench.env import Environment
from bench.measure import Measure, time_command, timed
from bench.model import Row, ScenarioResult
from bench.ociimage import write_random_image

NAME = "pull"
TITLE = "Pull"
# What a daemon or CLI without pull support says (an old CLI, or an Unimplemented RPC).
UNSUPPORTED = ("no such command", "unimplemented", "not implemented", "not supported")


class PullUnavailable(Exception):
    """This Servin cannot pull (its CLI or daemon has no pull)."""


def servin_pull(env: Environment, ref: str) -> float:
    """Seconds ``servin pull --quiet REF`` took in a fresh daemon."""
    daemon = env.new_daemon()
    try:
        argv = [*env.servin.argv[:-1], daemon.host, "pull", "--quiet", ref]
        holder: dict[str, subprocess.CompletedProcess[bytes]] = {}

        def go() -> None:
            holder["p"] = subprocess.run(argv, env=env.servin.env, capture_output=True,
                                         stdin=subprocess.DEVNULL, timeout=1800)  # fmt: skip

        seconds = timed(go)
        proc = holder["p"]
        if proc.returncode != 0:
            lines = [ln.strip() for ln in proc.stderr.decode(errors="replace").splitlines()]
            lines = [ln for ln in lines if ln] or [f"exit {proc.returncode}"]
            unsupported = [ln for ln in lines if any(w in ln.lower() for w in UNSUPPORTED)]
            if unsupported:
                raise PullUnavailable(f"servin pull not available: {unsupported[0]}")
            raise RuntimeError(f"servin pull failed: {lines[-1]}")
        return seconds
    finally:
        daemon.cleanup()


DOCKER_CLI = shutil.which("docker", path="/usr/local/bin:/usr/bin:/bin") or "docker"


def docker_pull(socket: str, ref: str) -> float:
    """Seconds ``docker pull -q REF`` took against the daemon on ``socket``."""
    argv = [DOCKER_CLI, "-H", f"unix://{socket}", "pull", "-q", ref]
    holder: dict[str, subprocess.CompletedProcess[bytes]] = {}

    def go() -> None:
        holder["p"] = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL,
                                     timeout=1800)

    seconds = timed(go)
    if holder["p"].returncode != 0:
        raise RuntimeError(f"docker pull failed: {holder['p'].stderr.decode(errors='replace')}")
    return seconds


def servin_docker_pull(env: Environment, ref: str) -> float:
    """Seconds ``docker pull`` took through a fresh Servin daemon's docker.sock."""
    daemon = env.new_daemon()
    try:
        return docker_pull(str(daemon.exec_root / "docker.sock"), ref)
    finally:
        daemon.cleanup()


def run(env: Environment, result: ScenarioResult) -> None:
    layers, layer_mb, rounds = (2, 1, 1) if env.quick else (5, 40, 3)
    registry = env.registry()
    layout = env.scratch("pull-image")
    size = write_random_image(layout, layers, layer_mb << 20)
    ref = registry.push_oci(layout, "bench/random")
    shutil.rmtree(layout, ignore_errors=True)
    size_mb = size / 1e6
    result.notes.append(
        f"image: {layers} layers of random data, {size_mb:.0f} MB compressed (gzip), "
        f"from docker-registry on {registry.address}; each row's unit is seconds per pull"
    )
    metric = f"pull {layers}-layer {size_mb:.0f} MB image"

    skopeo = Measure("s") if not env.quick else None
    podman = env.podman()
    podman_m = Measure("s") if podman is not None else None
    servin = Measure("s")
    unavailable = ""
    dest = env.work / "skopeo-dest"
    for _ in range(rounds):
        if not unavailable:
            try:
                servin.add(servin_pull(env, ref))
            except PullUnavailable as exc:
                unavailable = str(exc)
                result.notes.append(unavailable)
        if skopeo is not None:
            shutil.rmtree(dest, ignore_errors=True)
            skopeo.add(time_command(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                                     f"docker://{ref}", f"dir:{dest}"], timeout=1800))  # fmt: skip
            shutil.rmtree(dest, ignore_errors=True)
        if podman is not None and podman_m is not None:
            podman_m.add(podman.engine.time("pull", "--quiet", "--tls-verify=false", ref,
                                            timeout=1800))  # fmt: skip
            podman.engine.run("rmi", "-f", ref)
    shown = servin if servin.samples else None
    note = unavailable
    if skopeo is None and podman_m is None:
        result.add(Row(metric, shown, note=note))
    if skopeo is not None:
        result.add(Row(metric, shown, "skopeo copy (dir:)", skopeo, "<= 1x", note))
        result.notes.append(f"skopeo throughput: {size_mb / skopeo.median:.0f} MB/s")
    if podman_m is not None:
        result.add(Row(metric, shown, "podman pull", podman_m, note=note))
    if servin.samples:
        result.notes.append(f"servin throughput: {size_mb / servin.median:.0f} MB/s")
    if unavailable:
        return
    # The same pull through the Docker API door, beside dockerd.
    through_door = Measure("s")
    docker = env.docker()
    dockerd = Measure("s") if docker is not None else None
    for _ in range(rounds):
        through_door.add(servin_docker_pull(env, ref))
        if docker is not None and dockerd is not None:
            dockerd.add(docker_pull(str(docker.socket), ref))
            docker.engine.run("rmi", ref)
            docker.engine.run("image", "prune", "-f")
    door_metric = f"docker pull {layers}-layer {size_mb:.0f} MB image"
    if dockerd is None:
        result.add(Row(door_metric, through_door, note="through Servin's docker.sock"))
    else:
        result.add(Row(door_metric, through_door, "dockerd 20.10", dockerd,
                       note="the docker CLI v28 through each daemon's socket"))
