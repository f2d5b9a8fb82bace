"""The scenarios, in the issue's order. Each module has NAME, TITLE and ``run(env, result)``."""

from __future__ import annotations

from types import ModuleType

from bench.scenarios import (
    build,
    console,
    cri,
    dockerapi,
    listing,
    logs,
    memory,
    pull,
    short,
    start,
    streaming,
    throughput,
)

SCENARIOS: dict[str, ModuleType] = {
    m.NAME: m for m in (start, throughput, memory, pull, logs, listing, console, dockerapi,
              build, short, cri, streaming)
}
