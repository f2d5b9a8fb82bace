"""A fake daemon for the console's tests, fed by data recorded from a real one (record.py)
plus hand-written answers for calls that daemon did not implement yet (data/handwritten.json:
volumes, networks, an image pull's progress; see data/README.md).

``FakeDaemon`` holds the world (containers, images, logs, events, stats) and what the tests do
to it (``go_down()``, ``come_back()``, ``push_log()``); ``FakeDaemon.client()`` makes a
``FakeClient`` shaped like servin.client.AsyncClient: the same attributes and methods, taking
and returning the same servin.v1 messages, raising the same servin.errors.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from google.protobuf import json_format, symbol_database

from servin.api.servin.v1 import (  # also registers the message types
    containers_pb2,
    images_pb2,
    networks_pb2,
    pods_pb2,
    system_pb2,
    volumes_pb2,
)
from servin.client.errors import UNSUPPORTED, Unimplemented, unreachable
from servin.client.logs import chunk_of
from servin.errors import Conflict, NotFound

DATA = Path(__file__).parent / "data" / "daemon.json"
HANDWRITTEN = Path(__file__).parent / "data" / "handwritten.json"
HOST = "unix:///run/servin/servin.sock"


def _parse(item: dict[str, Any]) -> Any:
    cls = symbol_database.Default().GetSymbol(item["type"])
    return json_format.ParseDict(item["value"], cls())


class FakeDaemon:
    """The recorded world, mutable by the tests and by the fake's own calls."""

    def __init__(self, path: Path = DATA) -> None:
        doc = json.loads(path.read_text())
        self.now: float = doc["now"]
        self.unsupported: dict[str, str] = dict(doc["unsupported"])
        self.answers: dict[str, Any] = {}
        for key, value in doc["calls"].items():
            self.answers[key] = (
                [_parse(v) for v in value] if isinstance(value, list) else (_parse(value))
            )
        extra = json.loads(HANDWRITTEN.read_text()) if path == DATA else {"calls": {}}
        for key, value in extra["calls"].items():
            self.unsupported.pop(key, None)
            self.answers[key] = (
                [_parse(v) for v in value] if isinstance(value, list) else (_parse(value))
            )
        self.pull_pause: int = extra.get("pull_pause", 0)
        self.pull_gate = asyncio.Event()
        self.volumes = list(self.answers["Volumes.List"].volumes) if extra["calls"] else []
        self.networks = list(self.answers["Networks.List"].networks) if extra["calls"] else []
        self.containers: dict[str, Any] = {
            c.id: c for c in self.answers["Containers.List"].containers
        }
        self.images = list(self.answers["Images.List"].images)
        self.pods = list(self.answers["Pods.List"].pods) if extra["calls"] else []
        for pod in self.pods:  # the members know their pod, as the daemon's answers say
            for member in pod.container_ids:
                self.containers[member].pod_id = pod.id
                inspect = self.answers.get(f"Containers.Inspect/{member}")
                if inspect is not None:
                    inspect.pod_id = pod.id
        self.up = True
        self.calls: list[tuple[str, Any]] = []
        self.connections = 0
        self.info_calls = 0
        # When set, Stop waits for it: a container that ignores SIGTERM, seen mid-stop.
        self.stop_gate: asyncio.Event | None = None
        self._streams: list[asyncio.Queue[Any]] = []
        self._log_queues: dict[str, list[asyncio.Queue[Any]]] = {}
        self._event_queues: list[asyncio.Queue[Any]] = []
        self.stats_batches = list(self.answers.get("Containers.Stats", []))

    def client(self) -> FakeClient:
        """A new connection (the source makes one per connection attempt)."""
        self.connections += 1
        return FakeClient(self)

    def check(self) -> None:
        """Raise DaemonUnreachable when the daemon is down."""
        if not self.up:
            raise unreachable(HOST)

    def go_down(self) -> None:
        """The daemon dies: calls fail and open streams break."""
        self.up = False
        for q in self._streams:
            q.put_nowait(unreachable(HOST))

    def come_back(self) -> None:
        """The daemon is up again."""
        self.up = True

    def push_log(self, container_id: str, line: str, stream: int = 1, t: float = 0.0) -> None:
        """A new line from a container, to every open follow stream of its logs."""
        entry = containers_pb2.LogEntry(
            stream=stream, data=line.encode() + b"\n", container_id=container_id
        )
        entry.time.FromNanoseconds(int((t or self.now) * 1e9))
        for q in self._log_queues.get(container_id, []):
            q.put_nowait(chunk_of([entry]))

    def push_event(self, ev: Any) -> None:
        """A live event to every open events stream."""
        for q in self._event_queues:
            q.put_nowait(ev)

    def resolve(self, ref: str) -> Any:
        """A container by ID, ID prefix or name (NotFound otherwise)."""
        for c in self.containers.values():
            if ref in (c.id, c.name) or (len(ref) >= 3 and c.id.startswith(ref)):
                return c
        raise NotFound(f"No such container: {ref}")

    async def open_stream(
        self, items: list[Any], queue: asyncio.Queue[Any] | None = None, follow: bool = True
    ) -> AsyncIterator[Any]:
        """Yield ``items`` then (when following) whatever is queued, until the daemon dies."""
        self.check()
        q = queue or asyncio.Queue()
        self._streams.append(q)
        try:
            for item in items:
                yield item
            while follow:
                item = await q.get()
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self._streams.remove(q)


