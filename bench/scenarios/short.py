"""10. Short commands: what an operator types during an incident, timed end to end through
each CLI (start-up, connection, the daemon's answer): ``ps`` with no containers, ``version``,
``--help``, ``inspect``, ``logs --tail 100`` of a 50 MB log, ``stats --no-stream`` with 50
running containers and ``exec C true``."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from bench.engines import NO_NET, CliEngine
from bench.env import Environment
from bench.measure import Measure
from bench.model import Row, ScenarioResult
from bench.scenarios.logs import writer_command

NAME = "short"
TITLE = "Short commands"
# (metric, target against docker, target against podman)
TARGETS: dict[str, tuple[str, str]] = {
    "ps": ("<= 1.5x", ""),
    "logs": ("<= 1x", ""),
    "stats": ("", "<= 1x"),
    "exec": ("<= 1x", ""),
}


def start_many(engine: CliEngine, prefix: str, count: int) -> None:
    """``count`` sleeping containers, started two at a time."""

    def one(i: int) -> None:
        engine.run_detached(f"{prefix}{i}", "sleep", "3600")

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, range(count)))


def measure(engines: list[CliEngine], rounds: int, args: Callable[[CliEngine], list[str]]
            ) -> dict[str, Measure]:  # fmt: skip
    """Milliseconds of ``ENGINE ARGS``, alternating engines round by round (after one warm-up)."""
    times = {e.name: Measure("ms") for e in engines}
    for engine in engines:
        engine.run(*args(engine))
    for _ in range(rounds):
        for engine in engines:
            times[engine.name].add(engine.time(*args(engine)) * 1000)
    return times


def add_rows(result: ScenarioResult, metric: str, key: str, times: dict[str, Measure],
             engines: list[CliEngine]) -> None:  # fmt: skip
    if len(engines) == 1:
        result.add(Row(metric, times["servin"]))
    for engine in engines[1:]:
        docker_target, podman_target = TARGETS.get(key, ("", ""))
        target = docker_target if engine.name == "docker" else podman_target
        result.add(Row(metric, times["servin"], engine.name, times[engine.name], target))


def run(env: Environment, result: ScenarioResult) -> None:
    rounds, log_mb, running = (3, 2, 3) if env.quick else (15, 50, 50)
    engines = [env.servin, *env.peers()]
    for engine in engines:
        engine.remove_all()
    try:
        add_rows(result, "`ps`, no containers", "ps",
                 measure(engines, rounds, lambda e: ["ps"]), engines)  # fmt: skip
        add_rows(result, "`version`", "version",
                 measure(engines, rounds, lambda e: ["version"]), engines)  # fmt: skip
        add_rows(result, "`--help`", "help",
                 measure(engines, rounds, lambda e: ["--help"]), engines)  # fmt: skip

        for engine in engines:
            engine.run_detached("bench-short-log", *writer_command(log_mb << 20))
            engine.run("wait", "bench-short-log", timeout=600)
        add_rows(result, "`inspect` of a container", "inspect",
                 measure(engines, rounds, lambda e: ["inspect", "bench-short-log"]),
                 engines)  # fmt: skip
        add_rows(result, f"`logs --tail 100` of a {log_mb} MB log", "logs",
                 measure(engines, rounds, lambda e: ["logs", "--tail", "100", "bench-short-log"]),
                 engines)  # fmt: skip

        for engine in engines:
            start_many(engine, "bench-short-run-", running)
        add_rows(result, f"`stats --no-stream`, {running} running", "stats",
                 measure(engines, rounds, lambda e: ["stats", "--no-stream"]),
                 engines)  # fmt: skip
        add_rows(result, "`exec C true`", "exec",
                 measure(engines, rounds, lambda e: ["exec", "bench-short-run-0", "true"]),
                 engines)  # fmt: skip
    finally:
        for engine in engines:
            engine.remove_all()
    result.notes.append(
        f"each row: {rounds} rounds alternating the engines after one warm-up call each; "
        f"containers run with {' '.join(NO_NET)}"
    )
