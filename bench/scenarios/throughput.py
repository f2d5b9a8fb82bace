"""2. Throughput: N containers one after another, and M started by 4 concurrent clients
(each ``run --rm busybox true`` through the engine's CLI)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from bench.engines import CliEngine
from bench.env import Environment
from bench.measure import Measure, timed
from bench.model import Row, ScenarioResult

NAME = "throughput"
TITLE = "Throughput"
CLIENTS = 4


def sequential(engine: CliEngine, count: int) -> float:
    return timed(lambda: [engine.run_rm("true") for _ in range(count)])


def concurrent(engine: CliEngine, count: int) -> float:
    def go() -> None:
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(lambda _: engine.run_rm("true"), range(count)))

    return timed(go)


def run(env: Environment, result: ScenarioResult) -> None:
    seq_count, conc_count, rounds = (3, 4, 1) if env.quick else (100, 50, 1)
    engines = [env.servin, *env.peers()]
    for label, fn, count in (
        (f"{seq_count} containers one after another", sequential, seq_count),
        (f"{conc_count} containers by {CLIENTS} concurrent clients", concurrent, conc_count),
    ):
        totals = {e.name: Measure("s") for e in engines}
        for _ in range(rounds):
            for engine in engines:
                totals[engine.name].add(fn(engine, count))
        if len(engines) == 1:
            result.add(Row(label, totals["servin"]))
        for peer in engines[1:]:
            result.add(Row(label, totals["servin"], peer.name, totals[peer.name]))
        rates = ", ".join(f"{n} {count / m.median:.1f}/s" for n, m in totals.items())
        result.notes.append(f"{label}: containers per second: {rates}")