class _Service:
    def __init__(self, daemon: FakeDaemon, name: str) -> None:
        self.d = daemon
        self.name = name

    def _answer(self, method: str, key: str | None = None) -> Any:
        self.d.check()
        full = f"{self.name}.{method}"
        self.d.calls.append((full, key))
        if full in self.d.unsupported:
            raise Unimplemented(UNSUPPORTED)
        found = self.d.answers.get(f"{full}/{key}" if key else full)
        if found is None:
            raise NotFound(f"no recorded answer for {full} {key or ''}")
        return copy.deepcopy(found)


class FakeContainers(_Service):
    async def List(self, request: Any, **_: Any) -> Any:
        self._answer("List")
        items = [c for c in self.d.containers.values() if request.all or c.state == "running"]
        return containers_pb2.ListContainersResponse(containers=items)

    async def Inspect(self, request: Any, **_: Any) -> Any:
        return self._answer("Inspect", self.d.resolve(request.id).id)

    async def Top(self, request: Any, **_: Any) -> Any:
        c = self.d.resolve(request.id)
        if c.state != "running":
            raise Conflict(f"container {c.name} is not running")
        return self._answer("Top", c.id)

    def Logs(self, request: Any, **_: Any) -> AsyncIterator[Any]:
        c = self.d.resolve(request.id)
        entries = list(self.d.answers.get(f"Containers.Logs/{c.id}", []))
        if request.tail > 0:
            entries = entries[-request.tail :]
        if request.since.seconds:
            entries = [
                e for e in entries if e.time.ToNanoseconds() >= request.since.ToNanoseconds()
            ]
        q: asyncio.Queue[Any] = asyncio.Queue()
        if request.follow:
            self.d._log_queues.setdefault(c.id, []).append(q)
        # The daemon sends many entries per message: the backlog as one LogChunk here.
        return self.d.open_stream([chunk_of(entries)] if entries else [], q,
                                  follow=request.follow)  # fmt: skip

    def Stats(self, request: Any, **_: Any) -> AsyncIterator[Any]:
        self.d.check()
        if "Containers.Stats" in self.d.unsupported:
            raise Unimplemented(UNSUPPORTED)
        return self.d.open_stream(list(self.d.stats_batches))

    async def _set_state(self, method: str, request: Any, state: str, action: str) -> Any:
        self.d.check()
        self.d.calls.append((f"Containers.{method}", request.id))
        if f"Containers.{method}" in self.d.unsupported:
            raise Unimplemented(UNSUPPORTED)
        c = self.d.resolve(request.id)
        c.state = state
        if state == "exited":
            c.exit_code = 137 if method == "Kill" else 0
        ev = system_pb2.Event(
            type="container", action=action, id=c.id, attributes={"name": c.name, "image": c.image}
        )
        ev.time.FromNanoseconds(int(self.d.now * 1e9) + len(self.d.calls))
        self.d.push_event(ev)

    async def Start(self, request: Any, **_: Any) -> Any:
        await self._set_state("Start", request, "running", "start")
        return containers_pb2.StartContainerResponse()

    async def Stop(self, request: Any, **_: Any) -> Any:
        if self.d.stop_gate is not None:
            self.d.calls.append(("Containers.Stop:waiting", request.id))
            await self.d.stop_gate.wait()
        await self._set_state("Stop", request, "exited", "die")
        return containers_pb2.StopContainerResponse()

    async def Restart(self, request: Any, **_: Any) -> Any:
        await self._set_state("Restart", request, "running", "restart")
        return containers_pb2.RestartContainerResponse()

    async def Kill(self, request: Any, **_: Any) -> Any:
        await self._set_state("Kill", request, "exited", "die")
        return containers_pb2.KillContainerResponse()

    async def Pause(self, request: Any, **_: Any) -> Any:
        await self._set_state("Pause", request, "paused", "pause")
        return containers_pb2.PauseContainerResponse()

    async def Unpause(self, request: Any, **_: Any) -> Any:
        await self._set_state("Unpause", request, "running", "unpause")
        return containers_pb2.UnpauseContainerResponse()

    async def Remove(self, request: Any, **_: Any) -> Any:
        self.d.check()
        self.d.calls.append(("Containers.Remove", request.id))
        c = self.d.resolve(request.id)
        if c.state == "running" and not request.force:
            raise Conflict(f"cannot remove running container {c.name}: stop it first")
        del self.d.containers[c.id]
        ev = system_pb2.Event(
            type="container", action="destroy", id=c.id, attributes={"name": c.name}
        )
        ev.time.FromNanoseconds(int(self.d.now * 1e9) + len(self.d.calls))
        self.d.push_event(ev)
        return containers_pb2.RemoveContainerResponse()


