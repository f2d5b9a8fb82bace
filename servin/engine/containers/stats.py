"""Live resource figures of running containers: one sampler shared by the whole daemon.

Every pass reads, for each running container, its cgroup counters and the interface counters
of its network namespace, and turns them into the figures ``docker stats`` shows: CPU % of
the host, memory usage without the reclaimable page cache, the limit (the host's memory when
there is none), network and block I/O, PIDs.

There is one sampling loop however many clients watch: it runs only while someone is
subscribed, paces itself by the fastest subscriber, and hands the same pass to every
subscriber that is due. Each subscriber has a small queue; when a client reads slowly its
oldest undelivered pass is dropped, so it never holds up the sampler or anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from servin.engine.containers.store import ContainerStore
from servin.engine.events import EventBus, SubscriberTooSlow
from servin.engine.linux.cgroups import (
    Cgroup,
    CgroupDriver,
    CgroupStats,
    V1Cgroup,
    V2Cgroup,
    detect_driver,
)
from servin.engine.linux.cgroups.base import UNLIMITED_THRESHOLD
from servin.errors import ServinError

log = logging.getLogger(__name__)

# Undelivered passes a subscriber may have waiting; older ones are dropped for newer.
QUEUE_DEPTH = 2
# Intervals below this are raised to it: a pass over hundreds of containers is not free.
MIN_INTERVAL = 0.1
DEFAULT_INTERVAL = 1.0
# A one-shot answer takes the loop's latest pass when it is at most this old (seconds).
SNAPSHOT_AGE = DEFAULT_INTERVAL
# The running set is re-read from the store when a container event says it changed, and at
# least this often in case one was missed.
REFRESH_INTERVAL = 5.0
# Container events that change which containers run, their init PID or their name.
_MEMBERSHIP_ACTIONS = frozenset({"start", "die", "destroy", "rename", "restart"})
# /proc/stat counts in USER_HZ ticks.
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ContainerSample:
    """One container's figures in one pass. Sizes are bytes."""

    id: str
    name: str
    read_ns: int
    cpu_percent: float
    cpu_total_ns: int
    memory_usage: int
    memory_limit: int
    memory_percent: float
    net_rx: int
    net_tx: int
    block_read: int
    block_write: int
    pids: int
    online_cpus: int
    # False on the first pass that sees the container: there is no earlier reading yet, so
    # cpu_percent is 0 rather than a measurement.
    has_baseline: bool
    # The raw figures behind the ones above, for doors that send them as they are (the
    # Docker API's stats document): CPU time in user and kernel mode, the cgroup's memory
    # usage with its cache and its memory.stat, block I/O per device and operation
    # (major, minor, op, bytes), and each interface's counters.
    cpu_user_ns: int = 0
    cpu_system_ns: int = 0
    # CFS bandwidth: periods, periods throttled, time throttled (ns).
    cpu_throttling: tuple[int, int, int] = (0, 0, 0)
    memory_raw: int = 0
    memory_stat: dict[str, int] = field(default_factory=dict)
    blkio: tuple[tuple[int, int, str, int], ...] = ()
    interfaces: dict[str, InterfaceCounters] = field(default_factory=dict)


@dataclass(frozen=True)
class InterfaceCounters:
    """One network interface's counters (from /proc/PID/net/dev)."""

    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0


@dataclass(frozen=True)
class StatsPass:
    """Every running container's sample from one pass, by container ID."""

    read_ns: int
    samples: dict[str, ContainerSample]
    # The daemon's loop time of the pass (for pacing subscribers).
    taken_at: float = 0.0
    # The host's CPU time (ns, as ``host_cpu_ns`` counts it) read for this pass.
    system_cpu_ns: int = 0


# -- host and namespace readers (blocking) -------------------------------------------------


