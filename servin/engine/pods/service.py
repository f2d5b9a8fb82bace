"""Pods for every front door: create, start, stop, kill, restart, pause, remove, list, top,
stats (``PodService``, in ``CoreAPI.pods``).

A pod is a record (``PodStore``), a cgroup (``<cgroup_parent or /servin>/pod-<id>``, holding
the pod-level limits) and an infra container: ``catatonit -P`` run from an empty root
filesystem by the same runner, monitor and supervisor as every container, so it survives
daemon restarts and is adopted by recovery like any other. Members are ordinary containers
whose ``CreateRequest.pod_id`` names the pod (``members.py`` fills in the namespaces).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from servin.engine import limits
from servin.engine.containers.model import (
    ACTIVE,
    PAUSED,
    RUNNING,
    Container,
    ContainerConfig,
    CreateRequest,
    EndpointConfig,
    HostConfig,
    Mount,
    NetworkingConfig,
)
from servin.engine.containers.names import generate_name, validate_name
from servin.engine.containers.runner import DEFAULT_CGROUP_PARENT
from servin.engine.containers.service import ContainerService, parse_signal
from servin.engine.containers.stats import ContainerSample, StatsSampler, cgroup_path_of
from servin.engine.containers.store import ContainerStore
from servin.engine.containers.top import TopResult, top
from servin.engine.crashpoints import crashpoint
from servin.engine.events import EventBus
from servin.engine.linux.cgroups import detect_driver
from servin.engine.networks.cni.podnet import PodNetworks
from servin.engine.pods.cgroups import PodCgroups
from servin.engine.pods.model import (
    INFRA_LABEL,
    INFRA_TARGET,
    POD_STATUSES,
    Pod,
    PodConfig,
    PodCreateRequest,
    pod_status,
)
from servin.engine.pods.store import PodStore
from servin.engine.semantics import filters as docker_filters
from servin.errors import Conflict, InvalidArgument, NotFound, ServinError

log = logging.getLogger(__name__)

# The infra's program, in the order tried: Debian's catatonit (podman's pause), where
# podman keeps it.
INFRA_BINARIES = ("/usr/bin/catatonit", "/usr/libexec/podman/catatonit")
POD_FILTER_KEYS = frozenset({"id", "name", "label", "label!", "status", "until", "ctr-names",
                             "ctr-ids", "ctr-number"})
MIN_POD_MEMORY = 6 * 1024 * 1024  # docker's and podman's floor for a memory limit
_NETNS_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/")


@dataclass(frozen=True)
class PodView:
    """A pod with its containers, as list and inspect answer."""

    pod: Pod
    status: str  # Created, Running, Paused, Exited, Degraded, Stopped
    infra: Container | None
    members: list[Container]  # the containers other than the infra, oldest first
    addresses: dict[str, str] = field(default_factory=dict)  # the infra's network -> address

    @property
    def containers(self) -> list[Container]:
        """The infra first, then the members."""
        return ([self.infra] if self.infra is not None else []) + self.members


@dataclass(frozen=True)
class PodStats:
    """A pod's figures from one stats pass: the sums over its running containers."""

    pod: Pod
    cpu_percent: float
    memory_usage: int
    memory_limit: int  # the pod's limit, else the largest member's
    net_rx: int
    net_tx: int
    block_read: int
    block_write: int
    pids: int
    samples: list[ContainerSample] = field(default_factory=list)  # per container


def find_infra_binary(configured: str = "") -> str:
    """The pause program the infra runs; InvalidArgument naming the package when none."""
    for candidate in ((configured,) if configured else INFRA_BINARIES):
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise InvalidArgument("pods need catatonit (Debian's catatonit package) for their infra "
                          "process: install it")


