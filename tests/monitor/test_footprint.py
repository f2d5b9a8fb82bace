"""What a monitor costs: memory (PSS) per running container, and time on the spawn path."""

from __future__ import annotations

import asyncio
import signal
import statistics
import time

from servin.engine.runtime.monitor import client
from servin.engine.runtime.monitor.client import MonitorClient

from .conftest import Harness, arun

MONITORS = 20
PSS_LIMIT_KB = 2048  # the design target: at most 2 MB PSS per running container


def smaps_rollup(pid: int) -> dict[str, int]:
    """The kB fields of /proc/PID/smaps_rollup."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def test_pss_per_monitor_with_20_sleeping_containers(harness: Harness) -> None:
    async def go():
        monitors = []
        for _ in range(MONITORS):
            spec = harness.spec(["/bin/sleep", "1000"])
            result = await client.spawn(harness.zygote, spec)
            mon = MonitorClient(spec.state_dir)
            await mon.start()
            await mon.state()
            monitors.append((result.monitor_pid, mon))
        await asyncio.sleep(0.5)  # let every helper and setup process be gone
        figures = [smaps_rollup(pid) for pid, _ in monitors]
        for _, mon in monitors:
            await mon.kill(signal.SIGKILL)
        await asyncio.gather(*(mon.wait() for _, mon in monitors))
        return figures

    figures = arun(go(), timeout=120)
    pss = [f["Pss"] for f in figures]
    private = [f["Private_Dirty"] for f in figures]
    print(f"\n[{harness.runtime}] monitor PSS kB: median {statistics.median(pss)}, max {max(pss)}; "
          f"private dirty kB: median {statistics.median(private)}, max {max(private)}; "
          f"RSS kB: median {statistics.median(f['Rss'] for f in figures)}")
    assert len(pss) == MONITORS and min(pss) > 0
    assert max(pss) <= PSS_LIMIT_KB, f"monitor PSS {max(pss)} kB over {PSS_LIMIT_KB} kB"


def test_spawn_path_latency(harness: Harness) -> None:
    # A ping goes through the whole fork path (zygote -> monitor -> setup process) and back.
    pings = []
    for _ in range(20):
        t = time.perf_counter()
        assert client._ping(harness.zygote) is not None
        pings.append(time.perf_counter() - t)

    async def cycle():
        spec = harness.spec(["/bin/true"])
        t0 = time.perf_counter()
        await client.spawn(harness.zygote, spec)
        mon = MonitorClient(spec.state_dir)
        t1 = time.perf_counter()
        await mon.start()
        record = await mon.wait()
        t2 = time.perf_counter()
        assert record.exit_code == 0
        return t1 - t0, t2 - t0

    times = [arun(cycle()) for _ in range(15)]
    ping_ms = 1000 * statistics.median(pings)
    create_ms = 1000 * statistics.median(t[0] for t in times)
    cycle_ms = 1000 * statistics.median(t[1] for t in times)
    print(f"\n[{harness.runtime}] ping through the fork path: median {ping_ms:.1f} ms; "
          f"spawn (create): median {create_ms:.1f} ms; "
          f"create+start+wait+delete: median {cycle_ms:.1f} ms")
    # Loose bounds (a shared CI machine): the figures above are the measurement.
    assert ping_ms < 25
    if harness.runtime == "native":
        assert cycle_ms < 150
