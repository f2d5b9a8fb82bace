"""The cgroup v2 driver: one unified hierarchy, controllers enabled per subtree.

OCI resources are written the way the OCI runtimes map them onto v2 files:

- ``memory.limit`` -> ``memory.max``; ``memory.reservation`` -> ``memory.low``;
  ``memory.swap`` is memory+swap in OCI but swap alone in ``memory.swap.max``, so the
  limit is subtracted; -1 means "max" everywhere.
- ``cpu.shares`` (2..262144, default 1024) -> ``cpu.weight`` (1..10000, default 100) on a
  log scale that keeps both defaults and both ends aligned:
  ``weight = ceil(10 ** ((l*l + 125*l) / 612 - 7/34))`` with ``l = log2(shares)``.
- ``cpu.quota``/``cpu.period`` -> ``cpu.max`` ("<quota|max> <period>").
- ``blockIO.weight`` (10..1000) -> ``io.bfq.weight`` as is, or ``io.weight`` scaled to
  1..10000; throttles -> ``io.max``.
- ``devices`` -> an eBPF device program (see ``devices.py``).
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from servin.errors import Internal, InvalidArgument, NotFound, ServinError

from .base import (
    DEFAULT_TIMEOUT,
    Cgroup,
    CgroupDriver,
    CgroupStats,
    device_list,
    log,
    make_dirs,
    optional_int,
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

# Enabled for every container: what stats() reads and the limits Docker users set.
BASE_CONTROLLERS = ("cpu", "memory", "pids", "io")


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares to v2 cpu.weight (2 -> 1, 1024 -> 100, 262144 -> 10000)."""
    shares = min(max(shares, 2), 262144)
    exponent = math.log2(shares)
    weight = math.ceil(10 ** ((exponent * exponent + 125 * exponent) / 612.0 - 7.0 / 34.0))
    return min(max(weight, 1), 10000)


def blkio_weight_to_io_weight(weight: int) -> int:
    """A v1 blkio weight (10..1000) on the v2 io.weight scale (1..10000)."""
    return 1 + (weight - 10) * 9999 // 990


def swap_max(swap: int | None, limit: int | None) -> str | None:
    """The memory.swap.max value for OCI memory ``swap`` (memory+swap) and ``limit``.

    None means "leave it alone".
    """
    if swap is None or swap == 0:
        return None
    if swap == -1:
        return "max"
    if swap < 0:
        raise InvalidArgument(f"resources.memory.swap must be -1 or positive, not {swap}")
    if limit is None or limit <= 0:
        raise InvalidArgument("resources.memory.swap needs a memory limit on cgroup v2")
    if swap < limit:
        raise InvalidArgument("resources.memory.swap (memory+swap) must not be below the limit")
    return str(swap - limit)


def _controllers_for(resources: Mapping[str, Any] | None) -> set[str]:
    wanted = set(BASE_CONTROLLERS)
    if not resources:
        return wanted
    cpu = resources.get("cpu") or {}
    if cpu.get("cpus") or cpu.get("mems"):
        wanted.add("cpuset")
    if resources.get("hugepageLimits"):
        wanted.add("hugetlb")
    if resources.get("rdma"):
        wanted.add("rdma")
    for key in resources.get("unified") or {}:
        wanted.add(str(key).split(".", 1)[0])
    wanted.discard("cgroup")
    return wanted