class PodService:
    """Pods for every front door (every method async)."""

    def __init__(self, store: PodStore, container_store: ContainerStore,
                 containers: ContainerService, cgroups: PodCgroups, stats: StatsSampler,
                 events: EventBus, infra_binary: str = "",
                 pod_networks: PodNetworks | None = None) -> None:
        self.store = store
        # The CNI networks the CRI gives its pods: released whenever such a pod goes.
        self.pod_networks = pod_networks
        self.container_store = container_store
        self.containers = containers
        self.cgroups = cgroups
        self.stats_sampler = stats
        self.events = events
        self.infra_binary = infra_binary
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, pod_id: str) -> asyncio.Lock:
        return self._locks.setdefault(pod_id, asyncio.Lock())

    # -- lookups ---------------------------------------------------------------------------

    async def get(self, ref: str) -> Pod:
        """A pod by ID, name or unique ID prefix."""
        return await asyncio.to_thread(self.store.resolve, ref)

    def _view(self, pod: Pod, containers: builtins.list[Container] | None = None) -> PodView:
        found = containers if containers is not None else self.container_store.in_pod(pod.id)
        found = sorted(found, key=lambda c: c.created_ns)
        infra = next((c for c in found if c.id == pod.infra_id), None)
        members = [c for c in found if c.id != pod.infra_id]
        addresses = {}
        if infra is not None:
            addresses = {n.name: ep.address
                         for n, ep in self.containers.networks.networks_of(infra)}
        return PodView(pod=pod, status=pod_status(found), infra=infra, members=members,
                       addresses=addresses)

    async def inspect(self, ref: str) -> PodView:
        """A pod with its infra and members."""
        pod = await self.get(ref)
        return await asyncio.to_thread(self._view, pod)

    async def list(self, filters: docker_filters.Filters | None = None
                   ) -> builtins.list[PodView]:
        """Pods newest first, those ``filters`` select (podman's keys: id, name, label,
        label!, status, until, ctr-names, ctr-ids, ctr-number)."""
        wanted = docker_filters.check(filters or {}, POD_FILTER_KEYS)
        docker_filters.check_values(
            {"status": [v.capitalize() for v in wanted.get("status", [])]}, "status",
            POD_STATUSES)
        for value in wanted.get("ctr-number", []):
            if not value.isdigit():
                raise InvalidArgument(f"invalid filter 'ctr-number={value}'")
        return await asyncio.to_thread(self._list, wanted)

    def _list(self, filters: docker_filters.Filters) -> builtins.list[PodView]:
        by_pod: dict[str, builtins.list[Container]] = {}
        # From the in-memory view (read-only snapshots): the CRI's ListPodSandbox comes every
        # second and decodes no container record.
        for entry in self.container_store.entries():
            c = entry.container
            if c.pod_id:
                by_pod.setdefault(c.pod_id, []).append(c)
        out = []
        for pod in self.store.list():
            if pod.creating or pod.removing:
                continue
            view = self._view(pod, by_pod.get(pod.id, []))
            if _matches(view, filters):
                out.append(view)
        return out

    # -- create ----------------------------------------------------------------------------

    async def create(self, request: PodCreateRequest) -> PodView:
        """Create a pod: its record, cgroup and infra container (created, not started).
        Every setting is checked first; a failure leaves nothing behind."""
        config = msgspec.structs.replace(request.config)
        _check_config(config)
        binary = find_infra_binary(self.infra_binary)
        if request.name:
            name = validate_name(request.name, "pod")
        else:
            name = generate_name(await asyncio.to_thread(self.store.names))
        pod_id = secrets.token_hex(32)
        parent = config.cgroup_parent.rstrip("/") or DEFAULT_CGROUP_PARENT
        pod = Pod(id=pod_id, name=name, created_ns=time.time_ns(), config=config,
                  cgroup_path=f"{parent}/pod-{pod_id}", creating=True)
        # Recorded first, marked: a crash before the pod is whole is undone at start-up.
        await asyncio.to_thread(self.store.add, pod)
        try:
            crashpoint("pod.create.after-record")
            await asyncio.to_thread(self.cgroups.ensure, pod)
            created = await self.containers.create_infra(self._infra_request(pod, binary))
            crashpoint("pod.create.after-infra")
            pod.infra_id = created.container.id
            pod.creating = False
            await asyncio.to_thread(self.store.save_state, pod)
        except BaseException:
            await self._discard(pod)
            raise
        self.events.publish("pod", "create", pod.id, name=pod.name)
        return await asyncio.to_thread(self._view, pod)

    def _infra_request(self, pod: Pod, binary: str) -> CreateRequest:
        config = pod.config
        network = config.network_mode or "bridge"
        if config.netns_path:
            network = f"ns:{config.netns_path}"
        endpoints: dict[str, EndpointConfig] = {}
        if config.aliases:
            endpoints[network] = EndpointConfig(aliases=list(config.aliases))
        return CreateRequest(
            name=f"{pod.short_id}-infra",
            config=ContainerConfig(
                cmd=[INFRA_TARGET, "-P"], entrypoint=[], hostname=pod.hostname,
                labels={INFRA_LABEL: pod.id},
            ),
            host_config=HostConfig(
                network_mode=network,
                port_bindings=list(config.port_bindings),
                ipc_mode="host" if config.ipc_mode == "host" else "shareable",
                uts_mode="host" if network == "host" else "",
                cgroup_parent=pod.cgroup_path,
                dns=list(config.dns), dns_search=list(config.dns_search),
                dns_options=list(config.dns_options), extra_hosts=list(config.extra_hosts),
                sysctls=dict(config.sysctls),
                mounts=[Mount(type="bind", source=binary, target=INFRA_TARGET,
                              read_only=True)],
                readonly_rootfs=True,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                runtime=config.runtime,
                annotations=dict(config.annotations),
            ),
            networking=NetworkingConfig(endpoints=endpoints),
            pod_id=pod.id,
        )

    async def _discard(self, pod: Pod) -> None:
        """Undo a pod: its containers, cgroup and record (for a failed create or a
        removal)."""
        pod.removing = True
        with contextlib.suppress(NotFound):
            await asyncio.to_thread(self.store.save_state, pod)
        crashpoint("pod.rm.after-mark")
        # Members first, the infra last (the members are in its namespaces).
        found = await asyncio.to_thread(self.container_store.in_pod, pod.id)
        for c in sorted(found, key=lambda c: c.id == pod.infra_id):
            with contextlib.suppress(NotFound):
                await self.containers.remove(c.id, force=True)
            crashpoint("pod.rm.after-container")
        await self._release_network(pod)
        await asyncio.to_thread(self.cgroups.remove, pod)
        await asyncio.to_thread(self.store.delete, pod.id)
        self._locks.pop(pod.id, None)

    async def _release_network(self, pod: Pod) -> None:
        """DEL the pod's CNI network and unpin its netns when the pod networks made it (what
        fails is logged: the next start's repair retries it)."""
        key = self.cni_network_of(pod)
        if not key or self.pod_networks is None:
            return
        try:
            await self.pod_networks.teardown(key)
        except (ServinError, OSError) as exc:
            log.warning("cannot release the CNI network of a removed pod",
                        extra={"pod": pod.id, "error": str(exc)})

    def cni_network_of(self, pod: Pod) -> str:
        """The key of the pod's CNI network ('' when its netns is not the pod networks')."""
        path = pod.config.netns_path
        if not path or self.pod_networks is None:
            return ""
        netns = Path(path)
        return netns.name if netns.parent == self.pod_networks.netns_dir else ""

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, ref: str) -> PodView:
        """Start the infra, then every member not running (oldest first)."""
        pod = await self.get(ref)
        async with self._lock(pod.id):
            view = await asyncio.to_thread(self._view, pod)
            if view.infra is None:
                raise Conflict(f"pod {pod.name} has no infra container")
            await asyncio.to_thread(self.cgroups.ensure, pod)
            await self.containers.start(view.infra.id)
            crashpoint("pod.start.after-infra")
            errors = []
            for c in view.members:
                if c.state.status in (RUNNING, PAUSED):
                    continue
                try:
                    await self.containers.start(c.id)
                except ServinError as exc:
                    errors.append(f"{c.name}: {exc}")
            pod.started_ns = time.time_ns()
            await asyncio.to_thread(self.store.save_state, pod)
        self.events.publish("pod", "start", pod.id, name=pod.name)
        if errors:
            raise Conflict(f"pod {pod.name} started, but not every container: "
                           + "; ".join(errors))
        return await asyncio.to_thread(self._view, pod)

    async def stop(self, ref: str, timeout: int | None = None) -> PodView:
        """Stop the members (all at once, each with its stop signal and ``timeout``), then
        the infra."""
        pod = await self.get(ref)
        async with self._lock(pod.id):
            view = await asyncio.to_thread(self._view, pod)
            await asyncio.gather(*(self.containers.stop(c.id, timeout)
                                   for c in view.members if c.state.running))
            if view.infra is not None and view.infra.state.running:
                await self.containers.stop(view.infra.id, 0)
            pod.stopped_ns = time.time_ns()
            await asyncio.to_thread(self.store.save_state, pod)
        self.events.publish("pod", "stop", pod.id, name=pod.name)
        return await asyncio.to_thread(self._view, pod)

    async def restart(self, ref: str, timeout: int | None = None) -> PodView:
        """Stop and start again."""
        pod = await self.get(ref)
        await self.stop(pod.id, timeout)
        view = await self.start(pod.id)
        self.events.publish("pod", "restart", pod.id, name=pod.name)
        return view

    async def kill(self, ref: str, signal: str | int = "KILL") -> PodView:
        """Send a signal to every running container of the pod (members first)."""
        number = parse_signal(signal)
        pod = await self.get(ref)
        view = await asyncio.to_thread(self._view, pod)
        infra = [view.infra] if view.infra is not None else []
        running = [c for c in [*view.members, *infra] if c.state.status in (RUNNING, PAUSED)]
        if not running:
            raise Conflict(f"pod {pod.name} has no running container")
        for c in running:
            with contextlib.suppress(Conflict):
                await self.containers.kill(c.id, number)
        self.events.publish("pod", "kill", pod.id, name=pod.name, signal=str(number))
        return await asyncio.to_thread(self._view, pod)

    async def pause(self, ref: str) -> PodView:
        """Freeze every running container of the pod."""
        return await self._each_running(ref, "pause", RUNNING)

    async def unpause(self, ref: str) -> PodView:
        """Thaw every paused container of the pod."""
        return await self._each_running(ref, "unpause", PAUSED)

    async def _each_running(self, ref: str, action: str, status: str) -> PodView:
        pod = await self.get(ref)
        async with self._lock(pod.id):
            view = await asyncio.to_thread(self._view, pod)
            chosen = [c for c in view.containers if c.state.status == status]
            if not chosen:
                raise Conflict(f"pod {pod.name} has no {status} container")
            for c in chosen:
                await getattr(self.containers, action)(c.id)
        self.events.publish("pod", action, pod.id, name=pod.name)
        return await asyncio.to_thread(self._view, pod)

    # -- remove ----------------------------------------------------------------------------

    async def remove(self, ref: str, *, force: bool = False) -> str:
        """Remove a pod with its containers, cgroup and record; running containers only with
        ``force`` (they are killed). The removed pod's ID."""
        pod = await self.get(ref)
        async with self._lock(pod.id):
            view = await asyncio.to_thread(self._view, pod)
            running = [c.name for c in view.members if c.state.status in ACTIVE]
            if running and not force:
                raise Conflict(f"pod {pod.name} has running containers ({', '.join(running)}):"
                               " stop them or use force")
            # A paused or running infra alone is no reason to refuse (podman stops it).
            await self._discard(pod)
        self.events.publish("pod", "remove", pod.id, name=pod.name)
        return pod.id

    async def prune(self) -> builtins.list[str]:
        """Remove every pod with no running container; the IDs removed."""
        removed = []
        for view in await self.list():
            if any(c.state.status in ACTIVE for c in view.containers):
                continue
            with contextlib.suppress(ServinError):
                removed.append(await self.remove(view.pod.id))
        return removed

    # -- queries over the members ----------------------------------------------------------

    async def top(self, ref: str, ps_args: builtins.list[str]) -> TopResult:
        """The processes of every running container of the pod, as ``ps`` shows them."""
        pod = await self.get(ref)
        view = await asyncio.to_thread(self._view, pod)
        running = [c for c in view.containers if c.state.running and c.state.pid]
        if not running:
            raise Conflict(f"pod {pod.name} is not running")
        return await asyncio.to_thread(self._top, running, list(ps_args))

    def _top(self, running: builtins.list[Container], ps_args: builtins.list[str]
             ) -> TopResult:
        driver = detect_driver()
        pids: builtins.list[int] = []
        for c in running:
            config = self.containers.monitors.paths(c.id).bundle_config
            with contextlib.suppress(ServinError, OSError):
                pids.extend(driver.open(cgroup_path_of(config, c.id)).pids())
        return top(pids, ps_args)

    async def stats(self, refs: builtins.list[str] | None = None) -> builtins.list[PodStats]:
        """One pass of figures per pod (``refs``: those pods; else every pod)."""
        pods = ([await self.get(r) for r in refs] if refs
                else [v.pod for v in await self.list()])
        snapshot = await self.stats_sampler.snapshot()
        out = []
        for pod in pods:
            members = await asyncio.to_thread(self.container_store.in_pod, pod.id)
            samples = [snapshot.samples[c.id] for c in sorted(members, key=lambda c: c.created_ns)
                       if c.id in snapshot.samples]
            limit = pod.config.resources.memory or max((s.memory_limit for s in samples),
                                                       default=0)
            out.append(PodStats(
                pod=pod,
                cpu_percent=sum(s.cpu_percent for s in samples),
                memory_usage=sum(s.memory_usage for s in samples),
                memory_limit=limit,
                # One network namespace: every member sees the same counters.
                net_rx=samples[0].net_rx if samples else 0,
                net_tx=samples[0].net_tx if samples else 0,
                block_read=sum(s.block_read for s in samples),
                block_write=sum(s.block_write for s in samples),
                pids=sum(s.pids for s in samples),
                samples=samples,
            ))
        return out

    # -- daemon start ----------------------------------------------------------------------

    async def recover(self) -> None:
        """At daemon start (after the containers' recovery): finish the creates and removals
        a crash interrupted, and give running pods their cgroup limits back."""
        for pod in await asyncio.to_thread(self.store.list):
            if pod.creating or pod.removing:
                log.warning("finishing the removal of a pod a crash left half made or half "
                            "removed", extra={"pod": pod.id})
                await self._discard(pod)


