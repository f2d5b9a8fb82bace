"""What both cgroup drivers share: the interface, the stats record and file helpers.

Only the standard library is imported here: the per-container monitor imports this package
and its memory footprint matters.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from servin.errors import Conflict, Internal, InvalidArgument, NotFound, ServinError

log = logging.getLogger("servin.engine.linux.cgroups")

# Reading a limit at or above this means "no limit" (the kernels report the page counter's
# maximum, which differs by page size, rather than -1).
UNLIMITED_THRESHOLD = 1 << 62

# How long destroy() and freeze() wait for the kernel before giving up.
DEFAULT_TIMEOUT = 10.0


@dataclass
class CgroupStats:
    """One sample of a cgroup's counters. Sizes are bytes, times nanoseconds.

    ``None`` means the kernel does not report the value (or, for a limit, that there is no
    limit).
    """

    cpu_usage_ns: int = 0
    cpu_user_ns: int = 0
    cpu_system_ns: int = 0
    cpu_periods: int = 0
    cpu_throttled_periods: int = 0
    cpu_throttled_ns: int = 0
    memory_usage: int = 0
    memory_limit: int | None = None
    memory_max_usage: int | None = None
    memory_cache: int = 0
    memory_inactive_file: int = 0
    memory_swap_usage: int | None = None
    memory_stat: dict[str, int] = field(default_factory=dict)
    pids_current: int = 0
    pids_limit: int | None = None
    blkio_read_bytes: int = 0
    blkio_write_bytes: int = 0
    blkio_read_ops: int = 0
    blkio_write_ops: int = 0
    oom_kill: int = 0
    oom_events: int = 0

    @property
    def memory_usage_no_cache(self) -> int:
        """Usage minus the reclaimable page cache, the figure ``docker stats`` shows."""
        return max(self.memory_usage - self.memory_inactive_file, 0)


class Cgroup(ABC):
    """One container's cgroup, in every hierarchy the driver uses."""

    version: ClassVar[int]

    def __init__(self, path: str) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"

    @abstractmethod
    def add_process(self, pid: int) -> None:
        """Move process ``pid`` (all its threads) into this cgroup."""

    @abstractmethod
    def update(self, resources: Mapping[str, Any]) -> None:
        """Apply an OCI ``linux.resources`` object; fields left out are left alone."""

    @abstractmethod
    def freeze(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Freeze every process, returning once the kernel reports them frozen."""

    @abstractmethod
    def thaw(self) -> None:
        """Let frozen processes run again."""

    @abstractmethod
    def frozen(self) -> bool:
        """Whether the cgroup is (completely) frozen."""

    @abstractmethod
    def pids(self) -> list[int]:
        """The processes in this cgroup and the cgroups below it."""

    @abstractmethod
    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to every process in the cgroup and below."""

    @abstractmethod
    def destroy(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Kill what is left, wait for it to go, remove the cgroup everywhere.

        Idempotent: a cgroup that is already gone is not an error.
        """

    @abstractmethod
    def stats(self) -> CgroupStats:
        """The current counters."""

    @abstractmethod
    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer has killed a process of this cgroup."""


class CgroupDriver(ABC):
    """Creates and opens cgroups for one cgroup version on this host."""

    version: ClassVar[int]

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def create(self, path: str, resources: Mapping[str, Any] | None = None) -> Cgroup:
        """Create the cgroup ``path`` (an OCI ``cgroupsPath``) and apply ``resources``.

        An existing cgroup is reused (as the OCI runtimes do). On failure, directories this
        call created are removed again.
        """
        created: list[Path] = []
        try:
            self._make(split_path(path), created, resources)
            cgroup = self._cgroup(path)
            if resources:
                cgroup.update(resources)
            return cgroup
        except BaseException:
            undo_dirs(created, self.remove_dir, f"cgroup v{self.version}")
            raise

    def open(self, path: str) -> Cgroup:
        """The existing cgroup ``path``; raises ``NotFound`` when there is none."""
        if not self.exists(path):
            raise NotFound(f"cgroup {path} does not exist")
        return self._cgroup(path)

    @abstractmethod
    def exists(self, path: str) -> bool:
        """Whether the cgroup ``path`` exists."""

    @abstractmethod
    def _make(self, parts: list[str], created: list[Path],
              resources: Mapping[str, Any] | None) -> None:
        """Make the cgroup's directories (appending new ones to ``created``) and whatever
        the version needs around them."""

    @abstractmethod
    def _cgroup(self, path: str) -> Cgroup:
        """The cgroup object of an existing ``path``."""

    def make_dir(self, path: Path) -> None:
        """mkdir one cgroup (a seam for tests, whose fake tree has no kernel behind it)."""
        os.mkdir(path, 0o755)

    def remove_dir(self, path: Path) -> None:
        """rmdir one cgroup (a seam for tests, like ``make_dir``)."""
        os.rmdir(path)


def split_path(path: str) -> list[str]:
    """The components of an OCI ``cgroupsPath``, relative to the hierarchy root.

    Absolute and relative paths are both taken from the root of the hierarchy; ``..`` is
    refused so that a spec cannot escape it.
    """
    if not isinstance(path, str) or not path.strip("/"):
        raise InvalidArgument(f"cgroup path must name a cgroup below the root, not {path!r}")
    parts = [p for p in path.split("/") if p and p != "."]
    if any(p == ".." for p in parts):
        raise InvalidArgument(f"cgroup path must not contain '..': {path!r}")
    return parts


def make_dirs(start: Path, parts: list[str], created: list[Path],
              make: Callable[[Path], None],
              then: Callable[[Path, Path], None] | None = None) -> Path:
    """Create each of ``parts`` below ``start`` (existing ones are fine); return the leaf.

    New directories are appended to ``created`` so a failure can undo exactly them;
    ``then(parent, child)`` runs for every level (v1's cpuset copies its parent's values).
    """
    current = start
    for part in parts:
        parent, current = current, current / part
        try:
            make(current)
            created.append(current)
        except FileExistsError:
            pass
        except OSError as exc:
            raise Internal(f"cannot create cgroup {current}: {exc.strerror}") from exc
        if then is not None:
            then(parent, current)
    return current


def undo_dirs(created: list[Path], remove: Callable[[Path], None], label: str) -> None:
    """Remove what ``make_dirs`` created, deepest first, logging what cannot go."""
    for directory in reversed(created):
        try:
            remove(directory)
        except OSError as exc:
            log.warning("%s: cannot undo %s: %s", label, directory, exc.strerror)


def error_for(exc: OSError, what: str) -> ServinError:
    """A typed error for a failed cgroup file operation."""
    message = f"{what}: {exc.strerror or exc}"
    if exc.errno in (errno.EINVAL, errno.ERANGE, errno.EOVERFLOW):
        return InvalidArgument(message)
    if exc.errno == errno.EBUSY:
        return Conflict(message)
    if exc.errno == errno.ENOENT:
        return NotFound(message)
    return Internal(message)


def write_file(path: Path, value: str | int) -> None:
    """Write one value to a cgroup control file (no O_CREAT: the kernel owns the files)."""
    data = str(value).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except OSError as exc:
        raise error_for(exc, f"cannot open {path}") from exc
    try:
        os.write(fd, data)
    except OSError as exc:
        raise error_for(exc, f"cannot write {value!r} to {path}") from exc
    finally:
        os.close(fd)


def read_file(path: Path) -> str:
    """The content of a cgroup file, stripped."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as exc:
        raise error_for(exc, f"cannot read {path}") from exc


def read_optional(path: Path) -> str | None:
    """The content of a cgroup file, or None when the kernel does not provide it."""
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ENODEV, errno.EOPNOTSUPP, errno.ENOTSUP):
            return None
        raise error_for(exc, f"cannot read {path}") from exc


def read_int(path: Path) -> int | None:
    """A single-number file; None if absent, "max" or at the kernel's "no limit" value."""
    text = read_optional(path)
    if text is None or text == "max" or text == "":
        return None
    value = int(text)
    return None if value >= UNLIMITED_THRESHOLD else value


def read_flat_keyed(path: Path) -> dict[str, int]:
    """A "key value" per line file (memory.stat, cpu.stat, memory.events, ...)."""
    text = read_optional(path)
    result: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                result[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return result


def read_pids(path: Path) -> list[int]:
    """The PIDs in a cgroup.procs file (empty if the cgroup vanished)."""
    text = read_optional(path)
    return [int(line) for line in (text or "").split()]


def walk_dirs(top: Path) -> Iterator[Path]:
    """``top`` and every cgroup below it, deepest first (the order rmdir needs)."""
    try:
        entries = list(os.scandir(top))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from walk_dirs(Path(entry.path))
    yield top


def remove_tree(
    top: Path, deadline: float, rmdir: Callable[[Path], None] = os.rmdir
) -> None:
    """rmdir ``top`` and the cgroups below it, retrying while the kernel says busy."""
    for directory in walk_dirs(top):
        while True:
            try:
                rmdir(directory)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise error_for(exc, f"cannot remove cgroup {directory}") from exc
                time.sleep(0.01)


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.005) -> bool:
    """Poll ``check`` until it is true or ``timeout`` passes; return its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
        interval = min(interval * 2, 0.05)


def signal_pids(pids: list[int], sig: int) -> None:
    """Send ``sig`` to each PID, ignoring processes that are already gone."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue


def optional_int(resources: Mapping[str, Any], key: str, where: str) -> int | None:
    """An integer field of an OCI resources object (None when absent or null)."""
    value = resources.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{where}.{key} must be an integer, not {value!r}")
    return value


def section(resources: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A sub-object of an OCI resources object (empty when absent)."""
    value = resources.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"resources.{key} must be an object")
    return value


def device_list(resources: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    """The ``devices`` list of a resources object, or None when absent."""
    value = resources.get("devices")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(d, Mapping) for d in value):
        raise InvalidArgument("resources.devices must be a list of objects")
    return value
