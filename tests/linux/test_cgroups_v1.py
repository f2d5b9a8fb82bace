"""The cgroup v1 driver: what it writes into this machine's real v1 hierarchies.

Behaviour with real processes (CPU, freezing, OOM, pids, devices) is in
test_cgroups_host.py, which runs against whichever version the machine has.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from servin.engine.linux.cgroups import CgroupDriver, V1Driver, detect_driver
from servin.engine.linux.cgroups.v1 import discover_hierarchies
from servin.errors import InvalidArgument, NotFound, Unavailable
from tests.linux.cgroup_helpers import ROOT

NEEDED = {"memory", "cpu", "cpuacct", "pids", "cpuset", "freezer", "devices", "blkio"}
MB = 1024 * 1024

real_v1 = pytest.mark.skipif(
    not set(discover_hierarchies(ROOT)) >= NEEDED,
    reason="this machine does not mount the cgroup v1 controllers under /sys/fs/cgroup",
)


@pytest.fixture
def driver(host_driver: CgroupDriver) -> V1Driver:
    assert isinstance(host_driver, V1Driver)
    return host_driver


@real_v1
def test_detect_driver_picks_v1_here() -> None:
    driver = detect_driver(ROOT)
    assert driver.version == 1
    assert isinstance(driver, V1Driver)
    assert set(driver.hierarchies) >= NEEDED


@real_v1
def test_create_applies_resources_everywhere(driver: V1Driver, parent: str) -> None:
    path = f"{parent}/c1"
    cgroup = driver.create(
        path,
        {
            "memory": {"limit": 64 * MB, "swap": 96 * MB, "reservation": 32 * MB},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 50},
            # This kernel has no blkio.weight: skipped, not an error.
            "blockIO": {"weight": 500},
        },
    )
    assert cgroup.path == path and driver.exists(path)
    hierarchy_dirs = set(driver.hierarchies.values())
    for hierarchy in hierarchy_dirs:
        assert (hierarchy / path.strip("/")).is_dir()

    def read(controller: str, name: str) -> str:
        directory = cgroup.dir(controller)
        assert directory is not None
        return (directory / name).read_text().strip()

    assert read("memory", "memory.limit_in_bytes") == str(64 * MB)
    assert read("memory", "memory.memsw.limit_in_bytes") == str(96 * MB)
    assert read("memory", "memory.soft_limit_in_bytes") == str(32 * MB)
    assert read("cpu", "cpu.shares") == "512"
    assert read("cpu", "cpu.cfs_quota_us") == "50000"
    assert read("cpu", "cpu.cfs_period_us") == "100000"
    assert read("cpuset", "cpuset.cpus") == "0"
    assert read("pids", "pids.max") == "50"
    # The intermediate cpuset cgroup got its parent's CPUs and memory nodes.
    middle = driver.hierarchies["cpuset"] / parent.strip("/")
    assert (middle / "cpuset.cpus").read_text().strip() != ""
    assert (middle / "cpuset.mems").read_text().strip() != ""

    # Growing past the current memsw limit needs memsw written first; shrinking the other
    # way round. Both orders must work.
    cgroup.update({"memory": {"limit": 256 * MB, "swap": 512 * MB}})
    assert read("memory", "memory.limit_in_bytes") == str(256 * MB)
    assert read("memory", "memory.memsw.limit_in_bytes") == str(512 * MB)
    cgroup.update({"memory": {"limit": 16 * MB, "swap": 16 * MB}})
    assert read("memory", "memory.memsw.limit_in_bytes") == str(16 * MB)
    cgroup.update({"memory": {"limit": -1, "swap": -1}, "pids": {"limit": -1},
                   "cpu": {"quota": -1}})  # fmt: skip
    assert int(read("memory", "memory.limit_in_bytes")) > 1 << 62
    assert read("pids", "pids.max") == "max"
    assert read("cpu", "cpu.cfs_quota_us") == "-1"
    assert cgroup.stats().memory_limit is None
    with pytest.raises(InvalidArgument):
        cgroup.update({"unified": {"memory.high": "1"}})

    cgroup.destroy()
    assert not driver.exists(path)
    for hierarchy in hierarchy_dirs:
        assert not (hierarchy / path.strip("/")).exists()
    cgroup.destroy()  # idempotent
    with pytest.raises(NotFound):
        driver.open(path)


@real_v1
def test_failed_create_leaves_nothing(driver: V1Driver, parent: str) -> None:
    with pytest.raises(InvalidArgument):
        driver.create(f"{parent}/c1", {"cpu": {"cpus": "4096"}})
    assert not driver.exists(parent)
    with pytest.raises(InvalidArgument):
        driver.create(f"{parent}/c1", {"memory": {"limit": 64 * MB, "swap": 32 * MB}})
    assert not driver.exists(parent)
    with pytest.raises(InvalidArgument):
        driver.create("/../escape", None)


def test_discovers_co_mounted_hierarchies(tmp_path: Path) -> None:
    combined = tmp_path / "cpu,cpuacct"
    combined.mkdir()
    (tmp_path / "cpu").symlink_to("cpu,cpuacct")
    (tmp_path / "cpuacct").symlink_to("cpu,cpuacct")
    (tmp_path / "memory").mkdir()
    (tmp_path / "systemd").mkdir()  # a named hierarchy, not a controller
    found = discover_hierarchies(tmp_path)
    assert found == {"cpu": combined, "cpuacct": combined, "memory": tmp_path / "memory"}
    driver = detect_driver(tmp_path)
    assert isinstance(driver, V1Driver) and driver.version == 1
    assert sorted(set(driver.hierarchies.values())) == sorted([combined, tmp_path / "memory"])
    with pytest.raises(Unavailable):
        V1Driver(tmp_path / "memory")


def test_v1_stats_parsing(tmp_path: Path) -> None:
    """Counters read from a fake v1 tree laid out with the kernel's file names."""
    files = {
        "cpuacct/c/cpuacct.usage": "5000000000",
        "cpuacct/c/cpuacct.stat": "user 300\nsystem 100\n",
        "cpu/c/cpu.stat": "nr_periods 10\nnr_throttled 4\nthrottled_time 123456\n",
        "memory/c/memory.usage_in_bytes": "104857600",
        "memory/c/memory.limit_in_bytes": "9223372036854771712",
        "memory/c/memory.max_usage_in_bytes": "209715200",
        "memory/c/memory.memsw.usage_in_bytes": "115343360",
        "memory/c/memory.stat": "cache 1\ntotal_cache 41943040\ntotal_inactive_file 20971520\n",
        "memory/c/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        "pids/c/pids.current": "7",
        "pids/c/pids.max": "max",
        "blkio/c/blkio.throttle.io_service_bytes_recursive":
            "8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\n8:16 Read 1\nTotal 12289\n",
        "blkio/c/blkio.throttle.io_serviced_recursive": "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
    }  # fmt: skip
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    cgroup = V1Driver(tmp_path).open("/c")
    stats = cgroup.stats()
    assert stats.cpu_usage_ns == 5_000_000_000
    # cpuacct.stat is in USER_HZ ticks (no usage_user/usage_sys files here).
    assert stats.cpu_user_ns == 3_000_000_000 and stats.cpu_system_ns == 1_000_000_000
    assert (stats.cpu_periods, stats.cpu_throttled_periods, stats.cpu_throttled_ns) == (
        10, 4, 123456,
    )  # fmt: skip
    assert stats.memory_usage == 100 * MB and stats.memory_limit is None
    assert stats.memory_max_usage == 200 * MB and stats.memory_swap_usage == 10 * MB
    assert stats.memory_cache == 40 * MB and stats.memory_inactive_file == 20 * MB
    assert stats.memory_usage_no_cache == 80 * MB
    assert stats.pids_current == 7 and stats.pids_limit is None
    assert (stats.blkio_read_bytes, stats.blkio_write_bytes) == (4097, 8192)
    assert (stats.blkio_read_ops, stats.blkio_write_ops) == (1, 2)
    assert stats.oom_kill == 2 and cgroup.oom_killed()