def _check_config(config: PodConfig) -> None:
    """Refuse what a pod cannot be made with (InvalidArgument, one line)."""
    limits.check_labels(dict(config.labels))
    limits.check_labels(dict(config.annotations), "annotations")
    mode = config.network_mode
    if mode.startswith(("container:", "ns:")):
        raise InvalidArgument(f"invalid pod network mode {mode!r}: a pod holds its own network "
                              "namespace")
    if config.netns_path:
        if mode not in ("", "none"):
            raise InvalidArgument("a pod given a network namespace path has network mode none")
        path = config.netns_path
        if not os.path.isabs(path) or not set(path) <= _NETNS_CHARS:
            raise InvalidArgument(f"invalid network namespace path {path!r}")
        if not Path(path).exists():
            raise InvalidArgument(f"no network namespace at {path!r}")
    if mode in ("host", "none") or config.netns_path:
        if config.port_bindings:
            raise InvalidArgument(f"a pod with network mode {mode or 'none'} cannot publish "
                                  "ports")
        if config.aliases:
            raise InvalidArgument("network aliases need a user network")
    if config.ipc_mode not in ("", "host"):
        raise InvalidArgument(f"invalid pod IPC mode {config.ipc_mode!r} (\"\" or host)")
    if config.hostname:
        validate_hostname(config.hostname)
    res = config.resources
    if res.memory and res.memory < MIN_POD_MEMORY:
        raise InvalidArgument("minimum memory limit allowed is 6MB")
    if res.memory < 0 or res.nano_cpus < 0:
        raise InvalidArgument("pod limits cannot be negative")
    cpus = os.cpu_count() or 1
    if res.nano_cpus > cpus * 10**9:
        raise InvalidArgument(f"range of CPUs is from 0.01 to {cpus}.00, as there are only "
                              f"{cpus} CPUs available")
    if res.nano_cpus and res.nano_cpus < 10**7:
        raise InvalidArgument(f"range of CPUs is from 0.01 to {cpus}.00")
    if config.cgroup_parent:
        parts = config.cgroup_parent.strip("/").split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise InvalidArgument(f"invalid cgroup parent {config.cgroup_parent!r}")


def validate_hostname(name: str) -> None:
    """A hostname of letters, digits, dots and dashes, at most 64 characters."""
    ok = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
    if len(name) > 64 or not set(name) <= ok or name.startswith(("-", ".")):
        raise InvalidArgument(f"invalid hostname {name!r}")


def _matches(view: PodView, filters: docker_filters.Filters) -> bool:
    pod = view.pod
    if "id" in filters and not any(pod.id.startswith(v) for v in filters["id"]):
        return False
    if "name" in filters and not docker_filters.match(filters["name"], pod.name):
        return False
    if not docker_filters.labels_ok(pod.config.labels, filters):
        return False
    if "status" in filters and view.status.lower() not in {v.lower() for v in filters["status"]}:
        return False
    if not docker_filters.until_ok(pod.created_ns, filters):
        return False
    if "ctr-names" in filters and not any(docker_filters.match(filters["ctr-names"], c.name)
                                          for c in view.containers):
        return False
    if "ctr-ids" in filters and not any(c.id.startswith(v) for c in view.containers
                                        for v in filters["ctr-ids"]):
        return False
    return "ctr-number" not in filters or str(len(view.members)) in filters["ctr-number"]
