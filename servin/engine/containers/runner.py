"""Running a container: its rootfs, /etc files, volumes, bundle, monitor and network links.

``Runner.start`` is the one start sequence, used by a user's start and by restart policies:
mount the overlay rootfs, write /etc/hostname|hosts|resolv.conf, resolve the user inside the
rootfs, build the OCI bundle, spawn the monitor (which creates the container through its
runtime), give it its network links, hand pending attach requests their streams, then let the
program run. Anything that fails undoes what was done. ``destroy`` is the one removal of a
stopped container's files and record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal as signal_module
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from servin.engine.config import DaemonConfig
from servin.engine.containers import mounts as mountspecs
from servin.engine.containers import recovery
from servin.engine.containers.collaborators import ContainerNetworking, ContainerVolumes
from servin.engine.containers.etcfiles import write_etc_files
from servin.engine.containers.health import STARTING, resolve_check
from servin.engine.containers.locks import ContainerLocks
from servin.engine.containers.model import (
    CREATED,
    EXITED,
    PAUSED,
    REMOVING,
    RUNNING,
    Container,
    ContainerConfig,
    ContainerState,
    HostConfig,
    PublishedPort,
)
from servin.engine.containers.monitors import Monitors, WaitingAttach
from servin.engine.containers.store import ContainerStore
from servin.engine.crashpoints import crashpoint
from servin.engine.events import EventBus
from servin.engine.images.store import ImageStore
from servin.engine.runtime.bundle import BundleInputs, NamespacePaths, build_config, write_bundle
from servin.engine.runtime.monitor.client import Attachment
from servin.engine.runtime.monitor.protocol import LogConfig, SpawnSpec
from servin.engine.runtime.userdb import resolve_user
from servin.engine.store.snapshots import Snapshotter
from servin.engine.store.trash import remove_unmounted
from servin.engine.volumes.copyup import copy_up
from servin.errors import Conflict, InvalidArgument, NotFound, ServinError
from servin.units import parse_bytes

log = logging.getLogger(__name__)

EXIT_RECORD = "exit.json"
DEFAULT_CGROUP_PARENT = "/servin"
NAMESPACE_MODES = ("network", "ipc", "pid", "uts", "cgroup")


class AttachWaiters(Protocol):
    """Attach requests waiting for a container to start (the attach service)."""

    def waiting(self, container_id: str) -> list[WaitingAttach]:
        """The requests waiting now, to ride along with a spawn that also starts."""

    async def hand_spawned(self, container_id: str, waiting: list[WaitingAttach],
                           attachments: Sequence[Attachment]) -> None:
        """Give ``waiting`` the attachments the spawn made for them, in order."""

    async def hand_over(self, container_id: str) -> None:
        """Give every waiting request its monitor attachment (before the program runs)."""


def starts_at_spawn(network_mode: str) -> bool:
    """Whether nothing needs doing between a container's creation and its start: no network
    links to make (runtimes bring ``lo`` up themselves). Then the monitor starts the program
    at once and the waiting attach requests ride along with the spawn (one round trip)."""
    return network_mode in ("none", "host") or network_mode.startswith(("container:", "ns:"))


LOG_OPTS = {"max-size", "max-file", "labels", "labels-regex", "env", "env-regex"}


def log_options(config: ContainerConfig, host: HostConfig, path: Path,
                image: dict[str, Any] | None = None) -> LogConfig:
    """The monitor's log settings; InvalidArgument for a bad driver or option."""
    options = host.log_config.options
    for key in options:
        if key not in LOG_OPTS:
            raise InvalidArgument(
                f"unknown log opt {key!r} (valid: {', '.join(sorted(LOG_OPTS))})")
    size = parse_bytes(options.get("max-size", "0") or "0", "log-opt max-size")
    try:
        files = int(options.get("max-file", "1") or 1)
    except ValueError:
        raise InvalidArgument(f"invalid max-file {options['max-file']!r}") from None
    if files < 1:
        raise InvalidArgument("max-file must be at least 1")
    driver = host.log_config.type or "json-file"
    if driver not in ("json-file", "cri"):
        raise InvalidArgument(f"unsupported log driver {driver!r} (json-file or cri)")
    return LogConfig(path=path, driver=driver, max_size=max(size, 0), max_file=files,
                     attrs=_log_attrs(options, config, image or {}))


