"""The stats sampler in-process: one pass shared by all, slow readers dropped, idle when unused.

These run the real sampler against a real (temporary) container store and real cgroups.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from servin.engine.containers.stats import (
    QUEUE_DEPTH,
    CounterFiles,
    Counters,
    StatsSampler,
    cpu_percent,
    host_cpu_ns,
    memory_figures,
    net_counters,
)
from servin.engine.containers.store import ContainerStore
from servin.engine.linux.cgroups import detect_driver
from servin.engine.store.metadata import MetadataStore
from servin.humanize import binary_size, human_size


@pytest.fixture
def empty_store(tmp_path: Path) -> Iterator[ContainerStore]:
    meta = MetadataStore(tmp_path / "servin.db")
    try:
        yield ContainerStore(meta)
    finally:
        meta.close()


def _sampler(store: ContainerStore, tmp_path: Path) -> StatsSampler:
    return StatsSampler(store, lambda cid: tmp_path / cid)


def test_subscribers_share_passes_and_a_slow_one_loses_old_batches(
    empty_store: ContainerStore, tmp_path: Path
) -> None:
    async def scenario() -> None:
        sampler = _sampler(empty_store, tmp_path)
        fast_a = sampler.subscribe(0.1)
        fast_b = sampler.subscribe(0.1)
        stalled = sampler.subscribe(0.1)
        await anext(stalled)  # subscribed; then never read again
        got_a, got_b = [], []
        for _ in range(10):
            got_a.append(await anext(fast_a))
            got_b.append(await anext(fast_b))
        # One pass serves every subscriber that is due: about as many passes as batches each
        # subscriber got, not the sum.
        assert sampler.passes < 20, sampler.passes
        assert sum(a is b for a, b in zip(got_a, got_b, strict=True)) >= 8
        # The stalled subscriber kept only the newest QUEUE_DEPTH passes, not its backlog.
        kept = await anext(stalled)
        assert kept.read_ns >= got_a[-QUEUE_DEPTH].read_ns > got_a[1].read_ns
        for gen in (fast_a, fast_b, stalled):
            await gen.aclose()
        for _ in range(50):
            if not sampler.running:
                break
            await asyncio.sleep(0.05)
        assert not sampler.running  # nobody watches: no sampling
        passes = sampler.passes
        await asyncio.sleep(0.3)
        assert sampler.passes == passes

    asyncio.run(scenario())


def test_a_new_subscriber_gets_the_latest_pass_at_once(
    empty_store: ContainerStore, tmp_path: Path
) -> None:
    async def scenario() -> None:
        sampler = _sampler(empty_store, tmp_path)
        first = sampler.subscribe(5.0)
        latest = await anext(first)
        second = sampler.subscribe(5.0)
        assert await anext(second) is latest  # no new pass for a late joiner
        assert sampler.passes == 1
        await first.aclose()
        await second.aclose()
        await sampler.stop()

    asyncio.run(scenario())


def test_fast_counters_match_the_driver(tmp_path: Path) -> None:
    driver = detect_driver()
    path = f"/servin-stats-test/{os.getpid()}"
    cgroup = driver.create(path, {"memory": {"limit": 64 * 1024 * 1024}})
    # A shell that, once inside the cgroup (it waits for a line first), fills a 4 MB variable
    # and then burns CPU.
    script = "read go; x=$(head -c 4000000 /dev/zero | tr '\\0' a); while :; do :; done"
    child = subprocess.Popen(["sh", "-c", script], stdin=subprocess.PIPE)
    try:
        cgroup.add_process(child.pid)
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.flush()
        for _ in range(200):
            slow = cgroup.stats()
            if slow.cpu_usage_ns > 0 and slow.memory_usage > 4_000_000 and slow.pids_current == 1:
                break
            time.sleep(0.01)
        fast = CounterFiles(cgroup).read()
        assert CounterFiles(cgroup).version == driver.version
        assert fast.memory_limit == slow.memory_limit == 64 * 1024 * 1024
        assert fast.pids == slow.pids_current == 1
        assert fast.cpu_ns >= slow.cpu_usage_ns > 0
        assert fast.memory_usage > 4_000_000 and slow.memory_usage > 4_000_000
        assert fast.memory_inactive_file == slow.memory_inactive_file
        assert fast.block_read >= slow.blkio_read_bytes and fast.block_write >= 0
        # The raw figures the Docker API sends as they are.
        assert fast.cpu_user_ns + fast.cpu_system_ns > 0
        assert fast.memory_stat and fast.memory_inactive_file == fast.memory_stat.get(
            "total_inactive_file", fast.memory_stat.get("inactive_file"))
    finally:
        child.kill()
        child.wait()
        cgroup.destroy()
        for hierarchy in {Path(p) for p in _hierarchies(driver)}:
            (hierarchy / "servin-stats-test").rmdir()


def _hierarchies(driver: object) -> list[str]:
    if driver.version == 1:  # type: ignore[attr-defined]
        return [str(h) for h in set(driver.hierarchies.values())]  # type: ignore[attr-defined]
    return [str(driver.root)]  # type: ignore[attr-defined]


def test_figures_as_docker_computes_them() -> None:
    # Two of four CPUs' worth of time: 200 % of one CPU.
    assert cpu_percent(2_000, 4_000, 4) == 200.0
    assert cpu_percent(0, 4_000, 4) == 0.0 and cpu_percent(5, 0, 4) == 0.0
    usage, limit, percent = memory_figures(
        Counters(memory_usage=300, memory_inactive_file=100, memory_limit=None), 1000
    )
    assert (usage, limit, percent) == (200, 1000, 20.0)
    assert memory_figures(Counters(memory_usage=50, memory_limit=500), 1000)[1:] == (500, 10.0)
    assert memory_figures(Counters(memory_usage=50, memory_limit=5000), 1000)[1] == 1000
    assert host_cpu_ns() > 0
    assert net_counters(os.getpid()) is not None and net_counters(1 << 30) is None
    assert binary_size(0) == "0B" and binary_size(1536) == "1.5KiB"
    assert binary_size(256 * 1024 * 1024) == "256MiB" and binary_size(1_500_000) == "1.431MiB"
    assert human_size(1234) == "1.23kB" and human_size(648) == "648B"


def test_counters_of_a_cgroup_v2_tree(tmp_path: Path) -> None:
    """cgroup v2 is read from its own files (a fake tree: this host's v2 has no controllers)."""
    from servin.engine.linux.cgroups.v2 import V2Cgroup, V2Driver

    (tmp_path / "cgroup.controllers").write_text("cpu memory pids io\n")
    group = tmp_path / "servin" / "c1"
    group.mkdir(parents=True)
    files = {
        "cpu.stat": "usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\nnr_periods 10\n"
                    "nr_throttled 4\nthrottled_usec 700\n",
        "memory.current": "8192000\n",
        "memory.max": "max\n",
        "memory.stat": "anon 4096\nfile 8192\ninactive_file 1000\n",
        "pids.current": "3\n",
        "io.stat": "8:0 rbytes=100 wbytes=20 rios=1 wios=2\n8:16 rbytes=5 wbytes=0\n",
    }
    for name, text in files.items():
        (group / name).write_text(text)
    counters = CounterFiles(V2Cgroup(V2Driver(tmp_path), "/servin/c1")).read()
    assert (counters.cpu_ns, counters.cpu_user_ns, counters.cpu_system_ns) == \
        (5_000_000, 3_000_000, 2_000_000)
    assert counters.cpu_throttling == (10, 4, 700_000)
    assert (counters.memory_usage, counters.memory_limit, counters.memory_inactive_file) == \
        (8192000, None, 1000)
    assert counters.memory_stat == {"anon": 4096, "file": 8192, "inactive_file": 1000}
    assert counters.pids == 3
    assert (counters.block_read, counters.block_write) == (105, 20)
    assert counters.blkio == [(8, 0, "read", 100), (8, 0, "write", 20), (8, 16, "read", 5),
                              (8, 16, "write", 0)]
