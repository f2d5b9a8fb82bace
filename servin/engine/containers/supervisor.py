"""Supervision of running containers: exits, restart policies, recovery, health checks.

Every running container has one watcher task waiting on its monitor; on exit it records code,
OOM kill and time, lets the network, rootfs and volumes go, publishes ``die``, removes the
container for ``--rm`` and otherwise applies its restart policy (docker's back-off). At daemon
start ``recover`` reattaches to every monitor still alive (checked by pid, start time and
name), records the exits that happened while the daemon was down, and starts the containers
their policy says to start again. A container with a health check has a probe task too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from servin.engine.containers import recovery
from servin.engine.containers.collaborators import ContainerNetworking, PodMembership
from servin.engine.containers.health import HealthChecks, HealthRunner, Probe, resolve_check
from servin.engine.containers.locks import ContainerLocks
from servin.engine.containers.model import (
    EXITED,
    PAUSED,
    RESTARTING,
    RUNNING,
    Container,
    HealthResult,
)
from servin.engine.containers.monitors import Monitors
from servin.engine.containers.restart import Backoff, restart_at_daemon_start, should_restart
from servin.engine.containers.runner import Runner
from servin.engine.containers.store import ContainerStore
from servin.engine.crashpoints import crashpoint
from servin.engine.events import EventBus
from servin.engine.runtime.monitor.protocol import ExitRecord, monitor_alive, read_exit_record
from servin.engine.timefmt import parse_ns_or_zero
from servin.errors import NotFound, ServinError

log = logging.getLogger(__name__)


class Supervisor:
    """Watches running containers and acts when they exit."""

    def __init__(self, store: ContainerStore, locks: ContainerLocks, runner: Runner,
                 monitors: Monitors, networks: ContainerNetworking, events: EventBus,
                 probe: Probe, pods: PodMembership) -> None:
        self.store = store
        self.locks = locks
        self.runner = runner
        self.monitors = monitors
        self.networks = networks
        self.events = events
        self.probe = probe
        self.pods = pods
        self.health = HealthChecks()
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._restarts: dict[str, asyncio.Task[None]] = {}
        self._backoff: dict[str, Backoff] = {}

    # -- watching ------------------------------------------------------------------------

    def supervise(self, c: Container) -> None:
        """Begin watching a container that runs (after a start, or reattached at start-up)."""
        self._begin_health(c)
        task = asyncio.get_running_loop().create_task(self._watch_exit(c.id))
        self._watchers[c.id] = task
        task.add_done_callback(lambda _: self._watchers.pop(c.id, None))

    async def _watch_exit(self, container_id: str) -> None:
        record: ExitRecord | None
        try:
            record = await self.monitors.client(container_id).wait()
        except ServinError as exc:
            log.warning(
                "lost the monitor of a container",
                extra={"container": container_id, "error": str(exc)},
            )
            record = None
        await self._record_exit(container_id, record)

    async def _record_exit(self, container_id: str, record: ExitRecord | None) -> None:
        self.health.stop(container_id)
        async with self.locks.lock(container_id):
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
                await asyncio.to_thread(recovery.force_delete, self.runner, c)
            else:
                c.state.exit_code = record.exit_code
                c.state.oom_killed = record.oom_killed
                c.state.finished_at_ns = parse_ns_or_zero(record.finished_at) or time.time_ns()
            try:
                await self.networks.detach(c)
            except (ServinError, OSError) as exc:
                log.warning("network cleanup failed", extra={"container": c.id,
                                                             "error": str(exc)})
            c.state.ports = []
            crashpoint("container.exit.before-record")
            await asyncio.to_thread(self.runner.release_rootfs, c)
            await asyncio.to_thread(self.runner.release_volumes, c)
            await asyncio.to_thread(self.store.save_state, c)
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
        self.locks.record_exit(c.id, c.state)
        if c.host_config.auto_remove:
            await self.runner.destroy(c.id, volumes=True)
        elif should_restart(c.host_config.restart_policy, exit_code=c.state.exit_code,
                            restart_count=c.state.restart_count,
                            manually_stopped=c.state.manually_stopped):
            await self._schedule_restart(c)

    # -- pods ----------------------------------------------------------------------------

    async def prepare_pod(self, c: Container) -> None:
        """Before a pod's container starts (a user's start or a restart policy's): the pod's
        cgroup exists and, for a member, the infra runs (a member joins its namespaces)."""
        await asyncio.to_thread(self.pods.ensure_cgroup, c.pod_id)
        infra_id = await asyncio.to_thread(self.pods.infra_of, c.pod_id)
        if not infra_id or infra_id == c.id:
            return
        async with self.locks.lock(infra_id):
            try:
                infra = await asyncio.to_thread(self.store.get, infra_id)
            except NotFound:
                return
            if infra.state.status in (RUNNING, PAUSED):
                return
            self.cancel_restart(infra.id)
            infra.state.manually_stopped = False
            await self.runner.start(infra)
            self.supervise(infra)

    # -- health checks -------------------------------------------------------------------

    def _begin_health(self, c: Container) -> None:
        """Start probing a running container that has a health check."""
        check = resolve_check(c.config.healthcheck, self.runner.image_config(c))
        if check is None:
            return
        runner = HealthRunner(c.id, check, self.probe, self._health_changed(c.id),
                              started_at=c.state.started_at_ns / 1e9)
        runner.status = c.state.health_status or runner.status
        runner.failing_streak = c.state.failing_streak
        self.health.start(runner)

    def _health_changed(
        self, container_id: str
    ) -> Callable[[str, int, list[HealthResult]], Awaitable[None]]:
        async def changed(status: str, streak: int, results: list[HealthResult]) -> None:
            async with self.locks.lock(container_id):
                try:
                    c = await asyncio.to_thread(self.store.get, container_id)
                except NotFound:
                    return
                previous = c.state.health_status
                c.state.health_status = status
                c.state.failing_streak = streak
                c.state.health_log = list(results)
                await asyncio.to_thread(self.store.save_state, c)
            if status != previous:
                self.events.publish("container", f"health_status: {status}", c.id,
                                    name=c.name, image=c.image_ref)

        return changed

    # -- restart policies ----------------------------------------------------------------

    async def _schedule_restart(self, c: Container, *, failed_start: bool = False) -> None:
        # A start that failed ran for no time: the delay keeps doubling (docker's back-off).
        ran_for = 0.0 if failed_start else max(
            0.0, (c.state.finished_at_ns - c.state.started_at_ns) / 1e9)
        delay = self._backoff.setdefault(c.id, Backoff()).next(ran_for)
        c.state.status = RESTARTING
        await asyncio.to_thread(self.store.save_state, c)
        self._restart_later(c.id, delay)

    def _restart_later(self, container_id: str, delay: float) -> None:
        task = asyncio.get_running_loop().create_task(self._restart_after(container_id, delay))
        self._restarts[container_id] = task
        task.add_done_callback(lambda t: self._restarts.get(container_id) is t
                               and self._restarts.pop(container_id, None))

    async def _restart_after(self, container_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        async with self.locks.lock(container_id):
            try:
                c = await asyncio.to_thread(self.store.get, container_id)
            except NotFound:
                return
            if c.state.status != RESTARTING:
                return
            c.state.restart_count += 1
            crashpoint("container.restart.before-start")
            try:
                if c.pod_id:
                    await self.prepare_pod(c)
                await self.runner.start(c)
                self.supervise(c)
                return
            except ServinError as exc:
                log.warning("restart failed", extra={"container": c.id, "error": str(exc)})
                c.state.status = EXITED
                c.state.finished_at_ns = time.time_ns()
                await asyncio.to_thread(self.store.save_state, c)
        if should_restart(c.host_config.restart_policy, exit_code=c.state.exit_code or 128,
                          restart_count=c.state.restart_count,
                          manually_stopped=c.state.manually_stopped):
            await self._schedule_restart(c, failed_start=True)

    def cancel_restart(self, container_id: str) -> bool:
        """Call off a pending policy restart; whether one was pending."""
        task = self._restarts.pop(container_id, None)
        if task is None:
            return False
        task.cancel()
        return True

    async def hold_restarts(self, c: Container) -> None:
        """A user stopped or killed it: no policy restarts it until the next start."""
        self.cancel_restart(c.id)
        async with self.locks.lock(c.id):
            current = await asyncio.to_thread(self.store.get, c.id)
            current.state.manually_stopped = True
            if current.state.status == RESTARTING:
                current.state.status = EXITED
            await asyncio.to_thread(self.store.save_state, current)
            c.state = current.state

    def forget(self, container_id: str) -> None:
        """The container was removed."""
        self._backoff.pop(container_id, None)

    # -- daemon start and stop -----------------------------------------------------------

    async def recover(self) -> None:
        """At daemon start: reattach to live monitors, record exits that happened meanwhile,
        and start what the restart policies say to start."""
        for c in await asyncio.to_thread(self.store.list):
            if await recovery.finish_interrupted(self.runner, c):
                continue
            if c.state.status not in (RUNNING, PAUSED):
                if await recovery.end_stray_monitor(self.runner, c):
                    c.state.error = "the start was interrupted by a daemon restart"
                    await asyncio.to_thread(self.store.save_state, c)
                if c.state.rootfs_mounted:
                    await asyncio.to_thread(self.runner.release_rootfs, c)
                    await asyncio.to_thread(self.store.save_state, c)
                continue
            state_dir = self.monitors.paths(c.id).state_dir
            if c.state.frozen_by_commit:
                await recovery.thaw_after_commit(self.runner, c)
            if await asyncio.to_thread(monitor_alive, state_dir):
                log.info("reattached to a running container", extra={"container": c.id})
                await self.networks.restore(c)
                self.supervise(c)
                continue
            record = await asyncio.to_thread(read_exit_record, state_dir)
            await self._record_exit(c.id, record)
        for c in await asyncio.to_thread(self.store.list):
            if c.state.status == RESTARTING or (
                c.state.status == EXITED and c.state.started_at_ns
                and restart_at_daemon_start(c.host_config.restart_policy,
                                            manually_stopped=c.state.manually_stopped)):
                c.state.manually_stopped = False
                c.state.status = RESTARTING
                await asyncio.to_thread(self.store.save_state, c)
                self._restart_later(c.id, 0)

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