def _log_attrs(options: dict[str, str], config: ContainerConfig,
               image: dict[str, Any]) -> dict[str, str]:
    """The attributes each log entry carries (``logs --details``): the labels and environment
    variables ``--log-opt labels=,labels-regex=,env=,env-regex=`` name, as docker's
    json-file driver records them."""
    labels = {**(image.get("Labels") or {}), **config.labels}
    env: dict[str, str] = {}
    for item in [*(image.get("Env") or []), *config.env]:
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


def namespace_mode(host: HostConfig, ns: str) -> str:
    """The mode of namespace ``ns`` (network, ipc, pid, uts) in the container's settings."""
    return {"network": host.network_mode, "ipc": host.ipc_mode, "pid": host.pid_mode,
            "uts": host.uts_mode, "cgroup": host.cgroupns_mode}[ns]


def cgroup_parent(host: HostConfig) -> str:
    """The cgroup the container's own cgroup is made under."""
    return host.cgroup_parent or DEFAULT_CGROUP_PARENT


class Runner:
    """Starts containers and cleans up after them; callers hold the container's lock."""

    def __init__(self, config: DaemonConfig, store: ContainerStore, images: ImageStore,
                 snapshots: Snapshotter, monitors: Monitors, locks: ContainerLocks,
                 networks: ContainerNetworking, volumes: ContainerVolumes,
                 waiters: AttachWaiters, events: EventBus) -> None:
        self.config = config
        self.store = store
        self.images = images
        self.snapshots = snapshots
        self.monitors = monitors
        self.locks = locks
        self.networks = networks
        self.volumes = volumes
        self.waiters = waiters
        self.events = events

    # -- the image ---------------------------------------------------------------------------

    def image_config(self, c: Container) -> dict[str, Any]:
        """The ``config`` section of the container's image ({} if the image is gone)."""
        try:
            config: dict[str, Any] = self.images.config(self.images.get(c.image_id))
        except (ServinError, OSError, ValueError):
            return {}
        return config.get("config") or {}

    # -- start ---------------------------------------------------------------------------

    def namespaces(self, host: HostConfig) -> NamespacePaths:
        """The namespaces to share with the host and to join (by container or path)."""
        join: dict[str, str] = {}
        shared: set[str] = set()
        for ns in NAMESPACE_MODES:
            mode = namespace_mode(host, ns)
            if mode == "host":
                shared.add(ns)
            elif mode.startswith("container:"):
                target = self.store.resolve(mode.split(":", 1)[1])
                if target.state.status not in (RUNNING, PAUSED) or not target.state.pid:
                    raise Conflict(
                        f"cannot join the {ns} namespace of container "
                        f"{target.name}: it is not running"
                    )
                join[ns] = f"/proc/{target.state.pid}/ns/{'net' if ns == 'network' else ns}"
            elif mode.startswith("ns:"):
                path = mode[3:]
                if not os.path.isabs(path) or not os.path.exists(path):
                    raise InvalidArgument(f"cannot join the {ns} namespace at {path!r}: "
                                          "no such namespace file")
                join[ns] = path
        return NamespacePaths(join=join, host=frozenset(shared))

    def _volume_paths(self, c: Container, rootfs: Path) -> dict[str, str]:
        """Mount each volume's filesystem if needed and fill empty volumes from the image
        (copy-up); the host directories to bind."""
        names = mountspecs.volume_names(c.mounts)
        paths: dict[str, str] = {}
        try:
            for m in c.mounts:
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

    def _prepare_bundle(self, c: Container) -> tuple[Path, dict[str, Any]]:
        """Mount the rootfs and write the bundle (blocking); the bundle's directory and the
        image's config section."""
        paths = self.monitors.paths(c.id)
        paths.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (paths.state_dir / EXIT_RECORD).unlink(missing_ok=True)
        # A pod's infra has no image (an empty rootfs).
        image_config = self.images.config(self.images.get(c.image_id)) if c.image_id else {}
        if not c.state.rootfs_mounted:
            paths.rootfs.mkdir(parents=True, exist_ok=True)
            # A container removed at its exit needs no durable writes (podman does the same).
            self.snapshots.mount(c.id, paths.rootfs, volatile=c.host_config.auto_remove)
            c.state.rootfs_mounted = True
            self.store.save_state(c)
        image = image_config.get("config") or {}
        user = resolve_user(
            paths.rootfs, c.config.user or image.get("User", ""), list(c.host_config.group_add)
        )
        namespaces = self.namespaces(c.host_config)
        hostname = c.config.hostname or (
            os.uname().nodename if "uts" in namespaces.host else c.id[:12]
        )
        address, embedded_dns = self.networks.addressing(c)
        write_etc_files(paths, c.host_config, hostname,
                        host_network="network" in namespaces.host,
                        address=address, embedded_dns=embedded_dns)
        volume_paths = self._volume_paths(c, paths.rootfs)
        bundle = build_config(
            c.config,
            c.host_config,
            c.mounts,
            BundleInputs(
                container_id=c.id,
                rootfs=paths.rootfs,
                image_config=image_config,
                user=user,
                hostname=hostname,
                etc_files=paths.etc_files,
                namespaces=namespaces,
                cgroup_parent=cgroup_parent(c.host_config),
                volume_paths=volume_paths,
                init_path=self.config.init_path,
            ),
        )
        write_bundle(paths.dir, bundle)
        return paths.dir, image

    async def start(self, c: Container) -> None:
        """Start a created or exited container (the caller holds its lock); on success its
        state is RUNNING and saved, and a ``start`` event published."""
        paths = self.monitors.paths(c.id)
        monitor = self.monitors.client(c.id)
        spawned = False
        # A monitor left by a start that a daemon restart interrupted holds the state dir.
        await recovery.end_stray_monitor(self, c)
        try:
            bundle, image = await asyncio.to_thread(self._prepare_bundle, c)
            crashpoint("container.start.after-mount")
            direct = starts_at_spawn(c.network_mode)
            waiting = self.waiters.waiting(c.id) if direct else []
            spawn_spec = SpawnSpec(
                id=c.id,
                bundle=bundle,
                state_dir=paths.state_dir,
                log=log_options(c.config, c.host_config, paths.log_path, image),
                runtime=self.monitors.runtime_config(c.runtime),
                open_stdin=c.config.open_stdin,
                tty=c.config.tty,
                start=direct,
            )
            self.locks.exit_event(c.id).clear()
            result = await self.monitors.spawn(spawn_spec, [o for _, o in waiting])
            spawned = True
            crashpoint("container.start.after-spawn")
            published: list[PublishedPort] = []
            if direct:
                await self.waiters.hand_spawned(c.id, waiting, result.attachments)
                crashpoint("container.start.after-network")
                await self.waiters.hand_over(c.id)  # any that came during the spawn
            else:
                published = await self.networks.attach(c, result.pid, image)
                crashpoint("container.start.after-network")
                await self.waiters.hand_over(c.id)
                await monitor.start()
            crashpoint("container.start.after-monitor-start")
        except BaseException as exc:
            if spawned:
                with contextlib.suppress(ServinError, OSError):
                    await monitor.kill(signal_module.SIGKILL, all=True)
                with contextlib.suppress(ServinError, OSError):
                    await monitor.wait()
            with contextlib.suppress(ServinError, OSError):
                await self.networks.detach(c)
            await asyncio.to_thread(self.release_rootfs, c)
            await asyncio.to_thread(self.release_volumes, c)
            c.state.error = str(exc)
            if c.state.status != CREATED:
                c.state.status = EXITED
                c.state.exit_code = 128
            await asyncio.to_thread(self.store.save_state, c)
            raise
        check = resolve_check(c.config.healthcheck, image)
        c.state = ContainerState(
            status=RUNNING,
            pid=result.pid,
            monitor_pid=result.monitor_pid,
            started_at_ns=time.time_ns(),
            restart_count=c.state.restart_count,
            rootfs_mounted=True,
            ports=published,
            health_status=STARTING if check is not None else "",
        )
        await asyncio.to_thread(self.store.save_state, c)
        self.events.publish("container", "start", c.id, name=c.name, image=c.image_ref)

    # -- while and after it runs ---------------------------------------------------------

    async def thaw(self, c: Container) -> None:
        """Resume a frozen container (best effort: a signal must reach it)."""
        with contextlib.suppress(ServinError, OSError):
            await asyncio.to_thread(self.monitors.runtime(c).resume, c.id)

    def release_rootfs(self, c: Container) -> None:
        """Unmount the rootfs of a container that stopped (blocking)."""
        if c.state.rootfs_mounted:
            with contextlib.suppress(ServinError, OSError):
                self.snapshots.unmount(self.monitors.paths(c.id).rootfs)
            c.state.rootfs_mounted = False

    def release_volumes(self, c: Container) -> None:
        """Let the volume filesystems of a stopped container go (blocking)."""
        with contextlib.suppress(ServinError, OSError):
            self.volumes.release(mountspecs.volume_names(c.mounts), c.id)

    def discard_files(self, container_id: str) -> None:
        """Remove a container's snapshot and directories (blocking): the rw layer and the
        directories (its log may be big) are renamed aside now and deleted in the background;
        the start-up repair sweeps what a crash leaves."""
        paths = self.monitors.paths(container_id)
        with contextlib.suppress(ServinError, OSError):
            self.snapshots.unmount(paths.rootfs)
        with contextlib.suppress(ServinError, OSError):
            self.snapshots.discard(container_id)
        with contextlib.suppress(OSError):
            self.snapshots.trash.move_aside(paths.dir)
            self.snapshots.trash.move_aside(paths.state_dir, remove_unmounted)

    def drop_volumes(self, names: list[str]) -> None:
        """Remove volumes a failed create made (blocking)."""
        for name in names:
            with contextlib.suppress(ServinError, OSError):
                self.volumes.remove(name)

    def remove_files(self, c: Container) -> None:
        """Everything of a stopped container on disk and in the runtime (blocking)."""
        self.release_rootfs(c)
        # The monitor deletes the runtime's state (and cgroup) when the container exits; one
        # killed before it could leaves them: force-delete through the runtime here.
        recovery.force_delete(self, c)
        self.discard_files(c.id)

    def remove_anonymous_volumes(self, c: Container) -> None:
        """The container's anonymous volumes that no other container uses (blocking)."""
        for name in mountspecs.volume_names(c.mounts):
            v = self.volumes.find(name)
            if v is not None and v.anonymous and not self.volumes.in_use(name):
                with contextlib.suppress(ServinError, OSError):
                    self.volumes.remove(name)

    async def destroy(self, container_id: str, *, volumes: bool) -> None:
        """Remove a stopped container's files and record (its anonymous volumes too with
        ``volumes``); publish ``destroy``. A container already gone is left alone."""
        async with self.locks.lock(container_id):
            try:
                c = await asyncio.to_thread(self.store.get, container_id)
            except NotFound:
                return
            # Marked first: a removal a crash interrupts is finished at the next start, and
            # never leaves a listed container whose files are half gone.
            c.state.status = REMOVING
            await asyncio.to_thread(self.store.save_state, c)
            crashpoint("container.rm.after-mark")
            await asyncio.to_thread(self.remove_files, c)
            crashpoint("container.rm.after-files")
            await asyncio.to_thread(self.store.delete, c.id)
            if volumes:
                await asyncio.to_thread(self.remove_anonymous_volumes, c)
        self.locks.forget(c.id)
        self.events.publish("container", "destroy", c.id, name=c.name, image=c.image_ref)
