"""Exec: extra processes in running containers (docker's exec create / start / inspect).

An exec is created as a record (what to run, how), then started once. Starting builds an
OCI ``process`` object from the container's own bundle (``config.json``: its capabilities,
no_new_privs, rlimits, user, env and cwd) with the exec's overrides, and hands it to the
container's monitor, which runs it through the container's OCI runtime (joining every
namespace, the cgroup and the seccomp filter) and owns its stdio, pty and exit status.

Records live in the daemon's memory only (as docker's do), bounded: the oldest ended ones
are forgotten first. Events, on the container, as docker names them: ``exec_create: CMD``,
``exec_start: CMD``, ``exec_die`` (with ``exitCode``), each with its ``execID``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal as signal_module
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servin.engine.containers.detachkeys import parse_detach_keys
from servin.engine.containers.model import PAUSED, RUNNING, Container
from servin.engine.containers.monitors import Monitors
from servin.engine.containers.store import ContainerStore
from servin.engine.containers.streams import STDERR, STDOUT, StreamSession
from servin.engine.crashpoints import crashpoint
from servin.engine.events import EventBus
from servin.engine.runtime.monitor.client import Attachment, MonitorClient
from servin.engine.runtime.userdb import resolve_user
from servin.errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ServinError,
    Unavailable,
)

log = logging.getLogger(__name__)

MAX_RECORDS = 1024  # exec records kept; the oldest ended ones go first
EXIT_NOT_FOUND = 127  # docker's codes for a command that cannot be found / invoked
EXIT_CANNOT_INVOKE = 126
PROBE_OUTPUT_LIMIT = 64 * 1024
BUNDLE_CACHE_SIZE = 256  # containers whose bundle ``process`` is kept parsed


@dataclass
class ExecRecord:
    """One exec: what it runs and, once started, its process and exit code."""

    id: str
    container_id: str
    cmd: list[str]
    env: list[str] = field(default_factory=list)
    user: str = ""
    working_dir: str = ""
    tty: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = True
    attach_stderr: bool = True
    privileged: bool = False
    detach_keys: str = ""
    detachable: bool = True  # False: stdin is never scanned for detach keys
    created_ns: int = 0
    started: bool = False
    running: bool = False
    pid: int = 0
    exit_code: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)


class ExecService:
    """Creates, starts, resizes and reports execs; the monitors run them."""

    def __init__(self, store: ContainerStore, monitors: Monitors, events: EventBus) -> None:
        self.store = store
        self.monitors = monitors
        self.events = events
        self._records: dict[str, ExecRecord] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._bundles = BundleProcessCache()

    # -- records -------------------------------------------------------------------------

    async def inspect(self, exec_id: str) -> ExecRecord:
        """An exec by its full ID (or a unique prefix)."""
        return self.get(exec_id)

    def running_in(self, container_id: str) -> list[str]:
        """The IDs of the execs running in a container."""
        return [r.id for r in self._records.values()
                if r.container_id == container_id and r.running]

    def get(self, exec_id: str) -> ExecRecord:
        """An exec by its full ID (or a unique prefix)."""
        record = self._records.get(exec_id)
        if record is not None:
            return record
        found = [r for k, r in self._records.items() if exec_id and k.startswith(exec_id)]
        if len(found) == 1:
            return found[0]
        raise NotFound(f"No such exec instance: {exec_id}")

    def _remember(self, record: ExecRecord) -> None:
        self._records[record.id] = record
        excess = len(self._records) - MAX_RECORDS
        if excess > 0:
            ended = [k for k, r in self._records.items() if not r.running and r.started]
            for key in ended[:excess]:
                del self._records[key]

    @staticmethod
    def _check_running(c: Container) -> None:
        if c.state.status == PAUSED:
            raise Conflict(f"container {c.id} is paused, unpause the container before exec")
        if c.state.status != RUNNING:
            raise Conflict(f"container {c.id} is not running")

    # -- create, start -------------------------------------------------------------------

    async def create(
        self,
        container: str,
        cmd: list[str],
        *,
        env: list[str] | None = None,
        user: str = "",
        working_dir: str = "",
        tty: bool = False,
        attach_stdin: bool = False,
        attach_stdout: bool = True,
        attach_stderr: bool = True,
        privileged: bool = False,
        detach_keys: str = "",
        detachable: bool = True,
    ) -> ExecRecord:
        """Record an exec for a running container (nothing runs until ``start``).

        ``detachable=False``: a terminal's stdin is passed through whole, never scanned for
        detach keys (the CRI's clients have none)."""
        c = await asyncio.to_thread(self.store.resolve, container)
        self._check_running(c)
        if not cmd or not cmd[0]:
            raise InvalidArgument("no exec command specified")
        env = list(env or [])
        for item in env:
            if not item or item.startswith("="):
                raise InvalidArgument(f"invalid environment variable: {item!r}")
        if working_dir and not working_dir.startswith("/"):
            raise InvalidArgument(f"the working directory {working_dir!r} is not absolute")
        parse_detach_keys(detach_keys)
        record = ExecRecord(
            id=secrets.token_hex(32), container_id=c.id, cmd=list(cmd), env=env,
            user=user, working_dir=working_dir, tty=tty, attach_stdin=attach_stdin,
            attach_stdout=attach_stdout, attach_stderr=attach_stderr, privileged=privileged,
            detach_keys=detach_keys, detachable=detachable, created_ns=time.time_ns(),
        )
        self._remember(record)
        self.events.publish("container", f"exec_create: {' '.join(record.cmd)}", c.id,
                            name=c.name, image=c.image_ref, execID=record.id)
        return record

    async def start(
        self, exec_id: str, *, detach: bool = False, rows: int = 0, cols: int = 0
    ) -> StreamSession | None:
        """Run the exec; its stream session unless ``detach`` (then None: it runs on, and
        ``inspect`` tells how it ends).

        A command that cannot be found raises NotFound (its exit code is 127), one that
        cannot be invoked PermissionDenied (126).
        """
        record = self.get(exec_id)
        attachment = await self._start(record, detach=detach, rows=rows, cols=cols)
        if attachment is None:
            return None
        monitor = self.monitors.client(record.container_id)
        streams = frozenset(s for s, on in ((STDOUT, record.attach_stdout),
                                            (STDERR, record.attach_stderr)) if on)

        async def resize(rows: int, cols: int) -> None:
            await self.resize(record.id, rows, cols)

        async def exit_code() -> int:
            return await self.wait(record.id)

        return StreamSession(
            attachment, stdin=record.attach_stdin,
            detach_keys=(parse_detach_keys(record.detach_keys)
                         if record.tty and record.detachable else None),
            resize=resize, detach=monitor.detach, exit_code=exit_code, streams=streams,
        )

    async def _start(self, record: ExecRecord, *, detach: bool, rows: int,
                     cols: int) -> Attachment | None:
        if record.started:
            raise Conflict(f"exec {record.id} has already been started")
        record.started = True  # set before the first await: a second start is refused
        try:
            # One thread hop for both blocking reads (each hop costs the loop a wake-up).
            c, process = await asyncio.to_thread(self._prepare, record, rows, cols)
        except BaseException:
            record.started = False  # it never ran: it may be started once the cause is gone
            raise
        monitor = self.monitors.client(c.id)
        try:
            pid, attachment = await monitor.exec(
                record.id, process, stdin=record.attach_stdin and not detach, attach=not detach
            )
        except ServinError as exc:
            record.exit_code = (EXIT_NOT_FOUND if isinstance(exc, NotFound) else
                                EXIT_CANNOT_INVOKE if isinstance(exc, PermissionDenied) else 1)
            record.done.set()
            raise
        record.pid = pid
        record.running = True
        crashpoint("exec.after-start")
        self.events.publish("container", f"exec_start: {' '.join(record.cmd)}", c.id,
                            name=c.name, image=c.image_ref, execID=record.id)
        task = asyncio.get_running_loop().create_task(self._watch(c, record, monitor))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return attachment

    async def _watch(self, c: Container, record: ExecRecord, monitor: MonitorClient) -> None:
        try:
            code = await monitor.exec_wait(record.id)
        except ServinError as exc:
            # The monitor went away with its container: the exec died with it.
            log.info("exec ended with its container", extra={"exec": record.id,
                                                               "error": str(exc)})
            code = 128 + signal_module.SIGKILL
        record.exit_code = code
        record.running = False
        record.done.set()
        self.events.publish("container", "exec_die", c.id, name=c.name, image=c.image_ref,
                            execID=record.id, exitCode=str(code))

    def _prepare(self, record: ExecRecord, rows: int,
                 cols: int) -> tuple[Container, dict[str, Any]]:
        """The running container and the exec's OCI process (blocking)."""
        c = self.store.get(record.container_id)
        self._check_running(c)
        return c, self._process(c, record, rows, cols)

    def _process(self, c: Container, record: ExecRecord, rows: int, cols: int) -> dict[str, Any]:
        """The exec's OCI process: the container's, with the exec's overrides (blocking)."""
        paths = self.monitors.paths(c.id)
        # A shallow copy: below, nested values are replaced, never changed in place.
        process = dict(self._bundles.process(c.id, paths.bundle_config))
        env = _merge_env(list(process.get("env") or []), record.env)
        if record.user:
            user = resolve_user(paths.rootfs, record.user, list(c.host_config.group_add),
                                image_groups=not c.host_config.strict_groups)
            process["user"] = {
                **(process.get("user") or {}),
                "uid": user.uid,
                "gid": user.gid,
                "additionalGids": list(user.additional_gids),
            }
            if not any(e.startswith("HOME=") for e in record.env):
                env = _merge_env(env, [f"HOME={user.home}"])
        if record.tty and not any(e.startswith("TERM=") for e in env):
            env.append("TERM=xterm")
        process["args"] = list(record.cmd)
        process["env"] = env
        process["cwd"] = record.working_dir or process.get("cwd") or "/"
        process["terminal"] = record.tty
        process.pop("consoleSize", None)
        if record.tty and rows and cols:
            process["consoleSize"] = {"height": rows, "width": cols}
        if record.privileged:
            from servin.engine.linux.capabilities import CAPABILITIES, bounding_set, names_of

            # All the daemon itself holds (runc refuses a capability the host withholds).
            available = set(names_of(bounding_set()))
            every = [c for c in CAPABILITIES if c in available]
            process["capabilities"] = {
                "bounding": every, "effective": every, "permitted": every,
                "inheritable": [], "ambient": [],
            }
        return process

    # -- while it runs -------------------------------------------------------------------

    async def resize(self, exec_id: str, rows: int, cols: int) -> None:
        """Resize the exec's terminal (ignored for an exec without one, or one that ended)."""
        record = self.get(exec_id)
        if not record.tty or not record.running:
            return
        with contextlib.suppress(NotFound):
            await self.monitors.client(record.container_id).exec_resize(record.id, rows, cols)

    async def kill(self, exec_id: str, sig: int = signal_module.SIGKILL) -> None:
        """Signal the started exec's process (nothing if it has ended already)."""
        record = self.get(exec_id)
        if not record.running:
            return
        # It ended meanwhile, or its monitor went with the container (Unavailable).
        with contextlib.suppress(NotFound, Conflict, Unavailable):
            await self.monitors.client(record.container_id).exec_kill(record.id, sig)

    async def wait(self, exec_id: str) -> int:
        """Wait until the started exec has ended; its exit code."""
        record = self.get(exec_id)
        await record.done.wait()
        assert record.exit_code is not None
        return record.exit_code

    async def probe(self, container_id: str, argv: list[str], timeout: float) -> tuple[int, str]:
        """Run ``argv`` in the container and collect its output (health checks).

        Past ``timeout`` seconds the process is killed and TimeoutError raised. Output is cut
        at PROBE_OUTPUT_LIMIT bytes.
        """
        record = await self.create(container_id, argv, attach_stdin=False)
        attachment = await self._start(record, detach=False, rows=0, cols=0)
        assert attachment is not None
        output = bytearray()

        async def collect() -> int:
            async for _, data in attachment:
                if len(output) < PROBE_OUTPUT_LIMIT:
                    output.extend(data[: PROBE_OUTPUT_LIMIT - len(output)])
            return await self.wait(record.id)

        try:
            code = await asyncio.wait_for(collect(), timeout)
        except TimeoutError:
            with contextlib.suppress(ServinError):
                await self.monitors.client(record.container_id) \
                    .exec_kill(record.id, signal_module.SIGKILL)
            raise
        finally:
            await attachment.close()
        return code, output.decode(errors="replace")

    async def shutdown(self) -> None:
        """Stop watching execs (they keep running under their monitors)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task


class BundleProcessCache:
    """The ``process`` object of each container's bundle, parsed once per version of it.

    A version is the file's identity and size and modification time: the bundle is
    rewritten (a new inode, by an atomic replace) whenever the container is created again,
    so a stale entry is never used. Only the containers most recently exec'd into are kept.
    """

    def __init__(self, size: int = BUNDLE_CACHE_SIZE) -> None:
        self.size = size
        self._entries: dict[str, tuple[tuple[int, int, int, int], dict[str, Any]]] = {}

    def process(self, container_id: str, config_path: Path) -> dict[str, Any]:
        """The bundle's ``process`` (shared: callers must not change it); Conflict if the
        bundle cannot be read."""
        try:
            st = os.stat(config_path)
            version = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            entry = self._entries.pop(container_id, None)
            if entry is None or entry[0] != version:
                with open(config_path, "rb") as file:
                    config = json.load(file)
                    # The version of what was read (a replace between stat and open is seen).
                    st = os.fstat(file.fileno())
                version = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
                process = config.get("process") or {}
                if not isinstance(process, dict):
                    raise ValueError("its process is not an object")
                entry = (version, process)
        except (OSError, ValueError) as exc:
            raise Conflict(f"container {container_id} has no readable bundle: {exc}") from None
        self._entries[container_id] = entry  # last, as the most recently used
        while len(self._entries) > self.size:
            del self._entries[next(iter(self._entries))]
        return entry[1]


def _merge_env(base: list[str], overrides: list[str]) -> list[str]:
    """``base`` with each ``KEY=VALUE`` of ``overrides`` replacing or adding its key."""
    out = list(base)
    for item in overrides:
        key = item.partition("=")[0]
        out = [e for e in out if e.partition("=")[0] != key]
        out.append(item)
    return out
