"""The container lifecycle: create, start, stop, kill, wait, remove, list, inspect, logs.

Every running container has a monitor process (servin.engine.runtime.monitor) that outlives
the daemon. The service keeps one watcher task per running container that waits on its
monitor and records the exit; at daemon start ``recover`` reattaches to every monitor still
alive and records the exits that happened while the daemon was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import secrets
import shutil
import signal as signal_module
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from servin import signals
from servin.api.servin.v1 import containers_pb2
from servin.engine import limits
from servin.engine.config import DaemonConfig
from servin.engine.containers import logs as logreader
from servin.engine.containers import mounts as mountspecs
from servin.engine.containers import recovery
from servin.engine.containers.etcfiles import write_etc_files
from servin.engine.containers.health import (
    STARTING,
    HealthChecks,
    HealthResult,
    HealthRunner,
    Probe,
    resolve_check,
)
from servin.engine.containers.model import (
    CREATED,
    EXITED,
    PAUSED,
    REMOVING,
    RESTARTING,
    RUNNING,
    Container,
    ContainerPaths,
    ContainerState,
)
from servin.engine.containers.names import generate_name, validate_name
from servin.engine.containers.restart import (
    Backoff,
    restart_at_daemon_start,
    should_restart,
    validate_policy,
)
from servin.engine.containers.store import ContainerStore
from servin.engine.crashpoints import crashpoint
from servin.engine.events import EventBus
from servin.engine.images.store import ImageStore
from servin.engine.runtime.bundle import BundleInputs, NamespacePaths, build_config, write_bundle
from servin.engine.runtime.monitor.client import (
    Attachment,
    MonitorClient,
    ensure_zygote,
    spawn,
)
from servin.engine.runtime.monitor.protocol import (
    ExitRecord,
    LogConfig,
    RuntimeConfig,
    SpawnResult,
    SpawnSpec,
    monitor_alive,
    read_exit_record,
)
from servin.engine.runtime.monitor.runtimes import make_runtime
from servin.engine.runtime.userdb import resolve_user
from servin.engine.store.snapshots import Snapshotter
from servin.engine.store.snapshots.layers import chain_ids
from servin.engine.store.trash import remove_unmounted
from servin.engine.volumes.copyup import copy_up
from servin.engine.volumes.service import VolumeService, VolumeUser
from servin.errors import Conflict, InvalidArgument, NotFound, ServinError, Unavailable

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 10
EXIT_RECORD = "exit.json"


def parse_signal(value: str | int, default: int = signal_module.SIGKILL) -> int:
    """A signal from ``KILL``, ``SIGKILL``, ``9``, ``RTMIN+3`` (docker's names); ``default``
    when empty."""
    if value in ("", None):
        return default
    return signals.parse_signal(value)


_LOG_OPTS = {"max-size", "max-file", "labels", "labels-regex", "env", "env-regex"}


def _log_options(spec: containers_pb2.ContainerSpec, path: Path,
                 image: dict[str, Any] | None = None) -> LogConfig:
    options = dict(spec.log_config.options)
    for key in options:
        if key not in _LOG_OPTS:
            raise InvalidArgument(
                f"unknown log opt {key!r} (valid: {', '.join(sorted(_LOG_OPTS))})")
    size = _parse_size(options.get("max-size", "0"))
    files = int(options.get("max-file", "1") or 1)
    if files < 1:
        raise InvalidArgument("max-file must be at least 1")
    driver = spec.log_config.type or "json-file"
    if driver not in ("json-file", "cri"):
        raise InvalidArgument(f"unsupported log driver {driver!r} (json-file or cri)")
    return LogConfig(path=path, driver=driver, max_size=size, max_file=files,
                     attrs=_log_attrs(options, spec, image or {}))


def _log_attrs(options: dict[str, str], spec: containers_pb2.ContainerSpec,
               image: dict[str, Any]) -> dict[str, str]:
    """The attributes each log entry carries (``logs --details``): the labels and environment
    variables ``--log-opt labels=,labels-regex=,env=,env-regex=`` name, as docker's
    json-file driver records them."""
    import re

    labels = {**(image.get("Labels") or {}), **dict(spec.labels)}
    env: dict[str, str] = {}
    for item in [*(image.get("Env") or []), *spec.env]:
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
    attrs: dict[str, str] = {}
    for source, names, pattern in ((labels, "labels", "labels-regex"), (env, "env", "env-regex")):
        for name in filter(None, options.get(names, "").split(",")):
            if name in source:
                attrs[name] = source[name]
        if options.get(pattern):
            try:
                regex = re.compile(options[pattern])
            except re.error as exc:
                raise InvalidArgument(f"invalid --log-opt {pattern}: {exc}") from None
            attrs.update({k: v for k, v in source.items() if regex.match(k)})
    return attrs


def _parse_size(text: str) -> int:
    units = {
        "": 1,
        "b": 1,
        "k": 1024,
        "kb": 1024,
        "m": 1024**2,
        "mb": 1024**2,
        "g": 1024**3,
        "gb": 1024**3,
    }
    t = text.strip().lower()
    number = t.rstrip("kmgb")
    unit = t[len(number) :]
    try:
        return int(float(number) * units[unit])
    except (ValueError, KeyError):
        raise InvalidArgument(f"invalid size: {text!r}") from None


class ContainerService:
    """The container half of the engine core."""

    def __init__(
        self,
        config: DaemonConfig,
        store: ContainerStore,
        images: ImageStore,
        snapshots: Snapshotter,
        events: EventBus,
    ) -> None:
        self.config = config
        self.store = store
        self.images = images
        self.snapshots = snapshots
        self.events = events
        self._locks: dict[str, asyncio.Lock] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._exited: dict[str, asyncio.Event] = {}
        self._zygote: Path | None = None
        # Attach requests waiting for a created container to start: each gets a monitor
        # attachment after the monitor exists and before the program runs, so no output is
        # missed (docker's attach-then-start).
        self._pending_attach: dict[
            str, list[tuple[asyncio.Future[Attachment], dict[str, bool]]]
        ] = {}
        # The state each container had when it last exited (kept so a waiter still learns the
        # exit code of a container removed right away by --rm).
        self._last_exit: dict[str, ContainerState] = {}
        self._restarts: dict[str, asyncio.Task[None]] = {}
        self.health = HealthChecks()
        # How a health check runs its command in a container (the engine sets it to an exec).
        self.health_probe: Probe | None = None
        self._backoff: dict[str, Backoff] = {}
        # The volume service (the engine sets it): named and anonymous volumes.
        self.volumes: VolumeService | None = None
        # The network service (servin.engine.networks.service.NetworkService), set by the
        # engine: endpoints at create, links and ports at start, released at exit.
        self.networks: Any = None

    # -- helpers -------------------------------------------------------------------------

    def paths(self, container_id: str) -> ContainerPaths:
        """Where a container's files live."""
        return ContainerPaths.of(self.config.root, self.config.exec_root, container_id)

    def _lock(self, container_id: str) -> asyncio.Lock:
        return self._locks.setdefault(container_id, asyncio.Lock())

    def _exit_event(self, container_id: str) -> asyncio.Event:
        return self._exited.setdefault(container_id, asyncio.Event())

    async def resolve(self, text: str) -> Container:
        """A container by ID, name or unique ID prefix."""
        return await asyncio.to_thread(self.store.resolve, text)

    def _runtime_config(self, name: str) -> RuntimeConfig:
        if name == "native":
            return RuntimeConfig()
        binary = self.config.runtimes.get(name) or shutil.which(name)
        if not binary:
            raise InvalidArgument(
                f"unknown or missing runtime {name!r}: install it or configure "
                "its path under [runtimes] in the config"
            )
        return RuntimeConfig(
            name=name, binary=binary, root=str(self.config.exec_root / "runtime" / name)
        )

    # -- create --------------------------------------------------------------------------

    async def create(self, name: str, spec: containers_pb2.ContainerSpec) -> Container:
        """Create a container (its record, writable layer and log dir); nothing runs yet."""
        if not spec.image:
            raise InvalidArgument("no image given")
        limits.check_container_config(spec)
        record = await asyncio.to_thread(self.images.resolve, spec.image)
        image_config = await asyncio.to_thread(self.images.config, record)
        image = image_config.get("config") or {}
        if name:
            name = validate_name(name)
        else:
            taken = {c.name for c in await asyncio.to_thread(self.store.list)}
            name = generate_name(taken)
        spec = containers_pb2.ContainerSpec.FromString(spec.SerializeToString())
        spec.runtime = spec.runtime or self.config.default_runtime
        self._runtime_config(spec.runtime)  # refuse an unknown runtime now, not at start
        if spec.network_mode in ("", "default"):
            spec.network_mode = "bridge"
        if self.networks is not None:
            await asyncio.to_thread(self.networks.validate_spec, spec, image)
        elif spec.network_mode not in ("none", "host") and not spec.network_mode.startswith(
            "container:"
        ):
            raise InvalidArgument(f"network mode {spec.network_mode!r} needs networking")
        for mode in (spec.ipc_mode, spec.pid_mode, spec.uts_mode):
            if mode not in ("", "private", "shareable", "host") and not mode.startswith(
                "container:"
            ):
                raise InvalidArgument(f"invalid namespace mode {mode!r}")
        if spec.cgroupns_mode not in ("", "private", "host"):
            raise InvalidArgument(f"invalid cgroup namespace mode {spec.cgroupns_mode!r} "
                                  "(host or private)")
        _log_options(spec, Path("/"), image)  # validate log options
        validate_policy(spec.restart_policy, spec.auto_remove)
        resolve_check(spec.healthcheck if spec.HasField("healthcheck") else None, image)
        # Validate what the bundle builder would refuse at start, so create fails instead.
        from servin.engine.runtime.bundle import (
            capability_set,
            devices,
            parse_device,
            process_args,
            process_env,
            resources,
            working_dir,
        )

        process_args(spec, image)
        process_env(spec, image, "x")
        working_dir(spec, image)
        capability_set(spec)
        resources(spec)
        await asyncio.to_thread(devices, spec)
        spec.devices[:] = [":".join(parse_device(d)) for d in spec.devices]  # as recorded
        if spec.stop_signal:
            parse_signal(spec.stop_signal)
        if spec.init and not os.path.isfile(self.config.init_path):
            raise InvalidArgument(
                f"--init: the init binary {self.config.init_path} does not exist (install "
                "Debian's tini package, or set init_path in the daemon's config.toml)")
        resolved, created_volumes = await asyncio.to_thread(self._resolve_mounts, spec, image)
        del spec.mounts[:]
        spec.mounts.extend(resolved)

        container = Container(
            id=secrets.token_hex(32),
            name=name,
            image_ref=spec.image,
            image_id=record.id,
            spec=spec,
            created_ns=time.time_ns(),
        )
        # Cleared once the create is whole: a record still marked after a crash is removed
        # at the next start (see recovery.finish_interrupted).
        container.state.creating = True
        paths = self.paths(container.id)
        manifest = await asyncio.to_thread(self.images.manifest, record)
        diff_ids = (image_config.get("rootfs") or {}).get("diff_ids") or []
        layers = [
            (layer["digest"], diff_ids[i]) for i, layer in enumerate(manifest.get("layers", []))
        ]
        try:
            # Held until the snapshot records the layers, so a collection cannot take them.
            with self.images.content.leases.lease(f"create {container.id}") as lease:
                for chain in chain_ids([d for _, d in layers]):
                    lease.add_chain(chain)
                container.snapshot_chain = await asyncio.to_thread(
                    self.snapshots.ensure_layers, self.images.content, layers
                )
                await asyncio.to_thread(
                    self.snapshots.prepare, container.id, container.snapshot_chain
                )
            crashpoint("container.create.after-snapshot")
            paths.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            await asyncio.to_thread(self.store.add, container)
            crashpoint("container.create.after-record")
        except BaseException:
            await asyncio.to_thread(self._discard_files, container.id)
            await asyncio.to_thread(self._drop_volumes, created_volumes)
            raise
        if self.networks is not None:
            try:
                await asyncio.to_thread(self.networks.allocate, container)
            except BaseException:
                await asyncio.to_thread(self.store.delete, container.id)
                await asyncio.to_thread(self._discard_files, container.id)
                await asyncio.to_thread(self._drop_volumes, created_volumes)
                raise
        container.state.creating = False
        await asyncio.to_thread(self.store.save_state, container)
        self.events.publish("container", "create", container.id, name=name, image=spec.image)
        return container

    def _resolve_mounts(
        self, spec: containers_pb2.ContainerSpec, image: dict[str, Any]
    ) -> tuple[list[Any], list[str]]:
        """The spec's mounts resolved (volumes named and created); blocking."""
        if self.volumes is None:
            raise Unavailable("the volume service is not running")
        volumes = self.volumes

        def container_mounts(text: str) -> list[Any]:
            return list(self.store.resolve(text).spec.mounts)

        return mountspecs.resolve(spec, image, mountspecs.Resolver(
            container_mounts=container_mounts,
            create_volume=volumes.create,
            remove_volume=volumes.remove,
            volume_exists=lambda name: volumes.store.find(name) is not None,
        ))

    def _drop_volumes(self, names: list[str]) -> None:
        if self.volumes is not None:
            for name in names:
                with contextlib.suppress(ServinError, OSError):
                    self.volumes.remove(name)

    def volume_users(self, name: str) -> list[VolumeUser]:
        """Containers whose mounts use volume ``name`` (blocking)."""
        return [
            VolumeUser(c.id, c.state.status in (RUNNING, PAUSED, RESTARTING))
            for c in self.store.list()
            if name in mountspecs.volume_names(c.spec.mounts)
        ]

    def _volume_paths(self, c: Container, rootfs: Path) -> dict[str, str]:
        """Mount each volume's filesystem if needed and fill empty volumes from the image
        (copy-up); the host directories to bind. Blocking."""
        names = mountspecs.volume_names(c.spec.mounts)
        if not names:
            return {}
        if self.volumes is None:
            raise Unavailable("the volume service is not running")
        paths: dict[str, str] = {}
        try:
            for m in c.spec.mounts:
                if m.type != "volume" or not m.name:
                    continue
                data = self.volumes.acquire(m.name)
                paths[m.name] = str(data)
                if mountspecs.NOCOPY not in m.options and self.volumes.is_empty(m.name):
                    copy_up(rootfs, m.target, data)
        except BaseException:
            self.volumes.release(names, c.id)
            raise
        return paths

    def _release_volumes(self, c: Container) -> None:
        if self.volumes is not None:
            with contextlib.suppress(ServinError, OSError):
                self.volumes.release(mountspecs.volume_names(c.spec.mounts), c.id)

    def _discard_files(self, container_id: str) -> None:
        paths = self.paths(container_id)
        with contextlib.suppress(ServinError, OSError):
            self.snapshots.unmount(paths.rootfs)
        # The rw layer and the container's directory (its log may be big) are renamed aside
        # now and deleted in the background; the start-up repair sweeps what a crash leaves.
        with contextlib.suppress(ServinError, OSError):
            self.snapshots.discard(container_id)
        with contextlib.suppress(OSError):
            self.snapshots.trash.move_aside(paths.dir)
            self.snapshots.trash.move_aside(paths.state_dir, remove_unmounted)

    # -- start ---------------------------------------------------------------------------

    async def start(self, text: str) -> Container:
        """Start a created or exited container; a running one is left alone."""
        c = await self.resolve(text)
        self._cancel_restart(c.id)
        async with self._lock(c.id):
            c = await asyncio.to_thread(self.store.get, c.id)
            if c.state.status in (RUNNING, PAUSED):
                return c
            c.state.manually_stopped = False
            await self._start_locked(c)
        return c

    def _namespaces(self, spec: containers_pb2.ContainerSpec) -> NamespacePaths:
        join: dict[str, str] = {}
        host: set[str] = set()
        for ns, mode in (
            ("network", spec.network_mode),
            ("ipc", spec.ipc_mode),
            ("pid", spec.pid_mode),
            ("uts", spec.uts_mode),
            ("cgroup", spec.cgroupns_mode),
        ):
            if mode == "host":
                host.add(ns)
            elif mode.startswith("container:"):
                target = self.store.resolve(mode.split(":", 1)[1])
                if target.state.status not in (RUNNING, PAUSED) or not target.state.pid:
                    raise Conflict(
                        f"cannot join the {ns} namespace of container "
                        f"{target.name}: it is not running"
                    )
                join[ns] = f"/proc/{target.state.pid}/ns/{'net' if ns == 'network' else ns}"
        return NamespacePaths(join=join, host=frozenset(host))

    def _prepare_bundle(self, c: Container) -> Path:
        """Mount the rootfs and write the bundle; runs in a worker thread."""
        paths = self.paths(c.id)
        paths.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (paths.state_dir / EXIT_RECORD).unlink(missing_ok=True)
        record = self.images.get(c.image_id)
        image_config = self.images.config(record)
        if not c.state.rootfs_mounted:
            paths.rootfs.mkdir(parents=True, exist_ok=True)
            # A container removed at its exit needs no durable writes (podman does the same).
            self.snapshots.mount(c.id, paths.rootfs, volatile=c.spec.auto_remove)
            c.state.rootfs_mounted = True
            self.store.save_state(c)
        image = image_config.get("config") or {}
        user = resolve_user(
            paths.rootfs, c.spec.user or image.get("User", ""), list(c.spec.group_add)
        )
        namespaces = self._namespaces(c.spec)
        hostname = c.spec.hostname or (
            os.uname().nodename if "uts" in namespaces.host else c.id[:12]
        )
        address, embedded_dns = (
            self.networks.addressing(c) if self.networks is not None else ("", "")
        )
        write_etc_files(paths, c.spec, hostname, host_network="network" in namespaces.host,
                        address=address, embedded_dns=embedded_dns)
        volume_paths = self._volume_paths(c, paths.rootfs)
        config = build_config(
            c.spec,
            BundleInputs(
                container_id=c.id,
                rootfs=paths.rootfs,
                image_config=image_config,
                user=user,
                hostname=hostname,
                etc_files=paths.etc_files,
                namespaces=namespaces,
                volume_paths=volume_paths,
                init_path=self.config.init_path,
            ),
        )
        write_bundle(paths.dir, config)
        return paths.dir

    async def _start_locked(self, c: Container) -> None:
        paths = self.paths(c.id)
        spawned = False
        published: list[dict[str, Any]] = []
        # A monitor left by a start that a daemon restart interrupted holds the state dir.
        await recovery.end_stray_monitor(self, c)
        try:
            bundle = await asyncio.to_thread(self._prepare_bundle, c)
            crashpoint("container.start.after-mount")
            # Without links to make (the runtime brings lo up), nothing happens between create
            # and start: the monitor starts the program at once, and the waiting attach
            # requests ride along with the spawn.
            mode = c.spec.network_mode
            direct = mode in ("", "none", "host") or mode.startswith("container:")
            waiting = [(f, o) for f, o in self._pending_attach.get(c.id, []) if not f.done()]
            spawn_spec = SpawnSpec(
                id=c.id,
                bundle=bundle,
                state_dir=paths.state_dir,
                log=_log_options(c.spec, paths.log_path,
                                 await asyncio.to_thread(self._image_config, c)),
                runtime=self._runtime_config(c.runtime),
                open_stdin=c.spec.open_stdin,
                tty=c.spec.tty,
                start=direct,
            )
            self._exit_event(c.id).clear()
            result = await self._spawn(spawn_spec, [o for _, o in waiting] if direct else [])
            spawned = True
            crashpoint("container.start.after-spawn")
            if direct:
                await self._hand_attachments(c.id, waiting, result.attachments)
                crashpoint("container.start.after-network")
                await self._attach_waiters(c.id)  # any that came during the spawn
            else:
                if self.networks is not None:
                    image = (await asyncio.to_thread(self._image_config, c)
                             if c.spec.publish_all else {})
                    published = await self.networks.attach(c, result.pid, image)
                crashpoint("container.start.after-network")
                await self._attach_waiters(c.id)
                await MonitorClient(paths.state_dir).start()
            crashpoint("container.start.after-monitor-start")
        except BaseException as exc:
            if spawned:
                with contextlib.suppress(ServinError, OSError):
                    await MonitorClient(paths.state_dir).kill(signal_module.SIGKILL, all=True)
                with contextlib.suppress(ServinError, OSError):
                    await MonitorClient(paths.state_dir).wait()
            if self.networks is not None:
                with contextlib.suppress(ServinError, OSError):
                    await self.networks.detach(c)
            await asyncio.to_thread(self._release_rootfs, c)
            await asyncio.to_thread(self._release_volumes, c)
            c.state.error = str(exc) if isinstance(exc, ServinError) else f"{exc}"
            if c.state.status != CREATED:
                c.state.status = EXITED
                c.state.exit_code = 128
            await asyncio.to_thread(self.store.save_state, c)
            raise
        c.state = ContainerState(
            status=RUNNING,
            pid=result.pid,
            monitor_pid=result.monitor_pid,
            started_at_ns=time.time_ns(),
            restart_count=c.state.restart_count,
            rootfs_mounted=True,
            ports=published,
        )
        self._begin_health(c)
        await asyncio.to_thread(self.store.save_state, c)
        self.events.publish("container", "start", c.id, name=c.name, image=c.image_ref)
        self._watch(c)

    async def _spawn(self, spec: SpawnSpec, attach: list[dict[str, bool]]) -> SpawnResult:
        """Have the zygote fork the container's monitor (``attach``: streams to pass along,
        see ``spawn``); a zygote that died (killed, OOM) is started again, once."""
        for attempt in (1, 2):
            if self._zygote is None:
                self._zygote = await asyncio.to_thread(ensure_zygote, self.config.exec_root)
            try:
                return await spawn(self._zygote, spec, attach)
            except Unavailable as exc:
                if "monitor zygote" not in str(exc):
                    raise  # the zygote answered: the creation itself failed
                self._zygote = None
                if attempt == 2 or await asyncio.to_thread(monitor_alive, spec.state_dir):
                    raise
                log.warning("the monitor zygote is gone: starting it again")
        raise AssertionError("unreachable")

    async def _hand_attachments(self, container_id: str,
                                waiting: list[tuple[asyncio.Future[Attachment], dict[str, bool]]],
                                attachments: tuple[Any, ...]) -> None:
        """Give attach requests the streams the spawn made for them."""
        entries = self._pending_attach.get(container_id, [])
        for (future, options), attachment in zip(waiting, attachments, strict=True):
            if (future, options) in entries:
                entries.remove((future, options))
            if future.done():
                await attachment.close()
            else:
                future.set_result(attachment)

    async def _attach_waiters(self, container_id: str) -> None:
        client = MonitorClient(self.paths(container_id).state_dir)
        for future, options in self._pending_attach.pop(container_id, []):
            if future.done():
                continue
            try:
                future.set_result(await client.attach(**options))
            except ServinError as exc:
                future.set_exception(exc)

    async def attach_running(self, c: Container, options: dict[str, bool]) -> Attachment:
        """Attach now to a running container's streams."""
        if c.state.status not in (RUNNING, PAUSED):
            raise Conflict(f"You cannot attach to a stopped container {c.name}, start it first")
        return await MonitorClient(self.paths(c.id).state_dir).attach(**options)

    def attach_on_start(self, c: Container, options: dict[str, bool]) -> asyncio.Future[Attachment]:
        """A future attachment, made when the container next starts, before its program runs.

        Cancel the future to withdraw the request.
        """
        future: asyncio.Future[Attachment] = asyncio.get_running_loop().create_future()
        waiters = self._pending_attach.setdefault(c.id, [])
        entry = (future, options)
        waiters.append(entry)
        future.add_done_callback(lambda _: entry in waiters and waiters.remove(entry))
        return future

    def _release_rootfs(self, c: Container) -> None:
        if c.state.rootfs_mounted:
            with contextlib.suppress(ServinError, OSError):
                self.snapshots.unmount(self.paths(c.id).rootfs)
            c.state.rootfs_mounted = False

    # -- exits ---------------------------------------------------------------------------

    def _watch(self, c: Container) -> None:
        task = asyncio.get_running_loop().create_task(self._watch_exit(c.id))
        self._watchers[c.id] = task
        task.add_done_callback(lambda _: self._watchers.pop(c.id, None))

    async def _watch_exit(self, container_id: str) -> None:
        paths = self.paths(container_id)
        record: ExitRecord | None
        try:
            record = await MonitorClient(paths.state_dir).wait()
        except ServinError as exc:
            log.warning(
                "lost the monitor of a container",
                extra={"container": container_id, "error": str(exc)},
            )
            record = None
        await self._record_exit(container_id, record)

    async def _record_exit(self, container_id: str, record: ExitRecord | None) -> None:
        self.health.stop(container_id)
        async with self._lock(container_id):
            try:
                c = await asyncio.to_thread(self.store.get, container_id)
            except NotFound:
                return
            c.state.status = EXITED
            c.state.pid = 0
            c.state.monitor_pid = 0
            c.state.finished_at_ns = time.time_ns()
            if record is None:
                c.state.exit_code = 255
                c.state.error = "the container's monitor exited without recording an exit code"
                # Whatever still runs of it has nobody to log or reap it: end it.
                await asyncio.to_thread(recovery.force_delete, self, c)
            else:
                c.state.exit_code = record.exit_code
                c.state.oom_killed = record.oom_killed
                c.state.finished_at_ns = _ns_from_rfc3339(record.finished_at) or time.time_ns()
            if self.networks is not None:
                try:
                    await self.networks.detach(c)
                except (ServinError, OSError) as exc:
                    log.warning("network cleanup failed", extra={"container": c.id,
                                                                 "error": str(exc)})
            c.state.ports = []
            crashpoint("container.exit.before-record")
            await asyncio.to_thread(self._release_rootfs, c)
            await asyncio.to_thread(self._release_volumes, c)
            await asyncio.to_thread(self.store.save_state, c)
            self._last_exit[c.id] = ContainerState.from_json(c.state.to_json())
        if c.state.oom_killed:
            self.events.publish("container", "oom", c.id, name=c.name, image=c.image_ref)
        self.events.publish(
            "container",
            "die",
            c.id,
            name=c.name,
            image=c.image_ref,
            exitCode=str(c.state.exit_code),
        )
        self._exit_event(c.id).set()
        if c.spec.auto_remove:
            with contextlib.suppress(NotFound):
                await self.remove(c.id, force=True, volumes=True)
        elif should_restart(c.spec.restart_policy, exit_code=c.state.exit_code,
                            restart_count=c.state.restart_count,
                            manually_stopped=c.state.manually_stopped):
            await self._schedule_restart(c)

    # -- health checks -------------------------------------------------------------------

    def _begin_health(self, c: Container) -> None:
        """Start probing a running container that has a health check (state updated here)."""
        try:
            image = self.images.config(self.images.get(c.image_id)).get("config") or {}
        except ServinError:
            image = {}
        check = resolve_check(c.spec.healthcheck if c.spec.HasField("healthcheck") else None,
                              image)
        if check is None:
            c.state.health_status = ""
            return
        if not c.state.health_status:
            c.state.health_status = STARTING
        runner = HealthRunner(c.id, check, self._health_probe, self._health_changed(c.id),
                              started_at=c.state.started_at_ns / 1e9)
        runner.status = c.state.health_status
        runner.failing_streak = c.state.failing_streak
        self.health.start(runner)

    def _health_changed(self, container_id: str) -> Any:
        async def changed(status: str, streak: int, results: list[HealthResult]) -> None:
            async with self._lock(container_id):
                try:
                    c = await asyncio.to_thread(self.store.get, container_id)
                except NotFound:
                    return
                previous = c.state.health_status
                c.state.health_status = status
                c.state.failing_streak = streak
                c.state.health_log = [vars(r) for r in results]
                await asyncio.to_thread(self.store.save_state, c)
            if status != previous:
                self.events.publish("container", f"health_status: {status}", c.id,
                                    name=c.name, image=c.image_ref)

        return changed

    async def _health_probe(self, container_id: str, argv: list[str],
                            timeout: float) -> tuple[int, str]:
        """Run the check's command in the container (as exec does); its code and output."""
        if self.health_probe is None:
            raise Unavailable("health checks need the exec service")
        return await self.health_probe(container_id, argv, timeout)

    # -- restart policies ----------------------------------------------------------------

    async def _schedule_restart(self, c: Container, *, failed_start: bool = False) -> None:
        # A start that failed ran for no time: the delay keeps doubling (docker's back-off).
        ran_for = 0.0 if failed_start else max(
            0.0, (c.state.finished_at_ns - c.state.started_at_ns) / 1e9)
        delay = self._backoff.setdefault(c.id, Backoff()).next(ran_for)
        c.state.status = RESTARTING
        await asyncio.to_thread(self.store.save_state, c)
        task = asyncio.get_running_loop().create_task(self._restart_after(c.id, delay))
        self._restarts[c.id] = task
        task.add_done_callback(lambda t: self._restarts.get(c.id) is t
                               and self._restarts.pop(c.id, None))

    async def _restart_after(self, container_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        async with self._lock(container_id):
            try:
                c = await asyncio.to_thread(self.store.get, container_id)
            except NotFound:
                return
            if c.state.status != RESTARTING:
                return
            c.state.restart_count += 1
            crashpoint("container.restart.before-start")
            try:
                await self._start_locked(c)
                return
            except ServinError as exc:
                log.warning("restart failed", extra={"container": c.id, "error": str(exc)})
                c.state.status = EXITED
                c.state.finished_at_ns = time.time_ns()
                await asyncio.to_thread(self.store.save_state, c)
        if should_restart(c.spec.restart_policy, exit_code=c.state.exit_code or 128,
                          restart_count=c.state.restart_count,
                          manually_stopped=c.state.manually_stopped):
            await self._schedule_restart(c, failed_start=True)

    def _cancel_restart(self, container_id: str) -> bool:
        task = self._restarts.pop(container_id, None)
        if task is None:
            return False
        task.cancel()
        return True

    async def _hold_restarts(self, c: Container) -> None:
        """A user stopped or killed it: no policy restarts it until the next start."""
        self._cancel_restart(c.id)
        async with self._lock(c.id):
            current = await asyncio.to_thread(self.store.get, c.id)
            current.state.manually_stopped = True
            if current.state.status == RESTARTING:
                current.state.status = EXITED
            await asyncio.to_thread(self.store.save_state, current)
            c.state = current.state

    async def recover(self) -> None:
        """At daemon start: reattach to live monitors, record exits that happened meanwhile."""
        for c in await asyncio.to_thread(self.store.list):
            if await recovery.finish_interrupted(self, c):
                continue
            if c.state.status not in (RUNNING, PAUSED):
                if await recovery.end_stray_monitor(self, c):
                    c.state.error = "the start was interrupted by a daemon restart"
                    await asyncio.to_thread(self.store.save_state, c)
                if c.state.rootfs_mounted:
                    await asyncio.to_thread(self._release_rootfs, c)
                    await asyncio.to_thread(self.store.save_state, c)
                continue
            state_dir = self.paths(c.id).state_dir
            if c.state.frozen_by_commit:
                await recovery.thaw_after_commit(self, c)
            if await asyncio.to_thread(monitor_alive, state_dir):
                log.info("reattached to a running container", extra={"container": c.id})
                if self.networks is not None:
                    await self.networks.restore(c)
                self._begin_health(c)
                self._watch(c)
                continue
            record = await asyncio.to_thread(read_exit_record, state_dir)
            await self._record_exit(c.id, record)
        for c in await asyncio.to_thread(self.store.list):
            if c.state.status == RESTARTING or (
                c.state.status == EXITED and c.state.started_at_ns
                and restart_at_daemon_start(c.spec.restart_policy,
                                            manually_stopped=c.state.manually_stopped)):
                c.state.manually_stopped = False
                c.state.status = RESTARTING
                await asyncio.to_thread(self.store.save_state, c)
                task = asyncio.get_running_loop().create_task(self._restart_after(c.id, 0))
                self._restarts[c.id] = task

    async def shutdown(self) -> None:
        """Stop watching (containers keep running under their monitors)."""
        for task in list(self._restarts.values()):
            task.cancel()
        await self.health.close()
        for task in list(self._watchers.values()):
            task.cancel()
        for task in list(self._watchers.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- signals, stop, wait -------------------------------------------------------------

    async def kill(self, text: str, sig: str | int = "KILL") -> None:
        """Send a signal to the container's main process."""
        number = parse_signal(sig)
        c = await self.resolve(text)
        if c.state.status not in (RUNNING, PAUSED):
            raise Conflict(f"Cannot kill container: {c.id}: container {c.id} is not running")
        await self._hold_restarts(c)
        await MonitorClient(self.paths(c.id).state_dir).kill(number)
        if c.state.status == PAUSED:
            await self._thaw(c)
        self.events.publish("container", "kill", c.id, name=c.name, signal=str(number))

    def _stop_signal(self, c: Container) -> int:
        image_signal = ""
        with contextlib.suppress(ServinError, OSError):
            image_signal = (
                self.images.config(self.images.get(c.image_id)).get("config") or {}
            ).get("StopSignal") or ""
        return parse_signal(c.spec.stop_signal or image_signal, signal_module.SIGTERM)

    async def stop(self, text: str, timeout: int = -1, sig: str = "") -> None:
        """The stop signal, then SIGKILL after ``timeout`` seconds (-1: the container's)."""
        c = await self.resolve(text)
        if c.state.status == RESTARTING:
            await self._hold_restarts(c)
            return
        if c.state.status not in (RUNNING, PAUSED):
            return
        await self._hold_restarts(c)
        if timeout < 0:
            timeout = c.spec.stop_timeout if c.spec.stop_timeout >= 0 else DEFAULT_STOP_TIMEOUT
        number = parse_signal(sig) if sig else await asyncio.to_thread(self._stop_signal, c)
        client = MonitorClient(self.paths(c.id).state_dir)
        exited = self._exit_event(c.id)
        with contextlib.suppress(Unavailable, Conflict):
            await client.kill(number)
            if c.state.status == PAUSED:
                await self._thaw(c)
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

    async def restart(self, text: str, timeout: int = -1, sig: str = "") -> None:
        """Stop (if running, with ``sig`` or the container's stop signal) and start again."""
        c = await self.resolve(text)
        await self.stop(c.id, timeout, sig)
        await self.start(c.id)
        self.events.publish("container", "restart", c.id, name=c.name, image=c.image_ref)

    async def wait(self, text: str, condition: str = "not-running") -> ContainerState:
        """Block until the container stops (or is removed); its final state."""
        c = await self.resolve(text)
        if condition not in ("", "not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid wait condition {condition!r}")
        event = self._exit_event(c.id)
        if condition == "next-exit" and not c.state.running:
            event.clear()  # the exit of the coming run, not of the last one
        if condition == "next-exit" or c.state.running:
            await event.wait()
        if condition == "removed":
            while True:
                try:
                    await asyncio.to_thread(self.store.get, c.id)
                except NotFound:
                    break
                await asyncio.sleep(0.05)
        if c.id in self._last_exit:
            return self._last_exit[c.id]
        return (await asyncio.to_thread(self.store.get, c.id)).state

    # -- pause, update, rename -----------------------------------------------------------

    def _runtime(self, c: Container) -> Any:
        return make_runtime(self._runtime_config(c.runtime), self.paths(c.id).state_dir)

    async def _thaw(self, c: Container) -> None:
        with contextlib.suppress(ServinError, OSError):
            await asyncio.to_thread(self._runtime(c).resume, c.id)

    async def pause(self, text: str, *, by_commit: bool = False) -> None:
        """Freeze every process of a running container.

        ``by_commit``: the freeze is commit's, recorded before it is made, so the start after
        a crash thaws it (a user's pause stays).
        """
        c = await self.resolve(text)
        async with self._lock(c.id):
            c = await asyncio.to_thread(self.store.get, c.id)
            if c.state.status == PAUSED:
                raise Conflict(f"Container {c.id} is already paused")
            if c.state.status != RUNNING:
                raise Conflict(f"Container {c.id} is not running")
            if by_commit:
                c.state.frozen_by_commit = True
                await asyncio.to_thread(self.store.save_state, c)
            await asyncio.to_thread(self._runtime(c).pause, c.id)
            c.state.status = PAUSED
            await asyncio.to_thread(self.store.save_state, c)
        self.events.publish("container", "pause", c.id, name=c.name, image=c.image_ref)

    async def unpause(self, text: str, *, by_commit: bool = False) -> None:
        """Thaw a paused container (``by_commit``: only if commit's freeze still holds it)."""
        c = await self.resolve(text)
        async with self._lock(c.id):
            c = await asyncio.to_thread(self.store.get, c.id)
            if by_commit and not c.state.frozen_by_commit:
                return  # the user unpaused it meanwhile (and may have paused it again)
            if c.state.status != PAUSED:
                raise Conflict(f"Container {c.id} is not paused")
            await asyncio.to_thread(self._runtime(c).resume, c.id)
            c.state.status = RUNNING
            c.state.frozen_by_commit = False
            await asyncio.to_thread(self.store.save_state, c)
        self.events.publish("container", "unpause", c.id, name=c.name, image=c.image_ref)

    async def update(self, text: str, resources: containers_pb2.ContainerSpec,
                     fields: list[str], restart_policy: containers_pb2.RestartPolicy | None
                     ) -> None:
        """Change limits (of a running container too) and the restart policy.

        ``resources`` is a spec carrying the new values; ``fields`` names the Resources fields
        to take from it.
        """
        from servin.engine.runtime.bundle import resources as oci_resources

        c = await self.resolve(text)
        async with self._lock(c.id):
            c = await asyncio.to_thread(self.store.get, c.id)
            spec = containers_pb2.ContainerSpec.FromString(c.spec.SerializeToString())
            known = {f.name for f in containers_pb2.ContainerSpec().resources.DESCRIPTOR.fields}
            for name in fields:
                if name not in known:
                    raise InvalidArgument(f"unknown resource {name!r}")
                setattr(spec.resources, name, getattr(resources.resources, name))
            if restart_policy is not None and restart_policy.name:
                validate_policy(restart_policy, spec.auto_remove)
                spec.restart_policy.CopyFrom(restart_policy)
            limits = oci_resources(spec)  # validates the combination
            if fields and c.state.status in (RUNNING, PAUSED):
                limits.pop("devices", None)
                await asyncio.to_thread(self._runtime(c).update, c.id, limits)
            c.spec = spec
            await asyncio.to_thread(self.store.save_spec, c)
        self.events.publish("container", "update", c.id, name=c.name, image=c.image_ref)

    async def rename(self, text: str, new_name: str) -> None:
        """Give a container a new name."""
        c = await self.resolve(text)
        name = validate_name(new_name)
        if name == c.name:
            raise Conflict("Renaming a container with the same name as its current name")
        old = c.name
        previous = dataclasses.replace(c)
        await asyncio.to_thread(self._rename_checked, c, name)
        if self.networks is not None and c.state.running:
            await self.networks.renamed(previous, c)
        self.events.publish("container", "rename", c.id, name=name, oldName=f"/{old}")

    def _rename_checked(self, c: Container, name: str) -> None:
        try:
            other = self.store.resolve(name)
        except NotFound:
            other = None
        if other is not None and other.name == name:
            raise Conflict(f'Conflict. The container name "/{name}" is already in use by '
                           f'container "{other.id}". You have to remove (or rename) that '
                           "container to be able to reuse that name.")
        self.store.rename(c, name)

    async def resize(self, container_id: str, rows: int, cols: int) -> None:
        """Resize the container's terminal."""
        c = await self.resolve(container_id)
        if not c.spec.tty:
            return
        await MonitorClient(self.paths(c.id).state_dir).resize(rows, cols)

    # -- remove --------------------------------------------------------------------------

    async def remove(self, text: str, *, force: bool = False, volumes: bool = False) -> None:
        """Remove a stopped container (a running one too with ``force``); ``volumes`` removes
        its anonymous volumes too (those no other container uses)."""
        c = await self.resolve(text)
        if self._cancel_restart(c.id) or c.state.status == RESTARTING:
            await self._hold_restarts(c)
        if c.state.status in (RUNNING, PAUSED):
            if not force:
                raise Conflict(
                    f"You cannot remove a running container {c.id}. Stop the "
                    "container before attempting removal or force remove"
                )
            await self._hold_restarts(c)
            with contextlib.suppress(Unavailable, Conflict):
                await MonitorClient(self.paths(c.id).state_dir).kill(
                    signal_module.SIGKILL, all=True
                )
            if c.state.status == PAUSED:
                await self._thaw(c)
            crashpoint("container.rm.after-kill")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit_event(c.id).wait(), 30)
        async with self._lock(c.id):
            try:
                c = await asyncio.to_thread(self.store.get, c.id)
            except NotFound:
                return
            # Marked first: a removal a crash interrupts is finished at the next start, and
            # never leaves a listed container whose files are half gone.
            c.state.status = REMOVING
            await asyncio.to_thread(self.store.save_state, c)
            crashpoint("container.rm.after-mark")
            await asyncio.to_thread(self._remove_files, c)
            crashpoint("container.rm.after-files")
            await asyncio.to_thread(self.store.delete, c.id)
            if volumes:
                await asyncio.to_thread(self._remove_anonymous_volumes, c)
        self._locks.pop(c.id, None)
        self._exited.pop(c.id, None)
        self._backoff.pop(c.id, None)
        self.events.publish("container", "destroy", c.id, name=c.name, image=c.image_ref)

    def _remove_anonymous_volumes(self, c: Container) -> None:
        if self.volumes is None:
            return
        for name in mountspecs.volume_names(c.spec.mounts):
            v = self.volumes.store.find(name)
            if v is not None and v.anonymous and not self.volumes.in_use(name):
                with contextlib.suppress(ServinError, OSError):
                    self.volumes.remove(name)

    def _remove_files(self, c: Container) -> None:
        self._release_rootfs(c)
        # The monitor deletes the runtime's state (and cgroup) when the container exits; one
        # killed before it could leaves them: force-delete through the runtime here.
        recovery.force_delete(self, c)
        self._discard_files(c.id)

    # -- queries -------------------------------------------------------------------------

    async def list(self) -> list[Container]:
        """Every container, newest first."""
        return await asyncio.to_thread(self.store.list)

    async def logs(
        self,
        text: str,
        *,
        follow: bool,
        tail: int,
        since_ns: int | None,
        until_ns: int | None,
        stdout: bool = True,
        stderr: bool = True,
        timestamps: bool = False,
        details: bool = False,
    ) -> AsyncIterator[logreader.LogChunk]:
        """The container's log as chunks of entries (and new ones with ``follow``, until it
        stops): see ``logreader.read_log``."""
        c = await self.resolve(text)
        if c.spec.log_config.type == "none":
            raise InvalidArgument('configured logging driver does not support reading ("none")')
        async for chunk in logreader.read_log(
            self.paths(c.id).log_path,
            tail=tail,
            since_ns=since_ns,
            until_ns=until_ns,
            follow=follow,
            running=c.state.status in (RUNNING, PAUSED),
            exited=self._exit_event(c.id),
            stdout=stdout,
            stderr=stderr,
            timestamps=timestamps,
            details=details,
        ):
            yield chunk

    def _image_config(self, c: Container) -> dict[str, Any]:
        config: dict[str, Any] = self.images.config(self.images.get(c.image_id))
        return config.get("config") or {}

    def image_in_use(self, image_id: str) -> list[Container]:
        """Containers that use an image (blocking)."""
        return self.store.using_image(image_id)

    def inspect_extra(self, c: Container) -> dict[str, Any]:
        """Paths and runtime facts for ``inspect`` (blocking)."""
        paths = self.paths(c.id)
        try:
            args = json.loads((paths.dir / "config.json").read_text())["process"]["args"]
        except (OSError, ValueError, KeyError):
            args = []
        return {
            "args": args,
            "log_path": str(paths.log_path),
            "bundle": str(paths.dir),
            "rootfs": str(paths.rootfs),
            "etc": {k: str(v) for k, v in paths.etc_files.items()},
        }


def _ns_from_rfc3339(text: str) -> int:
    try:
        return logreader.parse_time_ns(text)
    except (ValueError, TypeError):
        return 0