def host_cpu_ns(path: Path = Path("/proc/stat")) -> int:
    """The host's CPU time in nanoseconds as docker counts it.

    The sum of the aggregate ``cpu`` line's first seven fields (user, nice, system, idle,
    iowait, irq, softirq), converted from clock ticks.
    """
    with open(path, "rb") as f:
        line = f.readline()
    fields = line.split()
    if not fields or fields[0] != b"cpu" or len(fields) < 8:
        raise ValueError(f"unexpected first line in {path}: {line!r}")
    ticks = sum(int(v) for v in fields[1:8])
    return ticks * (1_000_000_000 // _CLOCK_TICKS)


def host_memory() -> int:
    """The host's physical memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def online_cpus() -> int:
    """CPUs online on the host."""
    return max(os.sysconf("SC_NPROCESSORS_ONLN"), 1)


def netns_inode(pid: int | str) -> tuple[int, int] | None:
    """(device, inode) identifying the network namespace of ``pid`` (None if it is gone)."""
    try:
        st = os.stat(f"/proc/{pid}/ns/net")
    except OSError:
        return None
    return st.st_dev, st.st_ino


def net_counters(pid: int) -> tuple[int, int] | None:
    """Received and sent bytes over every interface but ``lo`` in the netns of ``pid``.

    None when the process is gone.
    """
    interfaces = interface_counters(pid)
    if interfaces is None:
        return None
    return (sum(i.rx_bytes for i in interfaces.values()),
            sum(i.tx_bytes for i in interfaces.values()))


def interface_counters(pid: int) -> dict[str, InterfaceCounters] | None:
    """Every interface but ``lo`` in the netns of ``pid`` with its counters; None when the
    process is gone."""
    try:
        with open(f"/proc/{pid}/net/dev", "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    out: dict[str, InterfaceCounters] = {}
    for line in lines[2:]:  # two header lines
        name, sep, rest = line.partition(b":")
        if not sep or name.strip() == b"lo":
            continue
        v = rest.split()
        if len(v) >= 12:
            out[name.strip().decode("utf-8", "replace")] = InterfaceCounters(
                int(v[0]), int(v[1]), int(v[2]), int(v[3]),
                int(v[8]), int(v[9]), int(v[10]), int(v[11]))
    return out


def cgroup_path_of(bundle_config: Path, container_id: str) -> str:
    """The container's cgroup path as its bundle names it (``/servin/<id>`` by default)."""
    try:
        path = json.loads(bundle_config.read_text())["linux"]["cgroupsPath"]
        if isinstance(path, str) and path:
            return path
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return f"/servin/{container_id}"


# -- cgroup counters --------------------------------------------------------------------------


@dataclass
class Counters:
    """The cgroup figures a stats pass needs. Sizes are bytes, CPU time nanoseconds."""

    cpu_ns: int = 0
    memory_usage: int = 0
    memory_limit: int | None = None
    memory_inactive_file: int = 0
    pids: int = 0
    block_read: int = 0
    block_write: int = 0
    cpu_user_ns: int = 0
    cpu_system_ns: int = 0
    cpu_throttling: tuple[int, int, int] = (0, 0, 0)
    memory_stat: dict[str, int] = field(default_factory=dict)
    blkio: list[tuple[int, int, str, int]] = field(default_factory=list)

    @classmethod
    def from_stats(cls, stats: CgroupStats) -> Counters:
        """From a full ``Cgroup.stats()`` reading."""
        return cls(
            cpu_ns=stats.cpu_usage_ns,
            memory_usage=stats.memory_usage,
            memory_limit=stats.memory_limit,
            memory_inactive_file=stats.memory_inactive_file,
            pids=stats.pids_current,
            block_read=stats.blkio_read_bytes,
            block_write=stats.blkio_write_bytes,
        )


def _read(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        return os.read(fd, 1 << 16)
    finally:
        os.close(fd)


def _number(data: bytes | None) -> int | None:
    if not data:
        return None
    text = data.strip()
    if text == b"max":
        return None
    value = int(text)
    return None if value >= UNLIMITED_THRESHOLD else value


def _all_keyed(data: bytes | None) -> dict[str, int]:
    """Every "key value" line of a file such as memory.stat."""
    out: dict[str, int] = {}
    for line in (data or b"").splitlines():
        key, _, value = line.partition(b" ")
        if value.strip().isdigit():
            out[key.decode("ascii", "replace")] = int(value)
    return out


def _device(text: bytes) -> tuple[int, int]:
    major, _, minor = text.partition(b":")
    return int(major or 0), int(minor or 0)


class CounterFiles:
    """Reads just the counters a stats pass needs from one cgroup, fast.

    ``Cgroup.stats()`` reads every counter the drivers know (about fifteen files on v1);
    a pass over hundreds of containers every second needs six, with their paths worked out
    once. A cgroup of a kind this does not know is read through ``stats()``.
    """

    def __init__(self, cgroup: Cgroup) -> None:
        self.cgroup = cgroup
        self.version = 0
        self._io: str | None = None
        if isinstance(cgroup, V1Cgroup):
            self.version = 1

            def at(controller: str, name: str) -> str | None:
                directory = cgroup.dir(controller)
                return None if directory is None else os.path.join(directory, name)

            self._cpu = at("cpuacct", "cpuacct.usage")
            self._cpu_stat = at("cpuacct", "cpuacct.stat")
            self._throttling = at("cpu", "cpu.stat")
            self._usage = at("memory", "memory.usage_in_bytes")
            self._limit = at("memory", "memory.limit_in_bytes")
            self._stat = at("memory", "memory.stat")
            self._pids = at("pids", "pids.current")
            # Which blkio file the kernel offers depends on its configuration.
            for name in (
                "blkio.throttle.io_service_bytes_recursive",
                "blkio.throttle.io_service_bytes",
                "blkio.io_service_bytes_recursive",
            ):
                path = at("blkio", name)
                if path is not None and os.path.exists(path):
                    self._io = path
                    break
        elif isinstance(cgroup, V2Cgroup):
            self.version = 2
            base = str(cgroup.dir)
            self._cpu = os.path.join(base, "cpu.stat")
            self._cpu_stat = self._cpu
            self._usage = os.path.join(base, "memory.current")
            self._limit = os.path.join(base, "memory.max")
            self._stat = os.path.join(base, "memory.stat")
            self._pids = os.path.join(base, "pids.current")
            self._io = os.path.join(base, "io.stat")

    def read(self) -> Counters:
        """The current counters (zeros for controllers that are not there)."""
        if self.version == 1:
            return self._read_v1()
        if self.version == 2:
            return self._read_v2()
        return Counters.from_stats(self.cgroup.stats())

    def _read_v1(self) -> Counters:
        memory_stat = _all_keyed(_read(self._stat))
        cpu_stat = _all_keyed(_read(self._cpu_stat))
        throttling = _all_keyed(_read(self._throttling))
        tick = 1_000_000_000 // _CLOCK_TICKS
        c = Counters(
            cpu_ns=_number(_read(self._cpu)) or 0,
            memory_usage=_number(_read(self._usage)) or 0,
            memory_limit=_number(_read(self._limit)),
            # The total_ figure includes cgroups the container may have made below its own.
            memory_inactive_file=memory_stat.get(
                "total_inactive_file", memory_stat.get("inactive_file", 0)),
            pids=_number(_read(self._pids)) or 0,
            cpu_user_ns=cpu_stat.get("user", 0) * tick,
            cpu_system_ns=cpu_stat.get("system", 0) * tick,
            cpu_throttling=(throttling.get("nr_periods", 0), throttling.get("nr_throttled", 0),
                            throttling.get("throttled_time", 0)),
            memory_stat=memory_stat,
        )
        for line in (_read(self._io) or b"").splitlines():
            fields = line.split()
            if len(fields) == 3:
                major, minor = _device(fields[0])
                op = fields[1].decode("ascii", "replace")
                c.blkio.append((major, minor, op, int(fields[2])))
                if fields[1] == b"Read":
                    c.block_read += int(fields[2])
                elif fields[1] == b"Write":
                    c.block_write += int(fields[2])
        return c

    def _read_v2(self) -> Counters:
        memory_stat = _all_keyed(_read(self._stat))
        cpu_stat = _all_keyed(_read(self._cpu))
        c = Counters(
            cpu_ns=cpu_stat.get("usage_usec", 0) * 1000,
            memory_usage=_number(_read(self._usage)) or 0,
            memory_limit=_number(_read(self._limit)),
            memory_inactive_file=memory_stat.get("inactive_file", 0),
            pids=_number(_read(self._pids)) or 0,
            cpu_user_ns=cpu_stat.get("user_usec", 0) * 1000,
            cpu_system_ns=cpu_stat.get("system_usec", 0) * 1000,
            cpu_throttling=(cpu_stat.get("nr_periods", 0), cpu_stat.get("nr_throttled", 0),
                            cpu_stat.get("throttled_usec", 0) * 1000),
            memory_stat=memory_stat,
        )
        for line in (_read(self._io) or b"").splitlines():
            parts = line.split()
            if not parts:
                continue
            major, minor = _device(parts[0])
            for field_ in parts[1:]:
                key, _, value = field_.partition(b"=")
                if key == b"rbytes":
                    c.block_read += int(value)
                    c.blkio.append((major, minor, "read", int(value)))
                elif key == b"wbytes":
                    c.block_write += int(value)
                    c.blkio.append((major, minor, "write", int(value)))
        return c


def memory_figures(counters: Counters, host_total: int) -> tuple[int, int, float]:
    """Usage without cache, the effective limit and the percentage, as docker shows them.

    Usage is the cgroup's minus its inactive file pages (v1: ``total_inactive_file``, v2:
    ``inactive_file``). The limit is the cgroup's, or the host's memory when the cgroup has
    none (or a larger one than the host could give).
    """
    usage = max(counters.memory_usage - counters.memory_inactive_file, 0)
    limit = counters.memory_limit
    if limit is None or limit <= 0 or limit > host_total:
        limit = host_total
    percent = usage / limit * 100.0 if limit else 0.0
    return usage, limit, percent


def cpu_percent(cpu_delta: int, system_delta: int, cpus: int) -> float:
    """docker's CPU %: the container's share of the host's CPU time, times the CPUs."""
    if cpu_delta <= 0 or system_delta <= 0:
        return 0.0
    return cpu_delta / system_delta * cpus * 100.0


# -- the sampler ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Running:
    """What a pass needs to know of a running container (cached between store reads)."""

    id: str
    name: str
    pid: int
    network_mode: str
    started_ns: int = 0


@dataclass
class _Tracked:
    """What the sampler remembers about a running container between passes."""

    pid: int
    counters: CounterFiles | None
    host_network: bool
    cpu_ns: int = -1
    system_ns: int = -1


@dataclass(eq=False)
class _Subscription:
    interval: float
    due: float
    queue: asyncio.Queue[StatsPass] = field(default_factory=lambda: asyncio.Queue(QUEUE_DEPTH))
    dropped: int = 0

    def offer(self, batch: StatsPass) -> None:
        if self.queue.full():
            # The client reads slower than we sample: it gets the newest figures only.
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(batch)


class StatsSampler:
    """Samples every running container for all subscribers at once."""

    def __init__(
        self,
        store: ContainerStore,
        bundle_dir: Callable[[str], Path],
        events: EventBus | None = None,
        *,
        driver: Callable[[], CgroupDriver] = detect_driver,
    ) -> None:
        """``bundle_dir(id)`` is the container's bundle (its config.json names the cgroup);
        ``events`` tells the sampler when the running set changes (without it the store is
        read every pass)."""
        self._store = store
        self._bundle_dir = bundle_dir
        self._events = events
        self._make_driver = driver
        self._driver: CgroupDriver | None = None
        self._driver_failed = False
        self._subs: set[_Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._event_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._tracked: dict[str, _Tracked] = {}
        self._running: list[_Running] | None = None
        self._running_read_at = 0.0
        self._latest: StatsPass | None = None
        self._host_memory = host_memory()
        self._host_netns = netns_inode("self")
        self.passes = 0  # passes taken since the daemon started (for tests and debugging)

    @property
    def running(self) -> bool:
        """Whether the sampling loop is active (someone is subscribed)."""
        return self._task is not None and not self._task.done()

    async def subscribe(self, interval: float = DEFAULT_INTERVAL) -> AsyncIterator[StatsPass]:
        """Passes over every running container, about one per ``interval`` seconds.

        The first comes at once: the latest pass if it is recent, else a new one. Stop
        iterating (or close the generator) to unsubscribe.
        """
        loop = asyncio.get_running_loop()
        interval = max(float(interval), MIN_INTERVAL)
        sub = _Subscription(interval=interval, due=loop.time())
        latest = self._latest
        if self.running and latest is not None and loop.time() - latest.taken_at < interval / 2:
            sub.offer(latest)
            sub.due = latest.taken_at + interval
        self._subs.add(sub)
        self._ensure_running()
        self._wake.set()
        try:
            while True:
                yield await sub.queue.get()
        finally:
            self._subs.discard(sub)
            self._wake.set()

    async def snapshot(self) -> StatsPass:
        """Every running container's figures now, for a one-shot answer, without waiting.

        The sampling loop's latest pass when it is fresh (someone is streaming); else one
        read whose CPU % covers the time since the container's last pass, or since it
        started (its average, as podman's one-shot shows). That read moves no baseline, so
        the figures of streams that start later stay over their own intervals.
        """
        latest = self._latest
        loop = asyncio.get_running_loop()
        if self.running and latest is not None and loop.time() - latest.taken_at <= SNAPSHOT_AGE:
            return latest
        return await asyncio.to_thread(self.sample, commit=False)

    async def stop(self) -> None:
        """End the sampling loop (daemon shutdown); subscribers get nothing more."""
        self._subs.clear()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _ensure_running(self) -> None:
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _watch_events(self) -> None:
        assert self._events is not None
        while True:
            try:
                async for event in self._events.subscribe():
                    if event.type == "container" and event.action in _MEMBERSHIP_ACTIONS:
                        self._running = None
            except SubscriberTooSlow:
                self._running = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        if self._events is not None:
            self._event_task = loop.create_task(self._watch_events())
        try:
            while self._subs:
                now = loop.time()
                due = min(s.due for s in self._subs)
                if due > now:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), due - now)
                    continue
                try:
                    batch = await asyncio.to_thread(self.sample)
                except Exception:
                    log.exception("stats pass failed")
                    batch = StatsPass(time.time_ns(), {})
                now = loop.time()
                batch = StatsPass(batch.read_ns, batch.samples, now, batch.system_cpu_ns)
                self._latest = batch
                for sub in list(self._subs):
                    # Anyone due within half an interval takes this pass, so subscribers with
                    # the same interval fall into step and share one pass per interval.
                    if sub.due - now <= sub.interval / 2:
                        sub.offer(batch)
                        sub.due = now + sub.interval
        finally:
            if self._event_task is not None:
                self._event_task.cancel()
                self._event_task = None
            # Idle: forget the baselines, or the next first sample would average CPU over
            # the whole idle time; and the running set, which events no longer keep fresh.
            self._tracked.clear()
            self._running = None
            self._latest = None
            if self._task is asyncio.current_task():
                self._task = None

    # -- one pass (blocking: runs in a worker thread) -------------------------------------------

    def _running_containers(self) -> list[_Running]:
        if not self.running:
            # No loop, so no event keeps a cached set fresh (a one-shot read): the store.
            return self._read_running()
        running = self._running
        now = time.monotonic()
        if (
            running is None
            or self._events is None
            or now - self._running_read_at > REFRESH_INTERVAL
        ):
            # Mark fresh before reading, so an event arriving meanwhile makes the next pass
            # read again.
            self._running = []
            self._running_read_at = now
            running = self._read_running()
            if self._running is not None:
                self._running = running
        return running

    def _read_running(self) -> list[_Running]:
        return [
            _Running(c.id, c.name, c.state.pid, c.host_config.network_mode,
                     c.state.started_at_ns)
            for c in self._store.list()
            if c.state.running and c.state.pid > 0
        ]

    def sample(self, *, commit: bool = True) -> StatsPass:
        """Read every running container once; updates the CPU baselines when ``commit``
        (a one-shot read does not: see ``snapshot``)."""
        started = time.monotonic()
        running = self._running_containers()
        system_ns = host_cpu_ns()
        cpus = online_cpus()
        read_ns = time.time_ns()
        samples: dict[str, ContainerSample] = {}
        for c in running:
            sample = self._sample_one(c, system_ns, cpus, read_ns, commit)
            if sample is not None:
                samples[c.id] = sample
        for gone in set(self._tracked) - {c.id for c in running}:
            del self._tracked[gone]
        if commit:
            self.passes += 1
        log.debug(
            "stats pass",
            extra={"containers": len(samples), "ms": round((time.monotonic() - started) * 1e3, 1)},
        )
        return StatsPass(read_ns, samples, system_cpu_ns=system_ns)

    def _track(self, c: _Running) -> _Tracked:
        tracked = self._tracked.get(c.id)
        if tracked is not None and tracked.pid == c.pid:
            return tracked
        # New, or restarted since the last pass: open its cgroup and look at its netns once.
        counters: CounterFiles | None = None
        driver = self._cgroup_driver()
        if driver is not None:
            path = cgroup_path_of(self._bundle_dir(c.id) / "config.json", c.id)
            with contextlib.suppress(ServinError, OSError):
                counters = CounterFiles(driver.open(path))
        ns = netns_inode(c.pid)
        tracked = _Tracked(
            pid=c.pid,
            counters=counters,
            # docker reports no network figures for a container on the host's network.
            host_network=c.network_mode == "host" or (ns is not None and ns == self._host_netns),
        )
        self._tracked[c.id] = tracked
        return tracked

    def _cgroup_driver(self) -> CgroupDriver | None:
        if self._driver is None and not self._driver_failed:
            try:
                self._driver = self._make_driver()
            except ServinError as exc:
                self._driver_failed = True
                log.warning("no cgroups to read stats from", extra={"error": str(exc)})
        return self._driver

    def _sample_one(
        self, c: _Running, system_ns: int, cpus: int, read_ns: int, commit: bool = True
    ) -> ContainerSample | None:
        tracked = self._track(c)
        counters = Counters()
        if tracked.counters is not None:
            try:
                counters = tracked.counters.read()
            except (ServinError, OSError, ValueError):
                # The container exited while we read it: leave it out of this pass.
                return None
        rx = tx = 0
        interfaces: dict[str, InterfaceCounters] = {}
        if not tracked.host_network:
            found = interface_counters(tracked.pid)
            if found is None:
                return None  # the init is gone
            interfaces = found
            rx = sum(i.rx_bytes for i in interfaces.values())
            tx = sum(i.tx_bytes for i in interfaces.values())
        has_baseline = tracked.cpu_ns >= 0
        if has_baseline:
            percent = cpu_percent(counters.cpu_ns - tracked.cpu_ns,
                                  system_ns - tracked.system_ns, cpus)  # fmt: skip
        elif not commit and 0 < c.started_ns < read_ns:
            # Since the start: the host's CPU time over that span is wall time x CPUs.
            percent = cpu_percent(counters.cpu_ns, (read_ns - c.started_ns) * cpus, cpus)
            has_baseline = True
        else:
            percent = 0.0
        if commit:
            tracked.cpu_ns, tracked.system_ns = counters.cpu_ns, system_ns
        usage, limit, mem_percent = memory_figures(counters, self._host_memory)
        return ContainerSample(
            id=c.id,
            name=c.name,
            read_ns=read_ns,
            cpu_percent=percent,
            cpu_total_ns=counters.cpu_ns,
            memory_usage=usage,
            memory_limit=limit,
            memory_percent=mem_percent,
            net_rx=rx,
            net_tx=tx,
            block_read=counters.block_read,
            block_write=counters.block_write,
            pids=counters.pids,
            online_cpus=cpus,
            has_baseline=has_baseline,
            cpu_user_ns=counters.cpu_user_ns,
            cpu_system_ns=counters.cpu_system_ns,
            cpu_throttling=counters.cpu_throttling,
            memory_raw=counters.memory_usage,
            memory_stat=counters.memory_stat,
            blkio=tuple(counters.blkio),
            interfaces=interfaces,
        )
