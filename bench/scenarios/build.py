"""9. Build: ``servin build`` beside docker's classic builder (``DOCKER_BUILDKIT=0 docker
build`` on the private dockerd 20.10): a 10-step Dockerfile cold (``--no-cache``) and warm
(nothing changed, everything cached), and a 3-stage build whose two first stages are
independent (Servin builds them in parallel; the classic builder one after the other).
Both build with ``--network none`` (no network setup in RUN steps), through their CLIs."""

from __future__ import annotations

import os
from pathlib import Path

from bench.engines import CliEngine
from bench.env import Environment
from bench.measure import Measure
from bench.model import Row, ScenarioResult

NAME = "build"
TITLE = "Build"

TEN_STEPS = """\
FROM busybox
ENV APP=/app MODE=bench
ARG VERSION=1.0
WORKDIR /app
COPY config.txt ./
RUN mkdir -p data && for i in 1 2 3 4 5 6 7 8 9 10; do echo "$i $VERSION" > data/$i; done
COPY src/ ./src/
RUN cat src/* > combined.txt && wc -l combined.txt > lines.txt
LABEL org.example.bench="build"
CMD ["cat", "/app/combined.txt"]
"""

THREE_STAGES = """\
FROM busybox AS left
RUN mkdir /out && for i in $(seq 1 200); do echo left-$i >> /out/left.txt; done
RUN sha256sum /out/left.txt > /out/left.sum

FROM busybox AS right
RUN mkdir /out && for i in $(seq 1 200); do echo right-$i >> /out/right.txt; done
RUN sha256sum /out/right.txt > /out/right.sum

FROM busybox
COPY --from=left /out/ /result/
COPY --from=right /out/ /result/
RUN cat /result/*.sum > /result/all.sum
"""


def _context(root: Path, dockerfile: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(dockerfile)
    (root / "config.txt").write_text("key=value\n")
    (root / "src").mkdir(exist_ok=True)
    for i in range(20):
        (root / "src" / f"part{i:02}.txt").write_text(f"part {i}\n" * 50)
    return root


def _docker_classic(env: Environment) -> CliEngine | None:
    peer = env.docker()
    if peer is None:
        return None
    return CliEngine("docker", peer.engine.argv, dict(peer.engine.env, DOCKER_BUILDKIT="0"))


def run(env: Environment, result: ScenarioResult) -> None:
    cold_rounds, warm_rounds = (1, 2) if env.quick else (5, 10)
    servin = env.servin
    engines = [servin]
    docker = _docker_classic(env)
    if docker is not None:
        engines.append(docker)
    work = env.scratch("build")
    ten = _context(work / "ten", TEN_STEPS)
    three = _context(work / "three", THREE_STAGES)
    common = ("build", "-q", "--network", "none")
    cold = {e.name: Measure("s") for e in engines}
    warm = {e.name: Measure("ms") for e in engines}
    stages = {e.name: Measure("s") for e in engines}
    for engine in engines:  # warm the page cache and each engine's busybox layers
        engine.run(*common, "--no-cache", "-t", "bench-ten", str(ten))
    for _ in range(cold_rounds):
        for engine in engines:
            cold[engine.name].add(engine.time(*common, "--no-cache", "-t", "bench-ten", str(ten)))
    for _ in range(warm_rounds):
        for engine in engines:
            warm[engine.name].add(engine.time(*common, "-t", "bench-ten", str(ten)) * 1000)
    for _ in range(cold_rounds):
        for engine in engines:
            stages[engine.name].add(
                engine.time(*common, "--no-cache", "-t", "bench-three", str(three)))
    metrics = (("10-step Dockerfile, cold (`--no-cache`)", cold, "< 1x"),
               ("10-step Dockerfile, warm (all cached)", warm, "< 500 ms"),
               ("3 stages, 2 independent, cold", stages, "< 1x"))
    for metric, measures, target in metrics:
        if docker is None:
            result.add(Row(metric, measures["servin"],
                           target=target if target.endswith("ms") else ""))
        else:
            result.add(Row(metric, measures["servin"], "docker build (classic)",
                           measures["docker"], target))
    load = os.getloadavg()
    result.notes.append(
        f"each build through its CLI (start-up included); load average at the end "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
