"""Cgroups with real processes, on whichever cgroup version this machine runs.

Each test makes its own cgroup under a unique parent (see conftest.py) and removes it.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable

from servin.engine.linux.cgroups import CgroupDriver
from tests.linux.cgroup_helpers import (
    DEVICE_PROBE,
    DEVICE_RULES,
    DEVICE_VERDICTS,
    Gated,
    control_file,
)

MB = 1024 * 1024
SPIN = "while :; do :; done"


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_spinner_cpu_usage_freeze_and_destroy(host_driver: CgroupDriver, parent: str) -> None:
    cgroup = host_driver.create(f"{parent}/spin", None)
    spinner = Gated(SPIN)
    try:
        cgroup.add_process(spinner.pid)
        assert cgroup.pids() == [spinner.pid]
        spinner.go()
        # Thresholds are waited for rather than timed: other work may share the CPUs.
        assert wait_for(lambda: cgroup.stats().cpu_usage_ns > 200_000_000)
        first = cgroup.stats()
        assert first.cpu_user_ns + first.cpu_system_ns > 0
        assert first.pids_current == 1
        assert first.memory_limit is None  # unlimited reads as None, not 2**63

        cgroup.freeze()
        assert cgroup.frozen()
        frozen_at = cgroup.stats().cpu_usage_ns
        time.sleep(0.4)
        assert cgroup.stats().cpu_usage_ns - frozen_at < 20_000_000
        assert spinner.proc.poll() is None

        cgroup.thaw()
        assert wait_for(lambda: not cgroup.frozen())
        assert wait_for(lambda: cgroup.stats().cpu_usage_ns - frozen_at > 100_000_000)

        # destroy() of a frozen, running cgroup: kills, waits, removes.
        cgroup.freeze()
        cgroup.destroy()
        assert spinner.proc.wait(timeout=10) == -signal.SIGKILL
        assert not host_driver.exists(cgroup.path)
        cgroup.destroy()  # idempotent
    finally:
        spinner.reap()


def test_cpu_quota_throttles(host_driver: CgroupDriver, parent: str) -> None:
    cgroup = host_driver.create(f"{parent}/quota", {"cpu": {"quota": 20000, "period": 100000}})
    spinner = Gated(SPIN)
    try:
        cgroup.add_process(spinner.pid)
        spinner.go()
        start, started = cgroup.stats().cpu_usage_ns, time.monotonic()
        time.sleep(1.0)
        used = cgroup.stats().cpu_usage_ns - start
        share = used / ((time.monotonic() - started) * 1e9)
        assert 0.01 < share < 0.35  # about 20% of one CPU, never more
        stats = cgroup.stats()
        assert stats.cpu_throttled_periods > 0 and stats.cpu_throttled_ns > 0
    finally:
        cgroup.destroy()
        spinner.reap()


def test_memory_hog_is_oom_killed(host_driver: CgroupDriver, parent: str) -> None:
    cgroup = host_driver.create(
        f"{parent}/hog", {"memory": {"limit": 32 * MB, "swap": 32 * MB}}
    )
    hog_code = "a = []\nwhile True: a.append(b'x' * (1 << 20))"
    hog = Gated(f"exec {sys.executable} -c \"{hog_code}\"")
    try:
        cgroup.add_process(hog.pid)
        assert not cgroup.oom_killed()
        hog.go()
        assert hog.proc.wait(timeout=30) == -signal.SIGKILL
        assert cgroup.oom_killed()
        stats = cgroup.stats()
        assert stats.oom_kill >= 1 and stats.oom_events >= 1
        assert stats.memory_limit == 32 * MB
        if stats.memory_max_usage is not None:  # v2 kernels before 5.19 have no memory.peak
            assert stats.memory_max_usage >= 16 * MB
    finally:
        cgroup.destroy()
        hog.reap()


def test_pids_limit_stops_a_fork_bomb(host_driver: CgroupDriver, parent: str) -> None:
    cgroup = host_driver.create(f"{parent}/bomb", {"pids": {"limit": 20}})
    # Bounded: 100 sleepers at most, each gone after 60 s even if everything else failed.
    bomb = Gated("i=0; while [ $i -lt 100 ]; do sleep 60 & i=$((i+1)); done; wait")
    events = control_file(cgroup, "pids", "pids.events")

    def refused() -> int:
        for line in events.read_text().splitlines():
            if line.startswith("max "):
                return int(line.split()[1])
        return 0

    try:
        cgroup.add_process(bomb.pid)
        bomb.go()
        deadline = time.monotonic() + 10
        while refused() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert refused() > 0
        stats = cgroup.stats()
        assert stats.pids_limit == 20
        assert 1 < stats.pids_current <= 20
        assert 1 < len(cgroup.pids()) <= 20
    finally:
        cgroup.destroy()
        bomb.reap()
    assert not host_driver.exists(cgroup.path)




def test_devices_allow_list(host_driver: CgroupDriver, parent: str) -> None:
    cgroup = host_driver.create(f"{parent}/dev", {"devices": DEVICE_RULES})
    probe = Gated(DEVICE_PROBE)
    try:
        cgroup.add_process(probe.pid)
        probe.go()
        assert probe.output().split() == DEVICE_VERDICTS
    finally:
        cgroup.destroy()
        probe.reap()


def test_kill_all_with_a_catchable_signal(host_driver: CgroupDriver, parent: str) -> None:
    cgroup = host_driver.create(f"{parent}/term", None)
    sleeper = Gated("exec sleep 60")
    try:
        cgroup.add_process(sleeper.pid)
        sleeper.go()
        time.sleep(0.2)
        cgroup.kill_all(signal.SIGTERM)
        assert sleeper.proc.wait(timeout=10) == -signal.SIGTERM
        assert not cgroup.frozen()
    finally:
        cgroup.destroy()
        sleeper.reap()
