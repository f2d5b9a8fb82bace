"""Monitors the container records do not account for, and what a lost monitor leaves.

A daemon killed in the middle of ``start`` (a user's, or a restart policy's) leaves a monitor
that the record does not know of: the record still says created, exited or restarting while
the monitor waits for ``start`` (or already ran it). Such a monitor holds the container's
state directory, so every later start would fail with "already has a running monitor". The
daemon ends it, at start-up and before every start, and lets the restart policy carry on.

A monitor that dies on its own (killed, OOM) leaves its container running unsupervised:
nobody logs its output or records its exit. The daemon ends the container through the
runtime and records the exit, as containerd does when a shim dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from servin.engine.config import DaemonConfig
from servin.engine.containers.model import PAUSED, REMOVING, RUNNING, Container
from servin.engine.runtime.monitor.protocol import MONITOR_PID, RuntimeConfig, monitor_alive
from servin.engine.runtime.monitor.runtimes import make_runtime
from servin.engine.store.snapshots import Snapshotter
from servin.engine.store.snapshots.mounts import is_mount_point
from servin.errors import ServinError

if TYPE_CHECKING:
    from servin.engine.containers.runner import Runner

log = logging.getLogger(__name__)

END_TIMEOUT = 15.0  # how long a monitor told to end its container may take to go


async def end_stray_monitor(runner: Runner, c: Container) -> bool:
    """End the monitor left in the state dir of a container whose record says it does not
    run (a start the daemon's death interrupted); True if there was one.

    Its container is killed, the monitor is waited for (or killed), the runtime's state,
    links and volume mounts are released. The record is left as it was for the caller.
    """
    paths = runner.monitors.paths(c.id)
    if not await asyncio.to_thread(monitor_alive, paths.state_dir):
        return False
    client = runner.monitors.client(c.id)
    try:
        stopped = (await client.state()).status == "stopped"
    except (ServinError, OSError):
        stopped = False
    # The last run's monitor, its exit recorded, still draining its attach clients (a few
    # seconds at most): not stray, only to be waited for.
    if stopped and await client.wait_gone(END_TIMEOUT):
        return False
    log.warning("ending a monitor left by an interrupted start",
                extra={"container": c.id, "status": c.state.status})
    with contextlib.suppress(ServinError, OSError):
        await client.kill(signal.SIGKILL, all=True)
    if not await client.wait_gone(END_TIMEOUT):
        # Not answering: end the monitor itself; the runtime delete below ends its container.
        await asyncio.to_thread(_kill_monitor, paths.state_dir)
        await client.wait_gone(5.0)
    await asyncio.to_thread(force_delete, runner, c)
    with contextlib.suppress(ServinError, OSError):
        await runner.networks.detach(c)
    await asyncio.to_thread(runner.release_volumes, c)
    return True


async def finish_interrupted(runner: Runner, c: Container) -> bool:
    """At start: a create or a removal that a crash interrupted is finished by removing the
    container (records marked ``creating`` or ``removing``); True if it was one."""
    if not (c.state.creating or c.state.status == REMOVING):
        return False
    log.warning("finishing the removal of a container a crash left half made or half removed",
                extra={"container": c.id, "status": c.state.status,
                       "creating": c.state.creating})
    await end_stray_monitor(runner, c)
    with contextlib.suppress(ServinError, OSError):
        await runner.networks.detach(c)
    await asyncio.to_thread(runner.remove_files, c)
    await asyncio.to_thread(runner.store.delete, c.id)
    if c.state.creating:
        # Anonymous volumes made for it (named ones may be anybody's: kept).
        await asyncio.to_thread(runner.remove_anonymous_volumes, c)
    return True


async def thaw_after_commit(runner: Runner, c: Container) -> None:
    """At start: thaw a container that a commit the crash interrupted had frozen (a user's
    pause is not marked so and stays)."""
    log.warning("thawing a container frozen by an interrupted commit", extra={"container": c.id})
    try:
        await asyncio.to_thread(runner.monitors.runtime(c).resume, c.id)
    except (ServinError, OSError) as exc:
        log.warning("cannot thaw the container", extra={"container": c.id, "error": str(exc)})
    c.state.frozen_by_commit = False
    if c.state.status == PAUSED:
        c.state.status = RUNNING
    await asyncio.to_thread(runner.store.save_state, c)


def force_delete(runner: Runner, c: Container) -> None:
    """Kill whatever still runs of the container and delete its runtime state and cgroup
    (blocking; nothing to do is fine)."""
    with contextlib.suppress(ServinError, OSError):
        runtime = runner.monitors.runtime(c)
        with contextlib.suppress(ServinError, OSError):
            runtime.resume(c.id)  # frozen processes would not die of the kill below
        runtime.delete(c.id, force=True)


def remove_unrecorded(config: DaemonConfig, snapshots: Snapshotter, known: set[str]) -> None:
    """At start, before anything runs: container directories no record owns (a create or a
    removal a crash interrupted) are deleted, with whatever still runs from them (blocking)."""
    for directory in _subdirs(config.root / "containers"):
        if directory.name not in known:
            log.warning("removing a container directory without a record",
                        extra={"path": str(directory)})
            shutil.rmtree(directory, ignore_errors=True)
    for state_dir in _subdirs(config.exec_root / "containers"):
        if state_dir.name in known:
            continue
        log.warning("removing container state without a record", extra={"path": str(state_dir)})
        _kill_monitor(state_dir)
        # Whatever the runtime still holds of it (processes, cgroup, state).
        for runtime_dir in _subdirs(config.exec_root / "runtime"):
            if not (runtime_dir / state_dir.name).exists():
                continue
            name = runtime_dir.name
            binary = None if name == "native" else (config.runtimes.get(name)
                                                    or shutil.which(name))
            with contextlib.suppress(ServinError, OSError):
                make_runtime(RuntimeConfig(name=name, binary=binary, root=str(runtime_dir)),
                             state_dir).delete(state_dir.name, force=True)
        with contextlib.suppress(ServinError, OSError):
            snapshots.unmount(state_dir / "rootfs")
        if not is_mount_point(state_dir / "rootfs"):
            shutil.rmtree(state_dir, ignore_errors=True)


def _subdirs(path: Path) -> list[Path]:
    try:
        with os.scandir(path) as it:
            return [Path(e.path) for e in it if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def _kill_monitor(state_dir: Path) -> None:
    """SIGKILL the monitor ``monitor.pid`` names, if it is still that monitor."""
    directory = state_dir
    if not monitor_alive(directory):
        return
    try:
        pid = int((directory / MONITOR_PID).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
