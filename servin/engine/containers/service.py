"""The container lifecycle and queries: create, start, stop, kill, wait, remove, list, inspect.

This is the door-facing container API (every method async). It validates and records; the
start sequence is the runner's (``runner.py``), exits, restarts, recovery and health checks
the supervisor's (``supervisor.py``), attach streams the attach service's (``streams.py``).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import os
import secrets
import signal as signal_module
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import msgspec

from servin import signals
from servin.engine import fsusage, limits
from servin.engine.config import DaemonConfig
from servin.engine.containers import mounts as mountspecs
from servin.engine.containers.cache import ViewEntry
from servin.engine.containers.collaborators import ContainerVolumes, PodMembership
from servin.engine.containers.health import resolve_check
from servin.engine.containers.locks import ContainerLocks
from servin.engine.containers.model import (
    ACTIVE,
    CREATED,
    EXITED,
    PAUSED,
    RESOURCE_FIELDS,
    RESTARTING,
    RUNNING,
    Container,
    ContainerState,
    CreateRequest,
    Mount,
    Resources,
    RestartPolicy,
)
from servin.engine.containers.monitors import Monitors
from servin.engine.containers.names import generate_name, validate_name
from servin.engine.containers.restart import validate_policy
from servin.engine.containers.runner import NAMESPACE_MODES, Runner, log_options, namespace_mode
from servin.engine.containers.store import ContainerStore
from servin.engine.containers.supervisor import Supervisor
from servin.engine.containers.top import TopResult, container_top
from servin.engine.containers.views import (
    ContainerDetails,
    ContainerListing,
    Created,
    NetworkAttachment,
)
from servin.engine.crashpoints import crashpoint
from servin.engine.events import EventBus
from servin.engine.fsusage import FilesystemUsage
from servin.engine.images.store import ImageStore
from servin.engine.networks.service import NetworkService
from servin.engine.runtime import bundle as oci
from servin.engine.runtime.userdb import ExecUser
from servin.engine.semantics import filters as docker_filters
from servin.engine.store.snapshots import Snapshotter
from servin.engine.store.snapshots.layers import chain_ids
from servin.errors import Conflict, InvalidArgument, NotFound, ServinError, Unavailable

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 10
_CGROUP_PARENT_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/")


def parse_signal(value: str | int, default: int = signal_module.SIGKILL) -> int:
    """A signal from ``KILL``, ``SIGKILL``, ``9``, ``RTMIN+3`` (docker's names); ``default``
    when empty."""
    if value in ("", None):
        return default
    return signals.parse_signal(value)


def _check_namespace_mode(ns: str, mode: str) -> None:
    if mode in ("", "private", "host") or (ns == "ipc" and mode == "shareable"):
        return
    if ns == "cgroup":
        raise InvalidArgument(f"invalid cgroup namespace mode {mode!r} (host or private)")
    if mode.startswith("container:") and len(mode) > len("container:"):
        return
    if mode.startswith("ns:") and os.path.isabs(mode[3:]):
        return
    if ns == "network":
        return  # a network name; the network service checks it
    raise InvalidArgument(f"invalid {ns} namespace mode {mode!r}")


def _check_cgroup_parent(parent: str) -> None:
    if not parent:
        return
    parts = parent.strip("/").split("/")
    if not set(parent) <= _CGROUP_PARENT_CHARS or any(p in ("", ".", "..") for p in parts):
        raise InvalidArgument(f"invalid cgroup parent {parent!r}")


class ContainerService:
    """Containers for every front door."""

    def __init__(
        self,
        config: DaemonConfig,
        store: ContainerStore,
        images: ImageStore,
        snapshots: Snapshotter,
        monitors: Monitors,
        locks: ContainerLocks,
        runner: Runner,
        supervisor: Supervisor,
        networks: NetworkService,
        volumes: ContainerVolumes,
        events: EventBus,
        pods: PodMembership,
        exec_ids: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.images = images
        self.snapshots = snapshots
        self.monitors = monitors
        self.locks = locks
        self.runner = runner
        self.supervisor = supervisor
        self.networks = networks
        self.volumes = volumes
        self.events = events
        self.pods = pods
        # Container ID -> IDs of its running execs (the exec service), for inspect.
        self._exec_ids = exec_ids or (lambda container_id: [])

    # -- lookups ---------------------------------------------------------------------------

    async def get(self, ref: str) -> Container:
        """A container by ID, name (with or without a leading /) or unique ID prefix."""
        return await asyncio.to_thread(self.store.resolve, ref)

    resolve = get

    async def list(self, *, all: bool = False, filters: docker_filters.Filters | None = None,
                   limit: int = 0, size: bool = False) -> builtins.list[ContainerListing]:
        """Containers newest first: running ones, every one with ``all`` (or a ``status``/
        ``exited`` filter), those docker's ``filters`` select, at most ``limit`` (0: all)."""
        wanted = docker_filters.check(filters or {}, docker_filters.CONTAINER_KEYS)
        docker_filters.check_values(wanted, "status", docker_filters.CONTAINER_STATUSES)
        docker_filters.check_values(wanted, "health", docker_filters.HEALTH_STATUSES)
        return await asyncio.to_thread(self._list, all, wanted, limit, size)

    def _list(self, all: bool, filters: docker_filters.Filters, limit: int,
              size: bool) -> builtins.list[ContainerListing]:
        pivots = {key: [self.store.resolve(v).created_ns for v in filters.get(key, [])]
                  for key in ("before", "since")}
        ancestors: set[str] = set()
        for value in filters.get("ancestor", []):
            with contextlib.suppress(ServinError):
                ancestors.add(self.images.resolve(value).id)
        # The in-memory view: shared snapshots, read here and never changed.
        found = self.store.entries()
        if not all and "status" not in filters and "exited" not in filters:
            found = tuple(e for e in found if e.container.state.status in ACTIVE)
        on_networks = self.networks.network_names()
        network_ids = self.networks.network_ids()
        image_commands: dict[str, list[str]] = {}
        out: builtins.list[ContainerListing] = []
        for entry in found:
            c = entry.container
            names = on_networks.get(c.id) or [c.network_mode]
            if filters and not docker_filters.container_matches(
                c, filters, networks=names,
                network_ids=[network_ids.get(n, "") for n in names],
                pivots=pivots, ancestors=ancestors,
            ):
                continue
            command = [*(c.config.entrypoint or []), *c.config.cmd]
            if not command and c.config.entrypoint is None:
                if c.image_id not in image_commands:
                    image = self.runner.image_config(c)
                    image_commands[c.image_id] = [*(image.get("Entrypoint") or []),
                                                  *(image.get("Cmd") or [])]
                command = image_commands[c.image_id]
            out.append(ContainerListing(c, command, names, version=entry.version))
            if limit > 0 and len(out) >= limit:
                break
        if size:
            image_sizes = {i.id: i.size for i in self.images.list()}
            out = [ContainerListing(x.container, x.command, x.networks,
                                    *self._sizes(x.container, image_sizes), version=x.version)
                   for x in out]
        return out

    def _sizes(self, c: Container, image_sizes: dict[str, int] | None = None) -> tuple[int, int]:
        """(writable layer bytes, writable + image bytes) of a container."""
        try:
            rw = self.snapshots.usage(c.id)
        except ServinError:
            rw = 0
        if image_sizes is None:
            image_sizes = {}
            with contextlib.suppress(ServinError):
                image_sizes[c.image_id] = self.images.get(c.image_id).size
        return rw, rw + image_sizes.get(c.image_id, 0)

    def entries(self) -> tuple[ViewEntry, ...]:
        """Every container from the in-memory view with its version, newest first: shared
        read-only snapshots, cheap enough to read on the event loop (a door may cache what
        it derives from an entry under its ID and version)."""
        return self.store.entries()

    async def process_user(self, ref: str) -> ExecUser | None:
        """The identity the container's program runs as (uid, gid, every supplementary gid),
        as its last start resolved it; None before its first start."""
        c = await self.get(ref)
        path = self.monitors.paths(c.id).bundle_config

        def read() -> ExecUser | None:
            try:
                user = json.loads(path.read_text())["process"]["user"]
                return ExecUser(int(user["uid"]), int(user["gid"]),
                                [int(g) for g in user.get("additionalGids") or []])
            except (OSError, ValueError, KeyError, TypeError):
                return None

        return await asyncio.to_thread(read)

    async def writable_layer(self, ref: str) -> FilesystemUsage:
        """Bytes and inodes of the container's writable layer on disk (the CRI's figures)."""
        c = await self.get(ref)

        def measure() -> FilesystemUsage:
            return fsusage.measure(str(self.snapshots.writable_dir(c.id)))

        return await asyncio.to_thread(measure)

    async def inspect(self, ref: str, *, size: bool = False) -> ContainerDetails:
        """Everything ``inspect`` shows of a container."""
        c = await self.get(ref)
        return await asyncio.to_thread(self._details, c, size)

    def _details(self, c: Container, size: bool) -> ContainerDetails:
        paths = self.monitors.paths(c.id)
        image = self.runner.image_config(c)
        try:
            args = json.loads(paths.bundle_config.read_text())["process"]["args"]
        except (OSError, ValueError, KeyError):
            try:
                args = oci.process_args(c.config, image)
            except ServinError:
                args = []
        mounts: builtins.list[Mount] = []
        for m in c.mounts:
            copy = mountspecs.copy_mount(m)
            if m.type == "volume" and m.name:
                found = self.volumes.find(m.name)
                if found is not None:
                    copy.source = found.mountpoint
            mounts.append(copy)
        networks = [NetworkAttachment(n, ep, c.state.running)
                    for n, ep in self.networks.networks_of(c)]
        rw, root = self._sizes(c) if size else (None, None)
        return ContainerDetails(
            container=c, image=image, path=args[0] if args else "", args=list(args[1:]),
            paths=paths, networks=networks, mounts=mounts, exec_ids=self._exec_ids(c.id),
            driver=self.snapshots.driver, size_rw=rw, size_root_fs=root,
        )

    # -- create --------------------------------------------------------------------------

    async def create(self, request: CreateRequest) -> Created:
        """Create a container (its record, writable layer, addresses and log dir); nothing
        runs yet. Every setting is checked first: a bad one changes nothing. A request with
        a ``pod_id`` makes a member of that pod (its namespaces, cgroup, hostname, DNS)."""
        if not request.config.image:
            raise InvalidArgument("no image given")
        if request.pod_id:
            request = await asyncio.to_thread(self.pods.member_request, request)
        return await self._create(request, image_less=False)

    async def create_infra(self, request: CreateRequest) -> Created:
        """Create a pod's infra container (for the pod service): no image, an empty root
        filesystem; the request's mounts bring in the program it runs."""
        return await self._create(request, image_less=True)

    async def _create(self, request: CreateRequest, *, image_less: bool) -> Created:
        config = msgspec.structs.replace(request.config)
        host = msgspec.structs.replace(request.host_config)
        limits.check_container_config(request)
        if image_less:
            record = None
            image_config: dict[str, Any] = {}
        else:
            record = await asyncio.to_thread(self.images.resolve, config.image)
            image_config = await asyncio.to_thread(self.images.config, record)
        image = image_config.get("config") or {}
        if request.name:
            name = validate_name(request.name)
        else:
            name = generate_name(await asyncio.to_thread(self.store.names))
        host.runtime = host.runtime or self.config.default_runtime
        self.monitors.runtime_config(host.runtime)  # refuse an unknown runtime now
        if host.network_mode in ("", "default"):
            host.network_mode = "bridge"
        for ns in NAMESPACE_MODES:
            _check_namespace_mode(ns, namespace_mode(host, ns))
        _check_cgroup_parent(host.cgroup_parent)
        c = Container(
            id=secrets.token_hex(32),
            name=name,
            image_ref=config.image,
            image_id=record.id if record is not None else "",
            created_ns=time.time_ns(),
            config=config,
            host_config=host,
            networking=request.networking,
            pod_id=request.pod_id,
        )
        await asyncio.to_thread(self.networks.validate, c, image)
        log_options(config, host, self.monitors.paths(c.id).log_path, image)
        validate_policy(host.restart_policy, host.auto_remove)
        resolve_check(config.healthcheck, image)
        # What the bundle builder would refuse at start fails create instead.
        oci.process_args(config, image)
        oci.process_env(config, image, "x")
        oci.working_dir(config, image)
        oci.capability_set(host)
        oci.resources(host)
        await asyncio.to_thread(oci.devices, host)
        if config.stop_signal:
            parse_signal(config.stop_signal)
        if host.init and not os.path.isfile(self.config.init_path):
            raise InvalidArgument(
                f"--init: the init binary {self.config.init_path} does not exist (install "
                "Debian's tini package, or set init_path in the daemon's config.toml)")
        c.mounts, created_volumes = await asyncio.to_thread(self._resolve_mounts, host, image)
        # Cleared once the create is whole: a record still marked after a crash is removed
        # at the next start (see recovery.finish_interrupted).
        c.state.creating = True
        paths = self.monitors.paths(c.id)
        layers: builtins.list[tuple[str, str]] = []
        if record is not None:
            manifest = await asyncio.to_thread(self.images.manifest, record)
            diff_ids = (image_config.get("rootfs") or {}).get("diff_ids") or []
            layers = [(layer["digest"], diff_ids[i])
                      for i, layer in enumerate(manifest.get("layers", []))]
        try:
            # Held until the snapshot records the layers, so a collection cannot take them.
            with self.images.content.leases.lease(f"create {c.id}") as lease:
                for chain in chain_ids([d for _, d in layers]):
                    lease.add_chain(chain)
                c.snapshot_chain = await asyncio.to_thread(
                    self.snapshots.ensure_layers, self.images.content, layers
                )
                await asyncio.to_thread(self.snapshots.prepare, c.id, c.snapshot_chain)
            crashpoint("container.create.after-snapshot")
            paths.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            await asyncio.to_thread(self._record, c, not request.name)
            crashpoint("container.create.after-record")
        except BaseException:
            await asyncio.to_thread(self.runner.discard_files, c.id)
            await asyncio.to_thread(self.runner.drop_volumes, created_volumes)
            raise
        try:
            await asyncio.to_thread(self.networks.allocate, c)
        except BaseException:
            await asyncio.to_thread(self.store.delete, c.id)
            await asyncio.to_thread(self.runner.discard_files, c.id)
            await asyncio.to_thread(self.runner.drop_volumes, created_volumes)
            raise
        c.state.creating = False
        await asyncio.to_thread(self.store.save_state, c)
        self.events.publish("container", "create", c.id, name=c.name, image=config.image)
        return Created(c, self.networks.spec_warnings(c))

    def _record(self, c: Container, generated_name: bool) -> None:
        """Record the new container (blocking). A generated name that a create running beside
        this one took meanwhile is replaced by a fresh one; a name the user gave is a
        Conflict."""
        for _ in range(10):
            try:
                self.store.add(c)
                return
            except Conflict:
                if not generated_name:
                    raise
                c.name = generate_name(self.store.names())
        self.store.add(c)

    def _resolve_mounts(self, host: Any, image: dict[str, Any]
                        ) -> tuple[builtins.list[Mount], builtins.list[str]]:
        """The mounts resolved (volumes named and created); blocking."""
        volumes = self.volumes

        def container_mounts(text: str) -> builtins.list[Mount]:
            return list(self.store.resolve(text).mounts)

        return mountspecs.resolve(host, image, mountspecs.Resolver(
            container_mounts=container_mounts,
            create_volume=volumes.create,
            remove_volume=volumes.remove,
            volume_exists=lambda name: volumes.find(name) is not None,
        ))

    # -- start, stop, kill ---------------------------------------------------------------

    async def start(self, ref: str) -> Container:
        """Start a created or exited container; a running one is left alone."""
        c = await self.get(ref)
        if c.pod_id:
            await self.supervisor.prepare_pod(c)
        self.supervisor.cancel_restart(c.id)
        async with self.locks.lock(c.id):
            c = await asyncio.to_thread(self.store.get, c.id)
            if c.state.status in (RUNNING, PAUSED):
                return c
            c.state.manually_stopped = False
            await self.runner.start(c)
            self.supervisor.supervise(c)
        return c

    async def kill(self, ref: str, signal: str | int = "KILL") -> None:
        """Send a signal to the container's main process."""
        number = parse_signal(signal)
        c = await self.get(ref)
        if c.state.status not in (RUNNING, PAUSED):
            raise Conflict(f"Cannot kill container: {c.id}: container {c.id} is not running")
        await self.supervisor.hold_restarts(c)
        await self.monitors.client(c.id).kill(number)
        if c.state.status == PAUSED:
            await self.runner.thaw(c)
        self.events.publish("container", "kill", c.id, name=c.name, signal=str(number))

    async def reopen_log(self, ref: str) -> None:
        """Have the monitor reopen the container's log file (after someone else rotated it,
        as the kubelet does with CRI logs); Conflict if the container is not running."""
        c = await self.get(ref)
        if c.state.status not in (RUNNING, PAUSED):
            raise Conflict(f"container {c.id} is not running")
        await self.monitors.client(c.id).reopen_log()

    def _stop_signal(self, c: Container) -> int:
        image_signal = self.runner.image_config(c).get("StopSignal") or ""
        return parse_signal(c.config.stop_signal or image_signal, signal_module.SIGTERM)

    async def stop(self, ref: str, timeout: int | None = None, signal: str = "") -> None:
        """The stop signal, then SIGKILL after ``timeout`` seconds (None: the container's)."""
        c = await self.get(ref)
        if c.state.status == RESTARTING:
            await self.supervisor.hold_restarts(c)
            return
        if c.state.status not in (RUNNING, PAUSED):
            return
        await self.supervisor.hold_restarts(c)
        if timeout is None or timeout < 0:
            timeout = (c.config.stop_timeout if c.config.stop_timeout is not None
                       else DEFAULT_STOP_TIMEOUT)
        number = parse_signal(signal) if signal else await asyncio.to_thread(self._stop_signal, c)
        client = self.monitors.client(c.id)
        exited = self.locks.exit_event(c.id)
        with contextlib.suppress(Unavailable, Conflict):
            await client.kill(number)
            if c.state.status == PAUSED:
                await self.runner.thaw(c)
        crashpoint("container.stop.after-signal")
        self.events.publish("container", "kill", c.id, name=c.name, signal=str(number))
        try:
            await asyncio.wait_for(exited.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(Unavailable, Conflict):
                await client.kill(signal_module.SIGKILL, all=True)
            self.events.publish("container", "kill", c.id, name=c.name, signal="9")
            await asyncio.wait_for(exited.wait(), 30)
        self.events.publish("container", "stop", c.id, name=c.name)

    async def restart(self, ref: str, timeout: int | None = None, signal: str = "") -> None:
        """Stop (if running, with ``signal`` or the container's stop signal) and start
        again."""
        c = await self.get(ref)
        await self.stop(c.id, timeout, signal)
        await self.start(c.id)
        self.events.publish("container", "restart", c.id, name=c.name, image=c.image_ref)

    async def wait(self, ref: str, condition: str = "not-running") -> ContainerState:
        """Block until the container stops (``next-exit``: its next exit; ``removed``: it is
        gone); its state at that exit."""
        return await (await self.waiter(ref, condition))

    async def waiter(self, ref: str, condition: str = "not-running"
                     ) -> Awaitable[ContainerState]:
        """Register a wait now and return what awaits it (``wait``'s result).

        Once this returns, the exit a ``next-exit`` wait is for cannot be missed: a door can
        tell its client the wait is in place before the client starts the container.
        """
        c = await self.get(ref)
        if condition not in ("", "not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid wait condition {condition!r}")
        event = self.locks.exit_event(c.id)
        if condition == "next-exit" and not c.state.running:
            event.clear()  # the exit of the coming run, not of the last one
        block = condition == "next-exit" or c.state.running
        return self._wait(c, event, block, condition)

    async def _wait(self, c: Container, event: asyncio.Event, block: bool,
                    condition: str) -> ContainerState:
        if block:
            await event.wait()
        if condition == "removed":
            while True:
                try:
                    await asyncio.to_thread(self.store.get, c.id)
                except NotFound:
                    break
                await asyncio.sleep(0.05)
        last = self.locks.last_exit(c.id)
        if last is not None:
            return last
        return (await asyncio.to_thread(self.store.get, c.id)).state

    # -- pause, update, rename -----------------------------------------------------------

    async def pause(self, ref: str, *, by_commit: bool = False) -> None:
        """Freeze every process of a running container.

        ``by_commit``: the freeze is commit's, recorded before it is made, so the start after
        a crash thaws it (a user's pause stays).
        """
        c = await self.get(ref)
        async with self.locks.lock(c.id):
            c = await asyncio.to_thread(self.store.get, c.id)
            if c.state.status == PAUSED:
                raise Conflict(f"Container {c.id} is already paused")
            if c.state.status != RUNNING:
                raise Conflict(f"Container {c.id} is not running")
            if by_commit:
                c.state.frozen_by_commit = True
                await asyncio.to_thread(self.store.save_state, c)
            await asyncio.to_thread(self.monitors.runtime(c).pause, c.id)
            c.state.status = PAUSED
            await asyncio.to_thread(self.store.save_state, c)
        self.events.publish("container", "pause", c.id, name=c.name, image=c.image_ref)

    async def unpause(self, ref: str, *, by_commit: bool = False) -> None:
        """Thaw a paused container (``by_commit``: only if commit's freeze still holds it)."""
        c = await self.get(ref)
        async with self.locks.lock(c.id):
            c = await asyncio.to_thread(self.store.get, c.id)
            if by_commit and not c.state.frozen_by_commit:
                return  # the user unpaused it meanwhile (and may have paused it again)
            if c.state.status != PAUSED:
                raise Conflict(f"Container {c.id} is not paused")
            await asyncio.to_thread(self.monitors.runtime(c).resume, c.id)
            c.state.status = RUNNING
            c.state.frozen_by_commit = False
            await asyncio.to_thread(self.store.save_state, c)
        self.events.publish("container", "unpause", c.id, name=c.name, image=c.image_ref)

    async def update(self, ref: str, resources: Resources, fields: Iterable[str],
                     restart_policy: RestartPolicy | None = None) -> None:
        """Change limits (of a running container too) and the restart policy.

        ``fields`` names the Resources fields to take from ``resources``.
        """
        c = await self.get(ref)
        async with self.locks.lock(c.id):
            c = await asyncio.to_thread(self.store.get, c.id)
            host = msgspec.structs.replace(c.host_config)
            changed = msgspec.structs.replace(host.resources)
            fields = list(fields)
            for name in fields:
                if name not in RESOURCE_FIELDS:
                    raise InvalidArgument(f"unknown resource {name!r}")
                setattr(changed, name, getattr(resources, name))
            host.resources = changed
            if restart_policy is not None and restart_policy.name:
                validate_policy(restart_policy, host.auto_remove)
                host.restart_policy = restart_policy
            limits = oci.resources(host)  # validates the combination
            if fields and c.state.status in (RUNNING, PAUSED):
                limits.pop("devices", None)
                await asyncio.to_thread(self.monitors.runtime(c).update, c.id, limits)
            c.host_config = host
            await asyncio.to_thread(self.store.save_spec, c)
        self.events.publish("container", "update", c.id, name=c.name, image=c.image_ref)

    async def rename(self, ref: str, new_name: str) -> None:
        """Give a container a new name."""
        c = await self.get(ref)
        name = validate_name(new_name)
        if name == c.name:
            raise Conflict("Renaming a container with the same name as its current name")
        previous = msgspec.structs.replace(c)
        await asyncio.to_thread(self.store.rename, c, name)
        if c.state.running:
            await self.networks.renamed(previous, c)
        self.events.publish("container", "rename", c.id, name=name, oldName=f"/{previous.name}")

    async def resize(self, ref: str, rows: int, cols: int) -> None:
        """Resize the container's terminal (ignored without one)."""
        c = await self.get(ref)
        if not c.config.tty:
            return
        await self.monitors.client(c.id).resize(rows, cols)

    async def netns_path(self, ref: str) -> str:
        """The network namespace file of a running container (its init's ``/proc/PID/ns/net``):
        where a connection to one of its ports is made from (CRI port-forward). Whatever its
        network mode (private, a pod's ``ns:`` path, another container's, the host's), the
        init is in that namespace. Conflict unless the container runs."""
        c = await self.get(ref)
        if not c.state.running or c.state.pid <= 0:
            raise Conflict(f"container {c.id} is not running")
        return f"/proc/{c.state.pid}/ns/net"

    async def top(self, ref: str, ps_args: builtins.list[str]) -> TopResult:
        """The container's processes as the host's ``ps`` shows them."""
        c = await self.get(ref)
        bundle_config = self.monitors.paths(c.id).bundle_config
        return await asyncio.to_thread(container_top, c, bundle_config, list(ps_args))

    # -- remove --------------------------------------------------------------------------

    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None:
        """Remove a stopped container (a running one too with ``force``); ``volumes`` removes
        its anonymous volumes too (those no other container uses)."""
        c = await self.get(ref)
        if c.pod_id:
            await asyncio.to_thread(self.pods.check_remove, c)
        if self.supervisor.cancel_restart(c.id) or c.state.status == RESTARTING:
            await self.supervisor.hold_restarts(c)
        if c.state.status in (RUNNING, PAUSED):
            if not force:
                raise Conflict(
                    f"You cannot remove a running container {c.id}. Stop the "
                    "container before attempting removal or force remove"
                )
            await self.supervisor.hold_restarts(c)
            with contextlib.suppress(Unavailable, Conflict):
                await self.monitors.client(c.id).kill(signal_module.SIGKILL, all=True)
            if c.state.status == PAUSED:
                await self.runner.thaw(c)
            crashpoint("container.rm.after-kill")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.locks.exit_event(c.id).wait(), 30)
        await self.runner.destroy(c.id, volumes=volumes)
        self.supervisor.forget(c.id)

    async def prune(self, filters: docker_filters.Filters | None = None
                    ) -> tuple[builtins.list[str], int]:
        """Remove every stopped container ``filters`` (until=, label=, label!=) select; the
        IDs removed and the bytes reclaimed."""
        wanted = docker_filters.check(filters or {}, docker_filters.CONTAINER_PRUNE_KEYS)
        deleted: builtins.list[str] = []
        reclaimed = 0
        for c in await asyncio.to_thread(self.store.list):
            if c.state.status not in (CREATED, EXITED, "dead"):
                continue
            if not docker_filters.until_ok(c.created_ns, wanted) or not docker_filters.labels_ok(
                    c.config.labels, wanted):
                continue
            size = (await asyncio.to_thread(self._sizes, c))[0]
            try:
                await self.remove(c.id)
            except ServinError:
                continue  # started or removed meanwhile
            deleted.append(c.id)
            reclaimed += size
        if deleted:
            self.events.publish("container", "prune", "", reclaimed=str(reclaimed))
        return deleted, reclaimed

    # -- daemon start and stop -----------------------------------------------------------

    async def recover(self) -> None:
        """At daemon start: reattach to running containers, record exits that happened
        meanwhile, restart what the policies say."""
        await self.supervisor.recover()

    async def shutdown(self) -> None:
        """Stop watching (containers keep running under their monitors)."""
        await self.supervisor.shutdown()