class V2Cgroup(Cgroup):
    """A container cgroup in the unified hierarchy."""

    version = 2

    def __init__(self, driver: V2Driver, path: str) -> None:
        super().__init__(path)
        self._driver = driver
        self.dir = driver.root.joinpath(*split_path(path))

    # --- membership ----------------------------------------------------------------------

    def add_process(self, pid: int) -> None:
        """Move ``pid`` into this cgroup."""
        write_file(self.dir / "cgroup.procs", pid)

    def pids(self) -> list[int]:
        """The processes in this cgroup and below."""
        found: list[int] = []
        for directory in walk_dirs(self.dir):
            found.extend(read_pids(directory / "cgroup.procs"))
        return sorted(set(found))

    # --- resources -----------------------------------------------------------------------

    def update(self, resources: Mapping[str, Any]) -> None:
        """Apply an OCI ``linux.resources`` object."""
        if not isinstance(resources, Mapping):
            raise InvalidArgument("resources must be an object")
        self._driver.enable_controllers(self.dir.parent, _controllers_for(resources))
        self._memory(section(resources, "memory"))
        self._cpu(section(resources, "cpu"))
        limit = optional_int(section(resources, "pids"), "limit", "resources.pids")
        if limit is not None and limit != 0:
            write_file(self.dir / "pids.max", limit if limit > 0 else "max")
        self._io(section(resources, "blockIO"))
        for entry in resources.get("hugepageLimits") or []:
            size, value = entry.get("pageSize"), entry.get("limit")
            if not isinstance(size, str) or not isinstance(value, int):
                raise InvalidArgument("resources.hugepageLimits entries need pageSize and limit")
            write_file(self.dir / f"hugetlb.{size}.max", value)
        for device, limits in (resources.get("rdma") or {}).items():
            fields = []
            if limits.get("hcaHandles") is not None:
                fields.append(f"hca_handle={limits['hcaHandles']}")
            if limits.get("hcaObjects") is not None:
                fields.append(f"hca_object={limits['hcaObjects']}")
            if fields:
                write_file(self.dir / "rdma.max", f"{device} {' '.join(fields)}")
        if section(resources, "network"):
            log.debug("cgroup v2 has no net_cls/net_prio; ignoring resources.network")
        entries = device_list(resources)
        if entries is not None:
            from . import devices

            self._driver.apply_devices(self.dir, devices.parse_rules(entries))
        for key, value in (resources.get("unified") or {}).items():
            if not isinstance(key, str) or "/" in key or key.startswith(".") or "." not in key:
                raise InvalidArgument(f"resources.unified: bad cgroup file name {key!r}")
            write_file(self.dir / key, str(value))

    def _memory(self, memory: Mapping[str, Any]) -> None:
        if not memory:
            return
        where = "resources.memory"
        limit = optional_int(memory, "limit", where)
        swap = optional_int(memory, "swap", where)
        reservation = optional_int(memory, "reservation", where)
        in_force = limit
        if swap is not None and swap not in (0, -1) and limit is None:
            in_force = read_int(self.dir / "memory.max")  # an update of the swap limit alone
        swap_value = swap_max(swap, in_force)
        if limit is not None:
            write_file(self.dir / "memory.max", "max" if limit == -1 else limit)
        if swap_value is not None:
            if (self.dir / "memory.swap.max").exists():
                write_file(self.dir / "memory.swap.max", swap_value)
            else:
                log.warning("cgroup v2: no swap accounting; ignoring resources.memory.swap")
        if reservation is not None:
            write_file(self.dir / "memory.low", "max" if reservation == -1 else reservation)
        for key in ("swappiness", "disableOOMKiller", "kernel", "kernelTCP"):
            if memory.get(key) not in (None, False):
                log.debug("cgroup v2 has no equivalent of memory.%s; ignoring it", key)

    def _cpu(self, cpu: Mapping[str, Any]) -> None:
        if not cpu:
            return
        where = "resources.cpu"
        shares = optional_int(cpu, "shares", where)
        quota = optional_int(cpu, "quota", where)
        period = optional_int(cpu, "period", where)
        burst = optional_int(cpu, "burst", where)
        idle = optional_int(cpu, "idle", where)
        if optional_int(cpu, "realtimeRuntime", where) or optional_int(
            cpu, "realtimePeriod", where
        ):
            raise InvalidArgument("cgroup v2 does not support realtime CPU limits")
        if shares:
            write_file(self.dir / "cpu.weight", shares_to_weight(shares))
        if quota or period:
            # cpu.max holds both numbers: keep the one the update leaves out.
            current = (read_optional(self.dir / "cpu.max") or "max 100000").split()
            quota_text = current[0]
            if quota:
                quota_text = str(quota) if quota > 0 else "max"
            period_text = str(period) if period else current[1]
            write_file(self.dir / "cpu.max", f"{quota_text} {period_text}")
        if burst is not None:
            write_file(self.dir / "cpu.max.burst", burst)
        if idle is not None:
            write_file(self.dir / "cpu.idle", idle)
        for key, filename in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
            value = cpu.get(key)
            if value:
                write_file(self.dir / filename, str(value))

    def _io(self, block_io: Mapping[str, Any]) -> None:
        if not block_io:
            return
        bfq = (self.dir / "io.bfq.weight").exists()
        weight_file = self.dir / ("io.bfq.weight" if bfq else "io.weight")
        weight = optional_int(block_io, "weight", "resources.blockIO")
        devices = block_io.get("weightDevice") or []
        if (weight is not None or devices) and not weight_file.exists():
            log.debug("cgroup v2: no io weight interface on this kernel; skipping weights")
        elif weight is not None or devices:
            if weight is not None:
                _check_weight(weight)
                value = weight if bfq else blkio_weight_to_io_weight(weight)
                write_file(weight_file, f"default {value}")
            for device in devices:
                if device.get("weight") is None:
                    continue
                _check_weight(device["weight"])
                value = device["weight"] if bfq else blkio_weight_to_io_weight(device["weight"])
                write_file(weight_file, f"{_device_prefix(device)} {value}")
        if block_io.get("leafWeight") is not None:
            log.debug("cgroup v2 has no leaf weights; ignoring blockIO.leafWeight")
        throttles = (
            ("throttleReadBpsDevice", "rbps"),
            ("throttleWriteBpsDevice", "wbps"),
            ("throttleReadIOPSDevice", "riops"),
            ("throttleWriteIOPSDevice", "wiops"),
        )
        for key, name in throttles:
            for device in block_io.get(key) or []:
                rate = device.get("rate")
                if not isinstance(rate, int) or rate < 0:
                    raise InvalidArgument(f"resources.blockIO.{key}: rate must be >= 0")
                limit: int | str = rate if rate > 0 else "max"  # v1 took 0 as "no limit"
                write_file(self.dir / "io.max", f"{_device_prefix(device)} {name}={limit}")

    # --- freezer -------------------------------------------------------------------------

    def freeze(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Freeze; returns once cgroup.events reports ``frozen 1``."""
        write_file(self.dir / "cgroup.freeze", 1)
        if not wait_until(self.frozen, timeout):
            write_file(self.dir / "cgroup.freeze", 0)
            raise Internal(f"cgroup {self.path} did not freeze within {timeout:g}s")

    def thaw(self) -> None:
        """Thaw."""
        write_file(self.dir / "cgroup.freeze", 0)

    def frozen(self) -> bool:
        """Whether cgroup.events reports ``frozen 1``."""
        return read_flat_keyed(self.dir / "cgroup.events").get("frozen") == 1

    # --- signals and removal -------------------------------------------------------------

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        """Signal every process in the cgroup and below."""
        if sig == signal.SIGKILL and (self.dir / "cgroup.kill").exists():
            write_file(self.dir / "cgroup.kill", 1)  # atomic, fork-proof (Linux 5.14+)
            return
        was_frozen = self.frozen()
        try:
            if not was_frozen:
                self.freeze()
        except ServinError:
            signal_pids(self.pids(), sig)
            return
        try:
            signal_pids(self.pids(), sig)
        finally:
            if not was_frozen:
                self.thaw()

    def destroy(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Kill what is left, wait for it to exit and remove the cgroup."""
        if not self.dir.is_dir():
            return
        deadline = time.monotonic() + timeout
        if self.pids():
            self.kill_all(signal.SIGKILL)
            if not wait_until(lambda: not self.pids(), timeout):
                raise Internal(f"processes of cgroup {self.path} survived SIGKILL")
        remove_tree(self.dir, deadline, self._driver.remove_dir)

    # --- accounting ----------------------------------------------------------------------

    def stats(self) -> CgroupStats:
        """The counters of the unified hierarchy."""
        stats = CgroupStats()
        cpu = read_flat_keyed(self.dir / "cpu.stat")
        stats.cpu_usage_ns = cpu.get("usage_usec", 0) * 1000
        stats.cpu_user_ns = cpu.get("user_usec", 0) * 1000
        stats.cpu_system_ns = cpu.get("system_usec", 0) * 1000
        stats.cpu_periods = cpu.get("nr_periods", 0)
        stats.cpu_throttled_periods = cpu.get("nr_throttled", 0)
        stats.cpu_throttled_ns = cpu.get("throttled_usec", 0) * 1000
        stats.memory_usage = read_int(self.dir / "memory.current") or 0
        stats.memory_limit = read_int(self.dir / "memory.max")
        stats.memory_max_usage = read_int(self.dir / "memory.peak")
        detail = read_flat_keyed(self.dir / "memory.stat")
        stats.memory_stat = detail
        stats.memory_cache = detail.get("file", 0)
        stats.memory_inactive_file = detail.get("inactive_file", 0)
        stats.memory_swap_usage = read_int(self.dir / "memory.swap.current")
        stats.pids_current = read_int(self.dir / "pids.current") or 0
        stats.pids_limit = read_int(self.dir / "pids.max")
        for line in (read_optional(self.dir / "io.stat") or "").splitlines():
            fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
            stats.blkio_read_bytes += int(fields.get("rbytes", 0))
            stats.blkio_write_bytes += int(fields.get("wbytes", 0))
            stats.blkio_read_ops += int(fields.get("rios", 0))
            stats.blkio_write_ops += int(fields.get("wios", 0))
        events = read_flat_keyed(self.dir / "memory.events")
        stats.oom_kill = events.get("oom_kill", 0)
        stats.oom_events = events.get("oom", 0)
        return stats

    def oom_killed(self) -> bool:
        """Whether memory.events counts an OOM kill."""
        return read_flat_keyed(self.dir / "memory.events").get("oom_kill", 0) > 0


def _check_weight(weight: Any) -> None:
    if not isinstance(weight, int) or not 10 <= weight <= 1000:
        raise InvalidArgument(f"resources.blockIO weights must be 10..1000, not {weight!r}")


def _device_prefix(device: Mapping[str, Any]) -> str:
    major, minor = device.get("major"), device.get("minor")
    if not isinstance(major, int) or not isinstance(minor, int) or major < 0 or minor < 0:
        raise InvalidArgument("resources.blockIO devices need numeric major and minor")
    return f"{major}:{minor}"


class V2Driver(CgroupDriver):
    """cgroup v2: the unified hierarchy mounted at ``root``."""

    version = 2

    def __init__(self, root: Path = Path("/sys/fs/cgroup")) -> None:
        super().__init__(root)
        if not (self.root / "cgroup.controllers").exists():
            raise NotFound(f"{self.root} is not a cgroup2 mount")

    def apply_devices(self, directory: Path, rules: list[Any]) -> None:
        """Attach the device program (a seam for tests: a fake tree cannot hold BPF)."""
        from . import devices

        devices.apply_v2(directory, rules)

    def enable_controllers(self, directory: Path, wanted: set[str]) -> None:
        """Enable ``wanted`` (as far as available) for the children of ``directory``.

        Every ancestor between the root and ``directory`` gets them too, since a controller
        can only be enabled below a cgroup that has it.
        """
        relative = directory.relative_to(self.root).parts
        chain = [self.root.joinpath(*relative[:i]) for i in range(len(relative) + 1)]
        for current in chain:
            available = set((read_optional(current / "cgroup.controllers") or "").split())
            enabled = set((read_optional(current / "cgroup.subtree_control") or "").split())
            missing = sorted((wanted & available) - enabled)
            if not missing:
                continue
            try:
                write_file(current / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))
            except ServinError:
                # One refusal fails the whole write: enable what can be enabled.
                for controller in missing:
                    try:
                        write_file(current / "cgroup.subtree_control", f"+{controller}")
                    except ServinError as exc:
                        log.warning("cgroup v2: cannot enable %s in %s: %s",
                                    controller, current, exc)  # fmt: skip

    def _make(self, parts: list[str], created: list[Path],
              resources: Mapping[str, Any] | None) -> None:
        """The path, and the controllers ``resources`` need enabled above it."""
        current = make_dirs(self.root, parts, created, self.make_dir)
        # Enabled once the path exists; only the leaf's ancestors get controllers, the
        # leaf itself holds the processes (v2 allows no processes in inner cgroups).
        self.enable_controllers(current.parent, _controllers_for(resources))

    def _cgroup(self, path: str) -> V2Cgroup:
        return V2Cgroup(self, path)

    def exists(self, path: str) -> bool:
        """Whether ``path`` exists."""
        return self.root.joinpath(*split_path(path)).is_dir()
