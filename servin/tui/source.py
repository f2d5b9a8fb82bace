"""The console's data layer: one live view of a daemon, shared by every screen.

``Source`` sits between the app and a servin.client ``AsyncClient`` (or anything shaped like
one: tests pass a fake fed by recorded data). While connected it keeps exactly three
conversations with the daemon, whatever the number of containers:

- one ``Containers.Stats`` stream (all running containers, one batch per interval),
- one ``System.Events`` stream,
- a light ``Containers.List`` / ``Images.List`` refresh, every few seconds and soon after a
  container or image event (bursts of events cause one refresh),
- ``System.Info`` every few seconds for the header (the daemon's version, the host's CPU
  and memory).

Changes are coalesced: listeners hear at most one call per ``coalesce`` seconds, naming the
kinds of data that changed (``connection``, ``containers``, ``stats``, ``events``,
``images``, ``info``, and ``volumes``/``networks``/``pods`` when an event names one). When
the daemon goes away the last data stays, ``state.connected`` turns false, and the source reconnects
with exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from servin.errors import ServinError, Unavailable

if TYPE_CHECKING:
    from servin.api.servin.v1.containers_pb2 import ContainerStats, ContainerSummary, StatsBatch
    from servin.api.servin.v1.images_pb2 import ImageSummary
    from servin.api.servin.v1.system_pb2 import Event, InfoResponse, VersionResponse
    from servin.client.facades import (
        AsyncContainers,
        AsyncImages,
        AsyncNetworks,
        AsyncPods,
        AsyncSystem,
        AsyncVolumes,
    )
    from servin.client.hosts import Target

log = logging.getLogger(__name__)

HISTORY = 120  # stats samples kept per container (2 minutes at the default interval)
EVENTS_KEPT = 2000
EVENTS_BACKLOG = 3600.0  # seconds of past events asked for on the first connection


class DaemonClient(Protocol):
    """What the source needs from a client: servin.client.AsyncClient fits."""

    url: str
    containers: AsyncContainers
    images: AsyncImages
    volumes: AsyncVolumes
    networks: AsyncNetworks
    pods: AsyncPods
    system: AsyncSystem

    async def close(self) -> None: ...


ClientFactory = Callable[[], DaemonClient]
T = TypeVar("T")
Listener = Callable[[set[str]], None]


class Metrics:
    """Recent samples of one container's live figures, oldest first.

    Only the samples are kept (one append per container per second, the stream's hot path);
    the series (``cpu``, ``mem``, per-sample I/O deltas) are derived when something draws
    them, and ``tail(name, n)`` derives only the last ``n`` values.
    """

    __slots__ = ("samples",)

    def __init__(self) -> None:
        # +1: the first delta's base
        self.samples: deque[ContainerStats] = deque(maxlen=HISTORY + 1)

    def add(self, s: ContainerStats) -> None:
        """Record one ContainerStats."""
        self.samples.append(s)

    def __len__(self) -> int:
        return min(len(self.samples), HISTORY)

    def tail(self, name: str, n: int = HISTORY) -> list[float]:
        """The last ``n`` values of a series: ``cpu``, ``mem``, ``net_rx``, ``net_tx``,
        ``blk_read``, ``blk_write`` (I/O counters as per-sample deltas, 0 for the first)."""
        n = min(n, len(self))
        if n <= 0:
            return []
        recent = list(itertools.islice(reversed(self.samples), n + 1))[::-1]
        if name == "cpu":
            return [float(s.cpu_percent) for s in recent[-n:]]
        if name == "mem":
            return [float(s.memory_usage) for s in recent[-n:]]
        attr = _COUNTERS[name]
        values = [
            float(max(0, getattr(b, attr) - getattr(a, attr)))
            for a, b in itertools.pairwise(recent)
        ]
        if len(values) < n:  # the very first sample has no base: no traffic yet
            values.insert(0, 0.0)
        return values[-n:]

    @property
    def cpu(self) -> list[float]:
        """CPU % samples."""
        return self.tail("cpu")

    @property
    def mem(self) -> list[float]:
        """Memory usage samples (bytes)."""
        return self.tail("mem")

    @property
    def net_rx(self) -> list[float]:
        """Bytes received per sample."""
        return self.tail("net_rx")

    @property
    def net_tx(self) -> list[float]:
        """Bytes sent per sample."""
        return self.tail("net_tx")

    @property
    def blk_read(self) -> list[float]:
        """Bytes read from block devices per sample."""
        return self.tail("blk_read")

    @property
    def blk_write(self) -> list[float]:
        """Bytes written to block devices per sample."""
        return self.tail("blk_write")


_COUNTERS = {
    "net_rx": "net_rx",
    "net_tx": "net_tx",
    "blk_read": "block_read",
    "blk_write": "block_write",
}


@dataclass
class State:
    """The last known picture of the daemon. Screens read it; only the source writes it."""

    host: str
    context: str = ""  # the named context the host came from ("" for none)
    connected: bool = False
    ever_connected: bool = False
    error: str = ""  # why we are disconnected
    retry_in: float = 0.0
    containers: dict[str, ContainerSummary] = field(default_factory=dict)  # by id
    images: list[ImageSummary] = field(default_factory=list)
    stats: dict[str, ContainerStats] = field(default_factory=dict)  # by id (running ones)
    history: dict[str, Metrics] = field(default_factory=dict)
    events: deque[Event] = field(default_factory=lambda: deque(maxlen=EVENTS_KEPT))
    info: InfoResponse | None = None  # the last System.Info (None until it answers)
    version: VersionResponse | None = None  # System.Version
    host_cpu_percent: float | None = None  # busy share of all CPUs between two Info calls
    stats_note: str = ""  # why live stats are missing ("" when they flow)
    events_note: str = ""
    images_note: str = ""
    builds: dict[str, str] = field(default_factory=dict)  # running builds: id -> what, step


class Source:
    """A live, reconnecting view of one daemon (see the module docstring)."""

    def __init__(
        self,
        factory: ClientFactory,
        host: str,
        *,
        clock: Callable[[], float] = time.time,
        list_interval: float = 5.0,
        stats_interval_ms: int = 1000,
        coalesce: float = 0.2,
        backoff: tuple[float, float] = (0.5, 10.0),
        unsupported_retry: float = 60.0,
        context: str = "",
        stats_redraw: float = 2.0,
        info_interval: float = 5.0,
    ) -> None:
        self.state = State(host=host, context=context)
        self.clock = clock
        self._factory = factory
        self._list_interval = list_interval
        self._stats_interval_ms = stats_interval_ms
        self._coalesce = coalesce
        # How often a screen may redraw a big table for new live figures alone (seconds).
        self.stats_redraw = stats_redraw
        self._backoff = backoff
        self._info_interval = info_interval
        self._cpu_reading: tuple[int, int] | None = None
        self._unsupported_retry = unsupported_retry
        self._client: DaemonClient | None = None
        self._listeners: list[Listener] = []
        self._pending: set[str] = set()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._list_wanted = asyncio.Event()
        self._connected_event = asyncio.Event()
        self._last_event_time = 0.0
        self._wake = asyncio.Event()
        self._stopping = False

    # ---- lifecycle ---------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(kinds)`` after changes (coalesced)."""
        self._listeners.append(listener)

    def start(self) -> None:
        """Start connecting (in the running event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="servin-source")

    async def stop(self) -> None:
        """Stop every stream and close the client."""
        # The flag as well as the cancel: a TaskGroup whose children fail while it is being
        # cancelled raises their errors instead of CancelledError, which the loop catches.
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        await self._close_client()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the source is connected (tests, and actions issued while reconnecting)."""
        async with asyncio.timeout(timeout):
            await self._connected_event.wait()

    def reconnect_now(self) -> None:
        """Skip the rest of the current backoff wait."""
        self._wake.set()

    def request_refresh(self, images: bool = False) -> None:
        """Ask for a container (and, with ``images``, image) list refresh soon."""
        if images:
            self._images_wanted = True
        self._list_wanted.set()

    # ---- calls for the screens ---------------------------------------------------------

    @property
    def client(self) -> DaemonClient:
        """The live client; Unavailable while disconnected."""
        if self._client is None or not self.state.connected:
            raise Unavailable(f"disconnected from {self.state.host}")
        return self._client

    async def call(self, call: Callable[[DaemonClient], Awaitable[T]]) -> T:
        """One unary call through the live client (servin.errors on failure), e.g.
        ``await source.call(lambda c: c.containers.Stop(request, timeout=600))``."""
        try:
            return await call(self.client)
        except Unavailable:
            self._lost("the daemon went away")
            raise

    def stream(self, call: Callable[[DaemonClient], AsyncIterator[T]]) -> AsyncIterator[T]:
        """A server stream through the live client: ``source.stream(lambda c: c.x.Logs(r))``."""
        return call(self.client)

    # ---- change notification -----------------------------------------------------------

    def _mark(self, *kinds: str) -> None:
        self._pending.update(kinds)
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(self._coalesce, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        kinds, self._pending = self._pending, set()
        for listener in list(self._listeners):
            try:
                listener(kinds)
            except Exception:  # a broken screen must not stop the data flowing
                log.exception("console listener failed")

    def flush_now(self) -> None:
        """Deliver pending changes immediately (tests: no waiting on the coalescing timer)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush()

    # ---- the connection loop -----------------------------------------------------------

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()

    def _disconnected(self, why: str) -> None:
        self.state.connected = False
        self.state.error = why
        self._connected_event.clear()
        self._mark("connection")

    async def _ensure_alive(self, client: DaemonClient) -> None:
        """Raise Unavailable when the daemon is gone (a stream ended or failed oddly)."""
        from servin.api.servin.v1 import system_pb2

        await client.system.Ping(system_pb2.PingRequest(), timeout=5)

    def _lost(self, why: str) -> None:
        if self.state.connected:
            self.state.connected = False
            self.state.error = why
            self._connected_event.clear()
            self._mark("connection")

    async def _run(self) -> None:
        delay = self._backoff[0]
        while not self._stopping:
            try:
                self._client = self._factory()
                await self._connect(self._client)
                delay = self._backoff[0]
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._stats_loop(self._client))
                    tg.create_task(self._events_loop(self._client))
                    tg.create_task(self._list_loop(self._client))
                    tg.create_task(self._info_loop(self._client))
            except* ServinError as group:
                self._disconnected(str(group.exceptions[0]))
            except* Exception as group:  # a bug: say it, keep the last data, try again
                log.error("console data source failed", exc_info=group.exceptions[0])
                self._disconnected(f"internal error: {group.exceptions[0]!r}")
            await self._close_client()
            if not self._stopping:  # (stop() may have been called meanwhile: then we are done)
                self.state.retry_in = delay
                self._mark("connection")
                self._wake.clear()
                await _wait(self._wake, delay)
                delay = min(delay * 2, self._backoff[1])

    async def _connect(self, client: DaemonClient) -> None:
        from servin.api.servin.v1 import system_pb2

        await client.system.Ping(system_pb2.PingRequest(), timeout=5)
        await self._refresh_containers(client)
        await self._refresh_images(client)
        self.state.connected = True
        self.state.ever_connected = True
        self.state.error = ""
        self.state.retry_in = 0.0
        self._connected_event.set()
        self._mark("connection", "containers", "images")

    async def _refresh_containers(self, client: DaemonClient) -> None:
        from servin.api.servin.v1 import containers_pb2

        reply = await client.containers.List(containers_pb2.ListContainersRequest(all=True))
        fresh = {c.id: c for c in reply.containers}
        if fresh != self.state.containers:
            self.state.containers = fresh
            for gone in set(self.state.history) - set(fresh):
                del self.state.history[gone]
            for stopped in [i for i in self.state.stats if i not in fresh]:
                del self.state.stats[stopped]
            self._mark("containers")

    async def _refresh_images(self, client: DaemonClient) -> None:
        from servin.api.servin.v1 import images_pb2

        try:
            reply = await client.images.List(images_pb2.ListImagesRequest())
        except Unavailable:
            raise
        except ServinError as exc:
            self.state.images_note = str(exc)
            self._mark("images")
            return
        images = list(reply.images)
        if images != self.state.images:
            self.state.images = images
            self._mark("images")

    async def _info_loop(self, client: DaemonClient) -> None:
        from servin.api.servin.v1 import system_pb2

        version_known = False  # asked once per connection: the daemon may have been upgraded
        while True:
            try:
                if not version_known:
                    self.state.version = await client.system.Version(system_pb2.VersionRequest())
                    version_known = True
                self._apply_info(await client.system.Info(system_pb2.InfoRequest()))
            except Unavailable:
                raise
            except ServinError as exc:  # an older daemon: the header shows less
                log.debug("System.Info failed: %s", exc)
                await asyncio.sleep(self._unsupported_retry)
                continue
            await asyncio.sleep(self._info_interval)

    def _apply_info(self, info: InfoResponse) -> None:
        reading = (info.cpu_busy_ns, info.cpu_total_ns)
        prev, self._cpu_reading = self._cpu_reading, reading
        if prev is not None and reading[1] > prev[1]:
            busy = max(0, reading[0] - prev[0])
            self.state.host_cpu_percent = min(100.0, busy * 100.0 / (reading[1] - prev[1]))
        elif not reading[1]:
            self.state.host_cpu_percent = None
        self.state.info = info
        self._mark("info")

    async def _list_loop(self, client: DaemonClient) -> None:
        images_due = self.clock() + 6 * self._list_interval
        while True:
            await _wait(self._list_wanted, self._list_interval)
            # A burst of events (a compose-style start of 50 containers) makes one refresh.
            await asyncio.sleep(0.05)
            self._list_wanted.clear()
            await self._refresh_containers(client)
            if self._images_wanted or self.clock() >= images_due:
                self._images_wanted = False
                images_due = self.clock() + 6 * self._list_interval
                await self._refresh_images(client)

    _images_wanted = False

    async def _stats_loop(self, client: DaemonClient) -> None:
        from servin.api.servin.v1 import containers_pb2

        request = containers_pb2.StatsRequest(stream=True, interval_ms=self._stats_interval_ms)
        while True:
            try:
                async for batch in client.containers.Stats(request):
                    self._apply_stats(batch)
            except Unavailable:
                raise
            except ServinError as exc:
                # Not supported (yet) by this daemon, or failing: say so, keep everything else.
                await self._ensure_alive(client)
                self.state.stats_note = f"live stats unavailable: {exc}"
                self._mark("stats")
                await asyncio.sleep(self._unsupported_retry)
                continue
            await self._ensure_alive(client)  # the stream ended: a daemon shutting down?
            await asyncio.sleep(1.0)

    def _apply_stats(self, batch: StatsBatch) -> None:
        self.state.stats_note = ""
        stats, history = self.state.stats, self.state.history
        seen = set()
        for s in batch.stats:
            seen.add(s.id)
            stats[s.id] = s
            metrics = history.get(s.id)
            if metrics is None:
                metrics = history[s.id] = Metrics()
            metrics.add(s)
        if len(seen) != len(stats):
            for gone in [i for i in stats if i not in seen]:
                del stats[gone]
        self._mark("stats")

    async def _events_loop(self, client: DaemonClient) -> None:
        from google.protobuf.timestamp_pb2 import Timestamp

        from servin.api.servin.v1 import system_pb2

        while True:
            since = self._last_event_time or (self.clock() - EVENTS_BACKLOG)
            stamp = Timestamp()
            stamp.FromNanoseconds(int(since * 1e9))
            try:
                async for ev in client.system.Events(system_pb2.EventsRequest(since=stamp)):
                    self._apply_event(ev)
            except Unavailable:
                raise
            except ServinError as exc:
                await self._ensure_alive(client)
                self.state.events_note = f"events unavailable: {exc}"
                self._mark("events")
                await asyncio.sleep(self._unsupported_retry)
                continue
            await self._ensure_alive(client)
            await asyncio.sleep(1.0)

    def _apply_event(self, ev: Event) -> None:
        t = ev.time.seconds + ev.time.nanos / 1e9
        if t and t <= self._last_event_time and self.state.events:
            return  # already seen before a reconnect
        self._last_event_time = max(self._last_event_time, t)
        self.state.events_note = ""
        self.state.events.append(ev)
        kinds = {"events"}
        if ev.type == "container":
            if ev.action == "destroy" and ev.id in self.state.containers:
                del self.state.containers[ev.id]
                self.state.stats.pop(ev.id, None)
                self.state.history.pop(ev.id, None)
                kinds.add("containers")
            self._list_wanted.set()
        elif ev.type == "image":
            self._images_wanted = True
            self._list_wanted.set()
        elif ev.type == "builder":  # servin build: shown on the Images screen while it runs
            attrs = dict(ev.attributes)
            if ev.action in ("start", "step"):
                step = attrs.get("step", "")
                self.state.builds[ev.id] = attrs.get("name", "") + (f": {step}" if step else "")
            else:
                self.state.builds.pop(ev.id, None)
            kinds.add("images")
        elif ev.type in ("volume", "network", "pod"):
            kinds.add(f"{ev.type}s")  # their screens reload (only while shown)
        self._mark(*kinds)


async def _wait(event: asyncio.Event, timeout: float) -> None:
    """Wait for ``event`` at most ``timeout`` seconds.

    asyncio.timeout rather than wait_for: wait_for wraps the wait in a second task, and on
    Python 3.11 cancelling it at the wrong moment can leave that task, and the cancel, stuck.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()


def client_factory(host: str | Target | None) -> ClientFactory:
    """A factory of real AsyncClients for ``host`` (a resolved Target, or a URL/None resolved
    by ``servin.client.hosts.resolve_target``)."""

    def make() -> DaemonClient:
        from servin.client.aio import AsyncClient

        return AsyncClient(host)

    return make
