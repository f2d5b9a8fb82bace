"""The cgroup v1 driver: one directory per controller hierarchy.

Each controller is mounted at ``root/<name>``, alone or co-mounted (``cpu,cpuacct``, with
``cpu`` and ``cpuacct`` usually symlinks to it). A container's cgroup is the same relative
path created in every hierarchy Servin uses.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from servin.errors import Internal, InvalidArgument, ServinError, Unavailable

from .base import (
    DEFAULT_TIMEOUT,
    Cgroup,
    CgroupDriver,
    CgroupStats,
    device_list,
    log,
    make_dirs,
    optional_int,
    read_file,
    read_flat_keyed,
    read_int,
    read_optional,
    read_pids,
    remove_tree,
    section,
    signal_pids,
    split_path,
    wait_until,
    walk_dirs,
    write_file,
)

# The controllers a container's cgroup is created in (when the host mounts them).
CONTROLLERS = (
    "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "freezer", "devices", "hugetlb",
    "net_cls", "net_prio", "perf_event", "rdma", "misc",
)  # fmt: skip

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def discover_hierarchies(root: Path) -> dict[str, Path]:
    """Map each mounted v1 controller to its hierarchy directory under ``root``.

    A directory's name lists its controllers (``cpu,cpuacct``); symlinks to a co-mounted
    hierarchy resolve to the same directory, so each hierarchy appears once per controller.
    """
    found: dict[str, Path] = {}
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.is_symlink())
    except FileNotFoundError:
        return found
    for entry in entries:
        if not entry.is_dir():
            continue
        target = Path(os.path.realpath(entry.path))
        for name in target.name.split(","):
            if name in CONTROLLERS and name not in found:
                found[name] = target
    return found


class V1Cgroup(Cgroup):
    """A container cgroup across the v1 hierarchies."""

    version = 1

    def __init__(self, driver: V1Driver, path: str) -> None:
        super().__init__(path)
        self._driver = driver
        self._parts = split_path(path)

    def dir(self, controller: str) -> Path | None:
        """This cgroup's directory in ``controller``'s hierarchy (None if not mounted)."""
        hierarchy = self._driver.hierarchies.get(controller)
        return hierarchy.joinpath(*self._parts) if hierarchy else None

    def _need(self, controller: str) -> Path:
        directory = self.dir(controller)
        if directory is None:
            raise Unavailable(f"cgroup v1 controller {controller} is not mounted")
        return directory

    def _dirs(self) -> list[Path]:
        hierarchies = dict.fromkeys(self._driver.hierarchies.values())
        return [h.joinpath(*self._parts) for h in hierarchies]

    # --- membership ----------------------------------------------------------------------

    def add_process(self, pid: int) -> None:
        """Move ``pid`` into this cgroup in every hierarchy."""
        for directory in self._dirs():
            write_file(directory / "cgroup.procs", pid)

    def pids(self) -> list[int]:
        """The processes in this cgroup and below (from one hierarchy: all hold them all)."""
        top = self._primary()
        if top is None:
            return []
        found: list[int] = []
        for directory in walk_dirs(top):
            found.extend(read_pids(directory / "cgroup.procs"))
        return sorted(set(found))

    def _primary(self) -> Path | None:
        for controller in ("freezer", "pids", "memory", "cpu"):
            directory = self.dir(controller)
            if directory is not None and directory.is_dir():
                return directory
        existing = [d for d in self._dirs() if d.is_dir()]
        return existing[0] if existing else None

    # --- resources -----------------------------------------------------------------------

    def update(self, resources: Mapping[str, Any]) -> None:
        """Apply an OCI ``linux.resources`` object."""
        if not isinstance(resources, Mapping):
            raise InvalidArgument("resources must be an object")
        if resources.get("unified"):
            raise InvalidArgument("resources.unified needs cgroup v2; this host runs v1")
        self._memory(section(resources, "memory"))
        self._cpu(section(resources, "cpu"))
        pids = section(resources, "pids")
        limit = optional_int(pids, "limit", "resources.pids")
        if limit is not None and limit != 0:
            write_file(self._need("pids") / "pids.max", limit if limit > 0 else "max")
        self._block_io(section(resources, "blockIO"))
        self._hugepages(resources.get("hugepageLimits"))
        self._network(section(resources, "network"))
        devices = device_list(resources)
        if devices is not None:
            self._devices(devices)

    def _memory(self, memory: Mapping[str, Any]) -> None:
        if not memory:
            return
        where = "resources.memory"
        limit = optional_int(memory, "limit", where)
        swap = optional_int(memory, "swap", where)
        reservation = optional_int(memory, "reservation", where)
        swappiness = optional_int(memory, "swappiness", where)
        directory = self._need("memory")
        if limit is not None or swap is not None:
            self._memory_limits(directory, limit, swap)
        if reservation is not None:
            write_file(directory / "memory.soft_limit_in_bytes", reservation)
        if swappiness is not None:
            if not 0 <= swappiness <= 100:
                raise InvalidArgument(f"{where}.swappiness must be 0..100, not {swappiness}")
            write_file(directory / "memory.swappiness", swappiness)
        if memory.get("disableOOMKiller"):
            write_file(directory / "memory.oom_control", 1)

    @staticmethod
    def _memory_limits(directory: Path, limit: int | None, swap: int | None) -> None:
        # OCI swap is memory+swap, which is exactly v1's memsw limit. The kernel insists
        # memsw >= limit at every instant, so the order of the two writes depends on
        # whether the limits grow or shrink: try limit first, and on refusal memsw first.
        memsw = directory / "memory.memsw.limit_in_bytes"
        if swap is not None and not memsw.exists():
            log.debug("cgroup v1: no swap accounting on this kernel; ignoring memory.swap")
            swap = None
        if limit is not None and swap is not None and limit != -1 and 0 <= swap < limit:
            raise InvalidArgument("memory.swap (memory+swap) must not be below memory.limit")
        writes = []
        if limit is not None:
            writes.append((directory / "memory.limit_in_bytes", limit))
        if swap is not None:
            writes.append((memsw, swap))
        try:
            for path, value in writes:
                write_file(path, value)
        except InvalidArgument:
            if len(writes) < 2:
                raise
            for path, value in reversed(writes):
                write_file(path, value)

    def _cpu(self, cpu: Mapping[str, Any]) -> None:
        if not cpu:
            return
        where = "resources.cpu"
        shares = optional_int(cpu, "shares", where)
        quota = optional_int(cpu, "quota", where)
        period = optional_int(cpu, "period", where)
        burst = optional_int(cpu, "burst", where)
        rt_runtime = optional_int(cpu, "realtimeRuntime", where)
        rt_period = optional_int(cpu, "realtimePeriod", where)
        idle = optional_int(cpu, "idle", where)
        if any(v is not None for v in (shares, quota, period, burst, rt_runtime, rt_period, idle)):
            directory = self._need("cpu")
            if shares:
                write_file(directory / "cpu.shares", shares)
            # The period first: a quota is checked against the period in force.
            if period:
                write_file(directory / "cpu.cfs_period_us", period)
            if quota:
                write_file(directory / "cpu.cfs_quota_us", quota if quota > 0 else -1)
            if burst is not None:
                write_file(directory / "cpu.cfs_burst_us", burst)
            if rt_period:
                write_file(directory / "cpu.rt_period_us", rt_period)
            if rt_runtime:
                write_file(directory / "cpu.rt_runtime_us", rt_runtime)
            if idle is not None:
                write_file(directory / "cpu.idle", idle)
        for key, filename in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
            value = cpu.get(key)
            if value:
                write_file(self._need("cpuset") / filename, str(value))

    def _block_io(self, block_io: Mapping[str, Any]) -> None:
        if not block_io:
            return
        directory = self.dir("blkio")
        if directory is None:
            log.debug("cgroup v1: no blkio controller; ignoring resources.blockIO")
            return
        weights = [("weight", "blkio.weight"), ("leafWeight", "blkio.leaf_weight")]
        for key, filename in weights:
            value = optional_int(block_io, key, "resources.blockIO")
            if value is not None:
                self._optional_blkio(directory / filename, value)
        for device in block_io.get("weightDevice") or []:
            line = _device_prefix(device, "weightDevice")
            if device.get("weight") is not None:
                self._optional_blkio(
                    directory / "blkio.weight_device", f"{line} {device['weight']}"
                )
            if device.get("leafWeight") is not None:
                self._optional_blkio(
                    directory / "blkio.leaf_weight_device", f"{line} {device['leafWeight']}"
                )
        throttles = (
            ("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
            ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
            ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
            ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device"),
        )
        for key, filename in throttles:
            for device in block_io.get(key) or []:
                rate = device.get("rate")
                if not isinstance(rate, int) or rate < 0:
                    raise InvalidArgument(f"resources.blockIO.{key}: rate must be >= 0")
                write_file(directory / filename, f"{_device_prefix(device, key)} {rate}")

    @staticmethod
    def _optional_blkio(path: Path, value: str | int) -> None:
        # Weights need the CFQ/BFQ weight interface, which many kernels (this project's
        # reference VM included) do not offer in v1: skip, as the limit is advisory.
        if not path.exists():
            log.debug("cgroup v1: %s not supported by this kernel; skipping", path.name)
            return
        write_file(path, value)

    def _hugepages(self, limits: Any) -> None:
        if not limits:
            return
        directory = self._need("hugetlb")
        for entry in limits:
            size, limit = entry.get("pageSize"), entry.get("limit")
            if not isinstance(size, str) or not isinstance(limit, int):
                raise InvalidArgument("resources.hugepageLimits entries need pageSize and limit")
            write_file(directory / f"hugetlb.{size}.limit_in_bytes", limit)

    def _network(self, network: Mapping[str, Any]) -> None:
        if not network:
            return
        class_id = optional_int(network, "classID", "resources.network")
        if class_id is not None:
            write_file(self._need("net_cls") / "net_cls.classid", class_id)
        for prio in network.get("priorities") or []:
            write_file(
                self._need("net_prio") / "net_prio.ifpriomap", f"{prio['name']} {prio['priority']}"
            )

    def _devices(self, entries: list[Mapping[str, Any]]) -> None:
        # The rules are written in order, as the kernel applies them. Re-applying a list to
        # a running container (it starts with a deny-all) briefly denies its devices
        # until the allows that follow are written.
        from . import devices

        rules = devices.parse_rules(entries)
        directory = self._need("devices")
        for rule in rules:
            filename = "devices.allow" if rule.allow else "devices.deny"
            write_file(directory / filename, rule.v1_line())

    # --- freezer -------------------------------------------------------------------------

    def freeze(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Freeze the cgroup; returns once freezer.state reads FROZEN."""
        state = self._need("freezer") / "freezer.state"
        deadline = time.monotonic() + timeout
        while True:
            # FREEZING can stall on a task that is busy in the kernel; writing FROZEN again
            # retries the freeze.
            write_file(state, "FROZEN")
            if wait_until(lambda: read_file(state) == "FROZEN", min(0.1, timeout)):
                return
            if time.monotonic() >= deadline:
                write_file(state, "THAWED")
                raise Internal(f"cgroup {self.path} did not freeze within {timeout:g}s")

    def thaw(self) -> None:
        """Thaw the cgroup."""
        write_file(self._need("freezer") / "freezer.state", "THAWED")

    def frozen(self) -> bool:
        """Whether freezer.state reads FROZEN."""
        directory = self.dir("freezer")
        if directory is None:
            return False
        return read_optional(directory / "freezer.state") == "FROZEN"

    # --- signals and removal -------------------------------------------------------------

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        """Signal every process; frozen meanwhile so that none can fork past the signal."""
        directory = self.dir("freezer")
        can_freeze = directory is not None and directory.is_dir()
        was_frozen = False
        if can_freeze:
            was_frozen = self.frozen()
            try:
                self.freeze()
            except ServinError:
                can_freeze = False
        try:
            signal_pids(self.pids(), sig)
        finally:
            # v1 frozen tasks do not act on SIGKILL until thawed.
            if can_freeze and not (was_frozen and sig != signal.SIGKILL):
                self.thaw()

    def destroy(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Kill what is left, wait for it to exit and remove the cgroup everywhere."""
        existing = [d for d in self._dirs() if d.is_dir()]
        if not existing:
            return
        deadline = time.monotonic() + timeout
        if self.pids():
            self.kill_all(signal.SIGKILL)
            if not wait_until(lambda: not self.pids(), timeout):
                raise Internal(f"processes of cgroup {self.path} survived SIGKILL")
        for directory in existing:
            remove_tree(directory, deadline)

    # --- accounting ----------------------------------------------------------------------

    def stats(self) -> CgroupStats:
        """The counters across the v1 controllers."""
        stats = CgroupStats()
        cpuacct = self.dir("cpuacct")
        if cpuacct is not None:
            stats.cpu_usage_ns = read_int(cpuacct / "cpuacct.usage") or 0
            user, system = read_int(cpuacct / "cpuacct.usage_user"), read_int(
                cpuacct / "cpuacct.usage_sys"
            )
            if user is None or system is None:
                ticks = read_flat_keyed(cpuacct / "cpuacct.stat")
                factor = 1_000_000_000 // _CLOCK_TICKS
                user, system = ticks.get("user", 0) * factor, ticks.get("system", 0) * factor
            stats.cpu_user_ns, stats.cpu_system_ns = user, system
        cpu = self.dir("cpu")
        if cpu is not None:
            throttling = read_flat_keyed(cpu / "cpu.stat")
            stats.cpu_periods = throttling.get("nr_periods", 0)
            stats.cpu_throttled_periods = throttling.get("nr_throttled", 0)
            stats.cpu_throttled_ns = throttling.get("throttled_time", 0)
        memory = self.dir("memory")
        if memory is not None:
            self._memory_stats(memory, stats)
        pids = self.dir("pids")
        if pids is not None:
            stats.pids_current = read_int(pids / "pids.current") or 0
            stats.pids_limit = read_int(pids / "pids.max")
        blkio = self.dir("blkio")
        if blkio is not None:
            read_bytes, write_bytes = _blkio_totals(blkio, "io_service_bytes")
            read_ops, write_ops = _blkio_totals(blkio, "io_serviced")
            stats.blkio_read_bytes, stats.blkio_write_bytes = read_bytes, write_bytes
            stats.blkio_read_ops, stats.blkio_write_ops = read_ops, write_ops
        return stats

    @staticmethod
    def _memory_stats(memory: Path, stats: CgroupStats) -> None:
        stats.memory_usage = read_int(memory / "memory.usage_in_bytes") or 0
        stats.memory_limit = read_int(memory / "memory.limit_in_bytes")
        stats.memory_max_usage = read_int(memory / "memory.max_usage_in_bytes")
        detail = read_flat_keyed(memory / "memory.stat")
        stats.memory_stat = detail
        # The total_* figures include the cgroups below, which the container may create.
        stats.memory_cache = detail.get("total_cache", detail.get("cache", 0))
        stats.memory_inactive_file = detail.get(
            "total_inactive_file", detail.get("inactive_file", 0)
        )
        memsw = read_int(memory / "memory.memsw.usage_in_bytes")
        if memsw is not None:
            stats.memory_swap_usage = max(memsw - stats.memory_usage, 0)
        oom = read_flat_keyed(memory / "memory.oom_control")
        stats.oom_kill = oom.get("oom_kill", 0)
        # v1 has no count of OOM situations apart from kills.
        stats.oom_events = stats.oom_kill

    def oom_killed(self) -> bool:
        """Whether memory.oom_control counts an OOM kill."""
        memory = self.dir("memory")
        if memory is None:
            return False
        return read_flat_keyed(memory / "memory.oom_control").get("oom_kill", 0) > 0


def _device_prefix(device: Mapping[str, Any], key: str) -> str:
    major, minor = device.get("major"), device.get("minor")
    if not isinstance(major, int) or not isinstance(minor, int) or major < 0 or minor < 0:
        raise InvalidArgument(f"resources.blockIO.{key}: major and minor must be numbers")
    return f"{major}:{minor}"


def _blkio_totals(blkio: Path, counter: str) -> tuple[int, int]:
    """Read and write totals from a blkio ``<major>:<minor> <Op> <value>`` file."""
    text = None
    for name in (f"blkio.throttle.{counter}_recursive", f"blkio.throttle.{counter}",
                 f"blkio.{counter}_recursive"):  # fmt: skip
        text = read_optional(blkio / name)
        if text is not None:
            break
    read = write = 0
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        if parts[1] == "Read":
            read += int(parts[2])
        elif parts[1] == "Write":
            write += int(parts[2])
    return read, write


class V1Driver(CgroupDriver):
    """cgroup v1: controllers mounted as separate hierarchies under ``root``."""

    version = 1

    def __init__(self, root: Path = Path("/sys/fs/cgroup")) -> None:
        super().__init__(root)
        self.hierarchies = discover_hierarchies(self.root)
        if not self.hierarchies:
            raise Unavailable(f"no cgroup v1 controllers are mounted under {self.root}")

    def _hierarchy_dirs(self) -> list[Path]:
        return list(dict.fromkeys(self.hierarchies.values()))

    def _make(self, parts: list[str], created: list[Path],
              resources: Mapping[str, Any] | None) -> None:
        """The path in every hierarchy (a new cpuset gets its parent's CPUs and nodes)."""
        for hierarchy in self._hierarchy_dirs():
            cpuset = self.hierarchies.get("cpuset") == hierarchy
            make_dirs(hierarchy, parts, created, self.make_dir,
                      _inherit_cpuset if cpuset else None)

    def _cgroup(self, path: str) -> V1Cgroup:
        return V1Cgroup(self, path)

    def exists(self, path: str) -> bool:
        """Whether ``path`` exists in any of the hierarchies."""
        parts = split_path(path)
        return any(h.joinpath(*parts).is_dir() for h in self._hierarchy_dirs())


def _inherit_cpuset(parent: Path, child: Path) -> None:
    """Give a cpuset cgroup its parent's CPUs and memory nodes.

    A new v1 cpuset starts empty (unless cgroup.clone_children is set) and refuses tasks
    until both are filled in.
    """
    for name in ("cpuset.cpus", "cpuset.mems"):
        if read_file(child / name) == "":
            value = read_file(parent / name)
            try:
                write_file(child / name, value)
            except ServinError as exc:
                raise Internal(f"cannot initialise {child / name}: {exc}") from exc