class FakeImages(_Service):
    async def List(self, request: Any, **_: Any) -> Any:
        self._answer("List")
        return images_pb2.ListImagesResponse(images=self.d.images)

    async def Inspect(self, request: Any, **_: Any) -> Any:
        return self._answer("Inspect", self._id(request.reference))

    async def History(self, request: Any, **_: Any) -> Any:
        return self._answer("History", self._id(request.reference))

    async def Remove(self, request: Any, **_: Any) -> Any:
        ident = self._id(request.reference)
        self.d.calls.append(("Images.Remove", ident))
        self.d.calls.append(("Images.Remove:reference", request.reference))
        used = [c for c in self.d.containers.values() if c.image_id == ident]
        if used and not request.force:
            raise Conflict(f"image is being used by container {used[0].name}")
        self.d.images = [i for i in self.d.images if i.id != ident]
        return images_pb2.RemoveImageResponse(deleted=[ident])

    def _id(self, ref: str) -> str:
        self.d.check()
        for img in self.d.images:
            if ref == img.id or ref in img.repo_tags or img.id.startswith("sha256:" + ref):
                return img.id
        raise NotFound(f"No such image: {ref}")

    def Pull(self, request: Any, **_: Any) -> AsyncIterator[Any]:
        self.d.check()
        self.d.calls.append(("Images.Pull", request.reference))
        if "Images.Pull" in self.d.unsupported:
            raise Unimplemented(UNSUPPORTED)
        return self._pull()

    async def _pull(self) -> AsyncIterator[Any]:
        """The recorded progress; it stops at ``pull_pause`` until ``pull_gate`` opens."""
        for i, msg in enumerate(self.d.answers["Images.Pull"]):
            if i == self.d.pull_pause:
                await self.d.pull_gate.wait()
            self.d.check()
            yield copy.deepcopy(msg)

    async def Prune(self, request: Any, **_: Any) -> Any:
        self.d.check()
        self.d.calls.append(("Images.Prune", None))
        used = {c.image_id for c in self.d.containers.values()}
        gone = [i for i in self.d.images if not i.repo_tags and i.id not in used]
        self.d.images = [i for i in self.d.images if i not in gone]
        return images_pb2.PruneImagesResponse(
            deleted=[i.id for i in gone], space_reclaimed=sum(i.size for i in gone)
        )


class FakeVolumes(_Service):
    """Volumes over the hand-written list: list, inspect, create, remove, prune."""

    def _find(self, name: str) -> Any:
        self.d.check()
        for v in self.d.volumes:
            if v.name == name:
                return v
        raise NotFound(f"no such volume: {name}")

    def _gate(self, method: str, key: str | None = None) -> None:
        self.d.check()
        self.d.calls.append((f"Volumes.{method}", key))
        if f"Volumes.{method}" in self.d.unsupported:
            raise Unimplemented(UNSUPPORTED)

    async def List(self, request: Any, **_: Any) -> Any:
        self._gate("List")
        return volumes_pb2.ListVolumesResponse(volumes=self.d.volumes)

    async def Inspect(self, request: Any, **_: Any) -> Any:
        self._gate("Inspect", request.name)
        return copy.deepcopy(self._find(request.name))

    async def Create(self, request: Any, **_: Any) -> Any:
        self._gate("Create", request.name)
        if any(v.name == request.name for v in self.d.volumes):
            raise Conflict(f"volume {request.name} already exists")
        v = volumes_pb2.Volume(
            name=request.name,
            driver=request.driver or "local",
            mountpoint=f"/var/lib/servin/volumes/{request.name}/_data",
            labels=request.labels,
            options=request.options,
            scope="local",
        )
        v.created.FromSeconds(int(self.d.now))
        self.d.volumes.append(v)
        return v

    async def Remove(self, request: Any, **_: Any) -> Any:
        self._gate("Remove", request.name)
        v = self._find(request.name)
        if v.ref_count and not request.force:
            raise Conflict(f"volume {v.name} is in use by {v.ref_count} container(s)")
        self.d.volumes.remove(v)
        return volumes_pb2.RemoveVolumeResponse()

    async def Prune(self, request: Any, **_: Any) -> Any:
        self._gate("Prune")
        gone = [v for v in self.d.volumes if not v.ref_count and (request.all or v.anonymous)]
        self.d.volumes = [v for v in self.d.volumes if v not in gone]
        return volumes_pb2.PruneVolumesResponse(
            deleted=[v.name for v in gone], space_reclaimed=sum(max(0, v.size) for v in gone)
        )


