"""The cgroup v2 driver against a fake cgroupfs laid out with the kernel's file names.

The fake "kernel" here does what cgroupfs does that matters to the driver: mkdir fills a
new cgroup with its control files, ``cgroup.controllers`` of a child follows the parent's
``cgroup.subtree_control``, and enabling a controller the parent lacks fails. Every write the
driver makes is recorded. The device program, which needs a real cgroup2 directory, is
tested last against the machine's real cgroup2 mount.
"""

from __future__ import annotations

import errno
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servin.engine.linux.cgroups import V2Driver, detect_driver, devices
from servin.engine.linux.cgroups import v2 as v2_module
from servin.engine.linux.cgroups.base import remove_tree
from servin.engine.linux.cgroups.devices import DeviceRule, attached_programs, parse_rules
from servin.engine.linux.cgroups.v2 import blkio_weight_to_io_weight, shares_to_weight, swap_max
from servin.errors import Conflict, Internal, InvalidArgument, NotFound
from tests.linux.cgroup_helpers import DEVICE_PROBE, DEVICE_RULES, DEVICE_VERDICTS, Gated

MB = 1024 * 1024
ALL_CONTROLLERS = "cpuset cpu io memory hugetlb pids rdma misc"

# What a fresh non-root cgroup holds (controller files are present whatever is enabled:
# good enough for a fake, since the driver only writes files of controllers it enabled).
FRESH_FILES = {
    "cgroup.subtree_control": "",
    "cgroup.procs": "",
    "cgroup.events": "populated 0\nfrozen 0\n",
    "cgroup.freeze": "0",
    "memory.max": "max",
    "memory.swap.max": "max",
    "memory.low": "0",
    "memory.high": "max",
    "memory.current": "0",
    "memory.peak": "0",
    "memory.swap.current": "0",
    "memory.stat": "anon 0\nfile 0\ninactive_file 0\n",
    "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
    "cpu.max": "max 100000",
    "cpu.max.burst": "0",
    "cpu.weight": "100",
    "cpu.idle": "0",
    "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
    "cpuset.cpus": "",
    "cpuset.mems": "",
    "pids.max": "max",
    "pids.current": "0",
    "io.stat": "",
    "io.max": "",
    "io.weight": "default 100",
    "hugetlb.2MB.max": "max",
}