class FakeNetworks(_Service):
    """Networks over the hand-written list: list, inspect, create, remove, prune."""

    BUILTIN = ("servin", "host", "none")

    def _find(self, ref: str) -> Any:
        self.d.check()
        for n in self.d.networks:
            if ref in (n.id, n.name) or (len(ref) >= 3 and n.id.startswith(ref)):
                return n
        raise NotFound(f"no such network: {ref}")

    def _gate(self, method: str, key: str | None = None) -> None:
        self.d.check()
        self.d.calls.append((f"Networks.{method}", key))
        if f"Networks.{method}" in self.d.unsupported:
            raise Unimplemented(UNSUPPORTED)

    async def List(self, request: Any, **_: Any) -> Any:
        self._gate("List")
        return networks_pb2.ListNetworksResponse(networks=self.d.networks)

    async def Inspect(self, request: Any, **_: Any) -> Any:
        self._gate("Inspect", request.id)
        return copy.deepcopy(self._find(request.id))

    async def Create(self, request: Any, **_: Any) -> Any:
        import hashlib

        self._gate("Create", request.name)
        if any(n.name == request.name for n in self.d.networks):
            raise Conflict(f"network {request.name} already exists")
        ident = hashlib.sha256(request.name.encode()).hexdigest()
        n = networks_pb2.Network(
            id=ident,
            name=request.name,
            driver=request.driver or "bridge",
            ipam=request.ipam,
            internal=request.internal,
            labels=request.labels,
            options=request.options,
            bridge=f"sv-{ident[:12]}",
            scope="local",
        )
        n.created.FromSeconds(int(self.d.now))
        self.d.networks.append(n)
        return n

    async def Remove(self, request: Any, **_: Any) -> Any:
        self._gate("Remove", request.id)
        n = self._find(request.id)
        if n.name in self.BUILTIN:
            raise Conflict(f"{n.name} is a pre-defined network and cannot be removed")
        if n.endpoints:
            raise Conflict(f"network {n.name} has active endpoints")
        self.d.networks.remove(n)
        return networks_pb2.RemoveNetworkResponse()

    async def Prune(self, request: Any, **_: Any) -> Any:
        self._gate("Prune")
        gone = [n for n in self.d.networks if not n.endpoints and n.name not in self.BUILTIN]
        self.d.networks = [n for n in self.d.networks if n not in gone]
        return networks_pb2.PruneNetworksResponse(deleted=[n.name for n in gone])


class FakeSystem(_Service):
    async def Ping(self, request: Any, **_: Any) -> Any:
        self.d.check()
        return system_pb2.PingResponse(api_version="1")

    async def Info(self, request: Any, **_: Any) -> Any:
        """The recorded answer with the counts of the fake's world (as the daemon counts
        its own) and host figures that advance by a fixed step per call: 25% busy."""
        info = self._answer("Info")
        states = [c.state for c in self.d.containers.values()]
        info.containers = len(states)
        info.containers_running = states.count("running") + states.count("restarting")
        info.containers_paused = states.count("paused")
        info.containers_stopped = len(states) - info.containers_running - info.containers_paused
        info.images = len(self.d.images)
        info.volumes = len(self.d.volumes)
        info.networks = len(self.d.networks)
        self.d.info_calls += 1
        step = 10_000_000_000  # two CPUs for five seconds
        info.cpu_total_ns = 10**15 + self.d.info_calls * step
        info.cpu_busy_ns = 10**14 + self.d.info_calls * step // 4
        info.mem_available = info.mem_total * 3 // 4
        info.load_average[:] = [0.52, 0.41, 0.3]
        return info

    async def Version(self, request: Any, **_: Any) -> Any:
        return self._answer("Version")

    async def DiskUsage(self, request: Any, **_: Any) -> Any:
        return self._answer("DiskUsage")

    def Events(self, request: Any, **_: Any) -> AsyncIterator[Any]:
        self.d.check()
        since = request.since.ToNanoseconds()
        past = [e for e in self.d.answers["System.Events"] if e.time.ToNanoseconds() >= since]
        q: asyncio.Queue[Any] = asyncio.Queue()
        self.d._event_queues.append(q)
        return self.d.open_stream(past, q)