class FakeKernel:
    """Stands in for cgroupfs behind a V2Driver pointed at ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.writes: list[tuple[str, str]] = []
        self.device_rules: dict[str, list[DeviceRule]] = {}
        root.mkdir(exist_ok=True)
        (root / "cgroup.controllers").write_text(ALL_CONTROLLERS + "\n")
        for name in ("cgroup.subtree_control", "cgroup.procs", "cpu.stat", "memory.stat"):
            (root / name).write_text("")

    def rel(self, path: Path) -> str:
        return "/" + str(path.relative_to(self.root))

    def make_dir(self, path: Path) -> None:
        path.mkdir()
        for name, content in FRESH_FILES.items():
            (path / name).write_text(content)
        (path / "cgroup.controllers").write_text(
            (path.parent / "cgroup.subtree_control").read_text()
        )

    def remove_dir(self, path: Path) -> None:
        """rmdir of a cgroup: its control files go with it, child cgroups block it."""
        if any(child.is_dir() for child in path.iterdir()):
            raise OSError(errno.EBUSY, "child cgroups", str(path))
        if (path / "cgroup.procs").read_text().strip():
            raise OSError(errno.EBUSY, "populated", str(path))
        for child in path.iterdir():
            child.unlink()
        path.rmdir()

    def write(self, path: Path, value: str | int, real_write: Any) -> None:
        text = str(value)
        self.writes.append((self.rel(path), text))
        if path.name != "cgroup.subtree_control":
            real_write(path, value)
            return
        available = set((path.parent / "cgroup.controllers").read_text().split())
        enabled = set(path.read_text().split())
        for token in text.split():
            if token[1:] not in available:
                raise InvalidArgument(f"fake kernel: {token[1:]} not available in {path}")
            if token[0] == "+":
                enabled.add(token[1:])
            else:
                enabled.discard(token[1:])
        content = " ".join(sorted(enabled))
        path.write_text(content)
        for child in path.parent.iterdir():
            if child.is_dir():
                (child / "cgroup.controllers").write_text(content)

    def value(self, cgroup_path: str, name: str) -> str:
        return (self.root / cgroup_path.strip("/") / name).read_text().strip()

    def written(self, cgroup_path: str, name: str) -> list[str]:
        target = f"/{cgroup_path.strip('/')}/{name}" if cgroup_path.strip("/") else f"/{name}"
        return [value for path, value in self.writes if path == target]


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKernel:
    fake = FakeKernel(tmp_path / "cgroup")
    real_write = v2_module.write_file
    monkeypatch.setattr(v2_module, "write_file", lambda p, v: fake.write(p, v, real_write))
    return fake


@pytest.fixture
def driver(kernel: FakeKernel) -> V2Driver:
    class FakeDriver(V2Driver):
        def make_dir(self, path: Path) -> None:
            kernel.make_dir(path)

        def remove_dir(self, path: Path) -> None:
            kernel.remove_dir(path)

        def apply_devices(self, directory: Path, rules: list[Any]) -> None:
            kernel.device_rules[kernel.rel(directory)] = rules

    return FakeDriver(kernel.root)


def test_detect_driver_on_a_pure_cgroup2_tree(kernel: FakeKernel, tmp_path: Path) -> None:
    driver = detect_driver(kernel.root)
    assert isinstance(driver, V2Driver) and driver.version == 2
    # A cgroup2 root without controllers (a hybrid host's "unified") is not v2 here.
    hybrid = tmp_path / "hybrid"
    (hybrid / "unified").mkdir(parents=True)
    (hybrid / "unified" / "cgroup.controllers").write_text("\n")
    (hybrid / "memory").mkdir()
    assert detect_driver(hybrid).version == 1
    with pytest.raises(NotFound):
        V2Driver(tmp_path / "nothing")


def test_create_enables_controllers_in_parents_and_writes_limits(
    kernel: FakeKernel, driver: V2Driver
) -> None:
    cgroup = driver.create(
        "/servin/abc",
        {
            "memory": {"limit": 64 * MB, "swap": 96 * MB, "reservation": 32 * MB,
                       "swappiness": 10, "disableOOMKiller": False},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1",
                    "mems": "0", "burst": 1000, "idle": 0},
            "pids": {"limit": 20},
            "blockIO": {
                "weight": 500,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 1000}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 0}],
            },
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MB}],
            "unified": {"memory.high": "50000000"},
            "devices": [{"allow": False, "access": "rwm"},
                        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
        },
    )  # fmt: skip
    assert cgroup.path == "/servin/abc" and driver.exists("/servin/abc")
    wanted = {"cpu", "cpuset", "hugetlb", "io", "memory", "pids"}
    # Enabled in the root and in /servin (the leaf's parents), not in the leaf itself.
    assert set(kernel.value("/", "cgroup.subtree_control").split()) == wanted
    assert set(kernel.value("/servin", "cgroup.subtree_control").split()) == wanted
    assert kernel.value("/servin/abc", "cgroup.subtree_control") == ""
    order = [p for p, _ in kernel.writes if p.endswith("subtree_control")]
    assert order.index("/cgroup.subtree_control") < order.index("/servin/cgroup.subtree_control")

    leaf = "/servin/abc"
    assert kernel.value(leaf, "memory.max") == str(64 * MB)
    assert kernel.value(leaf, "memory.swap.max") == str(32 * MB)  # swap only, not mem+swap
    assert kernel.value(leaf, "memory.low") == str(32 * MB)
    assert kernel.value(leaf, "cpu.weight") == "100"
    assert kernel.value(leaf, "cpu.max") == "50000 100000"
    assert kernel.value(leaf, "cpu.max.burst") == "1000"
    assert kernel.value(leaf, "cpuset.cpus") == "0-1"
    assert kernel.value(leaf, "cpuset.mems") == "0"
    assert kernel.value(leaf, "pids.max") == "20"
    assert kernel.written(leaf, "io.weight") == [
        f"default {blkio_weight_to_io_weight(500)}", f"8:0 {blkio_weight_to_io_weight(1000)}",
    ]  # fmt: skip
    assert kernel.written(leaf, "io.max") == ["8:0 rbps=1048576", "8:16 wiops=max"]
    assert kernel.value(leaf, "hugetlb.2MB.max") == str(4 * MB)
    assert kernel.value(leaf, "memory.high") == "50000000"
    assert kernel.device_rules[leaf] == [
        DeviceRule(False, "a", None, None, "rwm"), DeviceRule(True, "c", 1, 3, "rwm"),
    ]  # fmt: skip
    # Nothing is written for v1-only fields (swappiness).
    assert not [p for p, _ in kernel.writes if "swappiness" in p]


def test_only_available_controllers_are_enabled(kernel: FakeKernel, driver: V2Driver) -> None:
    (kernel.root / "cgroup.controllers").write_text("memory pids\n")
    driver.create("/servin/x", {"pids": {"limit": 5}})
    assert kernel.value("/", "cgroup.subtree_control") == "memory pids"
    assert kernel.value("/servin", "cgroup.subtree_control") == "memory pids"
    # Already enabled: not written again.
    before = len(kernel.writes)
    driver.create("/servin/y", None)
    assert [w for w in kernel.writes[before:] if w[0].endswith("subtree_control")] == []


def test_update_merges_cpu_max_and_maps_unlimited(kernel: FakeKernel, driver: V2Driver) -> None:
    cgroup = driver.create("/c", {"cpu": {"quota": 20000, "period": 50000}})
    assert kernel.value("/c", "cpu.max") == "20000 50000"
    cgroup.update({"cpu": {"period": 200000}})
    assert kernel.value("/c", "cpu.max") == "20000 200000"
    cgroup.update({"cpu": {"quota": -1}})
    assert kernel.value("/c", "cpu.max") == "max 200000"
    cgroup.update({"memory": {"limit": -1, "swap": -1}, "pids": {"limit": -1}})
    assert kernel.value("/c", "memory.max") == "max"
    assert kernel.value("/c", "memory.swap.max") == "max"
    assert kernel.value("/c", "pids.max") == "max"
    cgroup.update({"memory": {"limit": 100 * MB}})
    cgroup.update({"memory": {"swap": 150 * MB}})  # swap alone: against the limit in force
    assert kernel.value("/c", "memory.swap.max") == str(50 * MB)
    with pytest.raises(InvalidArgument):
        cgroup.update({"cpu": {"realtimeRuntime": 1000}})
    with pytest.raises(InvalidArgument):
        cgroup.update({"unified": {"../escape": "1"}})


def test_conversions() -> None:
    assert shares_to_weight(2) == 1
    assert shares_to_weight(1024) == 100
    assert shares_to_weight(262144) == 10000
    assert shares_to_weight(1) == 1 and shares_to_weight(10**7) == 10000
    weights = [shares_to_weight(s) for s in (2, 16, 128, 512, 1024, 4096, 65536, 262144)]
    assert weights == sorted(weights) and len(set(weights)) == len(weights)
    assert blkio_weight_to_io_weight(10) == 1 and blkio_weight_to_io_weight(1000) == 10000
    assert swap_max(None, 64) is None and swap_max(0, 64) is None
    assert swap_max(-1, None) == "max"
    assert swap_max(96 * MB, 64 * MB) == str(32 * MB)
    assert swap_max(64 * MB, 64 * MB) == "0"
    for swap, limit in ((32 * MB, 64 * MB), (64 * MB, None), (64 * MB, -1)):
        with pytest.raises(InvalidArgument):
            swap_max(swap, limit)


def test_failed_create_removes_what_it_made(kernel: FakeKernel, driver: V2Driver) -> None:
    with pytest.raises(InvalidArgument):
        driver.create("/servin/deep/abc", {"cpu": {"realtimePeriod": 1000000}})
    assert not (kernel.root / "servin").exists()
    driver.create("/servin", None)
    with pytest.raises(InvalidArgument):
        driver.create("/servin/abc", {"memory": {"limit": 64 * MB, "swap": 32 * MB}})
    assert driver.exists("/servin") and not driver.exists("/servin/abc")


def test_freeze_waits_for_the_kernel(kernel: FakeKernel, driver: V2Driver) -> None:
    cgroup = driver.create("/c", None)
    freeze_file = kernel.root / "c" / "cgroup.freeze"
    events = kernel.root / "c" / "cgroup.events"

    def kernel_freezes() -> None:
        deadline = time.monotonic() + 5
        while freeze_file.read_text().strip() != "1" and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # the kernel takes its time
        events.write_text("populated 1\nfrozen 1\n")

    helper = threading.Thread(target=kernel_freezes)
    helper.start()
    started = time.monotonic()
    cgroup.freeze(timeout=5)
    helper.join()
    assert time.monotonic() - started >= 0.3
    assert cgroup.frozen()
    cgroup.thaw()
    assert freeze_file.read_text().strip() == "0"

    events.write_text("populated 1\nfrozen 0\n")
    with pytest.raises(Internal):
        cgroup.freeze(timeout=0.2)  # never frozen: give up, and undo the request
    assert freeze_file.read_text().strip() == "0"
    assert not cgroup.frozen()


def test_stats_parsing(kernel: FakeKernel, driver: V2Driver) -> None:
    cgroup = driver.create("/c", {"memory": {"limit": 256 * MB}, "pids": {"limit": 100}})
    files = {
        "cpu.stat": "usage_usec 5000000\nuser_usec 3000000\nsystem_usec 2000000\n"
                    "nr_periods 10\nnr_throttled 4\nthrottled_usec 1500\n",
        "memory.current": str(100 * MB),
        "memory.peak": str(200 * MB),
        "memory.swap.current": str(10 * MB),
        "memory.stat": f"anon {50 * MB}\nfile {40 * MB}\ninactive_file {20 * MB}\n",
        "memory.events": "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n",
        "pids.current": "7",
        "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
                   "8:16 rbytes=1 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
    }  # fmt: skip
    for name, content in files.items():
        (kernel.root / "c" / name).write_text(content)
    stats = cgroup.stats()
    assert (stats.cpu_usage_ns, stats.cpu_user_ns, stats.cpu_system_ns) == (
        5_000_000_000, 3_000_000_000, 2_000_000_000,
    )  # fmt: skip
    assert (stats.cpu_periods, stats.cpu_throttled_periods, stats.cpu_throttled_ns) == (
        10, 4, 1_500_000,
    )  # fmt: skip
    assert stats.memory_usage == 100 * MB and stats.memory_limit == 256 * MB
    assert stats.memory_max_usage == 200 * MB and stats.memory_swap_usage == 10 * MB
    assert stats.memory_cache == 40 * MB and stats.memory_inactive_file == 20 * MB
    assert stats.memory_usage_no_cache == 80 * MB
    assert stats.memory_stat["anon"] == 50 * MB
    assert stats.pids_current == 7 and stats.pids_limit == 100
    assert (stats.blkio_read_bytes, stats.blkio_write_bytes) == (4097, 8192)
    assert (stats.blkio_read_ops, stats.blkio_write_ops) == (2, 2)
    assert (stats.oom_kill, stats.oom_events) == (2, 3)
    assert cgroup.oom_killed()


def test_pids_include_nested_cgroups_and_destroy(kernel: FakeKernel, driver: V2Driver) -> None:
    cgroup = driver.create("/servin/c", None)
    nested = kernel.root / "servin" / "c" / "inner"
    kernel.make_dir(nested)
    (kernel.root / "servin" / "c" / "cgroup.procs").write_text("222\n111\n")
    (nested / "cgroup.procs").write_text("333\n111\n")
    assert cgroup.pids() == [111, 222, 333]
    # The fake kernel refuses to remove a populated cgroup, as the real one does.
    with pytest.raises(Conflict):
        remove_tree(cgroup.dir, time.monotonic() + 0.1, kernel.remove_dir)
    (kernel.root / "servin" / "c" / "cgroup.procs").write_text("")
    (nested / "cgroup.procs").write_text("")
    assert cgroup.pids() == []
    cgroup.destroy()
    assert not driver.exists("/servin/c") and driver.exists("/servin")
    cgroup.destroy()
    with pytest.raises(NotFound):
        driver.open("/servin/c")


def test_device_rule_parsing() -> None:
    rules = parse_rules([
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": -1, "access": "mw"},
        {"allow": True, "type": "b", "major": 8, "minor": 0},
    ])  # fmt: skip
    assert rules == [
        DeviceRule(False, "a", None, None, "rwm"),
        DeviceRule(True, "c", 1, None, "wm"),
        DeviceRule(True, "b", 8, 0, "rwm"),
    ]
    assert [r.v1_line() for r in rules] == ["a", "c 1:* wm", "b 8:0 rwm"]
    for bad in ({"allow": "yes"}, {"allow": True, "type": "x"}, {"allow": True, "access": "q"},
                {"allow": True, "major": -5}):  # fmt: skip
        with pytest.raises(InvalidArgument):
            parse_rules([bad])


@pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root")
@pytest.mark.parametrize(
    "rules",
    [
        [],
        [{"allow": False, "access": "rwm"}],
        [{"allow": True, "access": "rwm"}, {"allow": False, "type": "b", "access": "w"}],
        [{"allow": False, "type": "c", "major": 1, "access": "m"},
         {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rw"}],
        [{"allow": False, "access": "rwm"}, *DEVICE_RULES],
    ],
)  # fmt: skip
def test_device_programs_pass_the_verifier(rules: list[dict[str, Any]]) -> None:
    program = devices.build_program(parse_rules(rules))
    fd = devices._load(program)  # the kernel's verifier checks it here
    os.close(fd)


def _real_cgroup2_root() -> Path | None:
    for candidate in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
        if (candidate / "cgroup.controllers").exists():
            return candidate
    return None


@pytest.fixture
def real_v2() -> Iterator[tuple[V2Driver, str]]:
    root = _real_cgroup2_root()
    if root is None or os.geteuid() != 0:
        pytest.skip("needs root and a cgroup2 mount (for the BPF device program)")
    driver = V2Driver(root)
    parent = f"/servin-test-{uuid.uuid4().hex[:12]}"
    yield driver, parent
    if driver.exists(parent):
        driver.open(parent).destroy()
    assert not driver.exists(parent)


def test_bpf_device_program_on_a_real_cgroup2(real_v2: tuple[V2Driver, str]) -> None:
    """The eBPF device filter, attached to a real cgroup2 directory, with a real process.

    On a hybrid host (v1 controllers plus an empty cgroup2 at /sys/fs/cgroup/unified) the
    device program still applies: it follows the process's cgroup2 membership.
    """
    driver, parent = real_v2
    cgroup = driver.create(f"{parent}/dev", {"devices": DEVICE_RULES})
    assert len(attached_programs(cgroup.dir)) == 1
    probe = Gated(DEVICE_PROBE)
    try:
        cgroup.add_process(probe.pid)
        probe.go()
        assert probe.output().split() == DEVICE_VERDICTS
    finally:
        probe.reap()

    # Replacing the rules swaps the program: still exactly one attached, new verdicts.
    cgroup.update({"devices": [*DEVICE_RULES, {"allow": True, "type": "c", "major": 1,
                                               "minor": 7, "access": "r"}]})  # fmt: skip
    assert len(attached_programs(cgroup.dir)) == 1
    probe = Gated(DEVICE_PROBE)
    try:
        cgroup.add_process(probe.pid)
        probe.go()
        assert probe.output().split() == [*DEVICE_VERDICTS[:3], "full-ok"]
    finally:
        probe.reap()
    cgroup.destroy()
    assert not driver.exists(cgroup.path)