class FakePods(_Service):
    """Pods over the hand-written answer: the actions change the pod's and its members'
    states as the daemon does."""

    def _find(self, ref: str) -> Any:
        for p in self.d.pods:
            if ref in (p.id, p.name) or (len(ref) >= 3 and p.id.startswith(ref)):
                return p
        raise NotFound(f"no such pod: {ref}")

    def _gate(self, method: str, key: str | None = None) -> None:
        self.d.check()
        self.d.calls.append((f"Pods.{method}", key))
        if f"Pods.{method}" in self.d.unsupported:
            raise Unimplemented(UNSUPPORTED)

    def _set(self, p: Any, status: str) -> Any:
        for c in p.containers:
            c.status = status
            if c.id in self.d.containers:
                self.d.containers[c.id].state = status
        p.state = {"running": "Running", "paused": "Paused", "exited": "Exited"}[status]
        return copy.deepcopy(p)

    async def List(self, request: Any, **_: Any) -> Any:
        self._gate("List")
        return pods_pb2.ListPodsResponse(pods=self.d.pods)

    async def Inspect(self, request: Any, **_: Any) -> Any:
        self._gate("Inspect", request.id)
        return copy.deepcopy(self._find(request.id))

    async def Start(self, request: Any, **_: Any) -> Any:
        self._gate("Start", request.id)
        return self._set(self._find(request.id), "running")

    async def Restart(self, request: Any, **_: Any) -> Any:
        self._gate("Restart", request.id)
        return self._set(self._find(request.id), "running")

    async def Stop(self, request: Any, **_: Any) -> Any:
        self._gate("Stop", request.id)
        return self._set(self._find(request.id), "exited")

    async def Kill(self, request: Any, **_: Any) -> Any:
        self._gate("Kill", request.id)
        return self._set(self._find(request.id), "exited")

    async def Pause(self, request: Any, **_: Any) -> Any:
        self._gate("Pause", request.id)
        return self._set(self._find(request.id), "paused")

    async def Unpause(self, request: Any, **_: Any) -> Any:
        self._gate("Unpause", request.id)
        return self._set(self._find(request.id), "running")

    async def Remove(self, request: Any, **_: Any) -> Any:
        self._gate("Remove", request.id)
        p = self._find(request.id)
        self.d.pods.remove(p)
        for c in p.containers:
            self.d.containers.pop(c.id, None)
        return pods_pb2.RemovePodResponse(id=p.id)

    async def Create(self, request: Any, **_: Any) -> Any:
        import hashlib

        self._gate("Create", request.name)
        if any(p.name == request.name for p in self.d.pods):
            raise Conflict(f"pod name {request.name!r} is in use")
        ident = hashlib.sha256(f"pod {request.name}".encode()).hexdigest()
        infra = hashlib.sha256(f"infra {request.name}".encode()).hexdigest()
        p = pods_pb2.Pod(id=ident, name=request.name, state="Created", spec=request.spec,
                         infra_container_id=infra,
                         containers=[pods_pb2.PodContainer(id=infra, name=f"{ident[:12]}-infra",
                                                           status="created", infra=True)])
        p.created.FromSeconds(int(self.d.now))
        self.d.pods.insert(0, p)
        return copy.deepcopy(p)

    async def Prune(self, request: Any, **_: Any) -> Any:
        self._gate("Prune")
        gone = [p for p in self.d.pods if p.state not in ("Running", "Paused", "Degraded")]
        for p in gone:
            self.d.pods.remove(p)
        return pods_pb2.PrunePodsResponse(deleted=[p.id for p in gone])


class FakeClient:
    """Shaped like servin.client.AsyncClient."""

    def __init__(self, daemon: FakeDaemon) -> None:
        self.url = HOST
        self.containers = FakeContainers(daemon, "Containers")
        self.images = FakeImages(daemon, "Images")
        self.system = FakeSystem(daemon, "System")
        self.volumes = FakeVolumes(daemon, "Volumes")
        self.networks = FakeNetworks(daemon, "Networks")
        self.pods = FakePods(daemon, "Pods")
        self.closed = False

    async def close(self) -> None:
        self.closed = True
