"""Deleting directory trees off the caller's path: rename aside now, delete in the background.

Removing a container's files (its writable layer, its log) can take tens of milliseconds,
longer for a big upper dir or log. The caller renames the tree to a trash name (atomic, and
the tree is gone from every lookup at once) and hands it to one background thread. A crash
before the thread is done leaves only trash names, which the start-up repair deletes (every
owner of a trash location sweeps it when the daemon starts: ``sweep``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from servin.engine.store.snapshots.mounts import mounts_under, unmount_all

log = logging.getLogger(__name__)

PREFIX = ".trash-"  # the names ``move_aside`` gives; ``sweep`` deletes them


def trash_name(path: Path) -> Path:
    """A fresh trash path next to ``path`` (same directory, so a rename is atomic)."""
    return path.with_name(f"{PREFIX}{path.name}-{uuid.uuid4().hex[:8]}")


def remove_tree(path: Path) -> None:
    """Delete ``path`` (a tree, a file or nothing)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_unmounted(path: Path) -> None:
    """Delete ``path`` after unmounting whatever is mounted below it; a tree with a mount
    that will not go is left alone (deleting through it would reach another filesystem)."""
    inside = mounts_under(path)
    for mount_point in inside:
        with contextlib.suppress(OSError):
            unmount_all(Path(mount_point))
    if inside and mounts_under(path):
        log.warning("not deleting %s: something is still mounted inside", path)
        return
    remove_tree(path)


def sweep(directory: Path) -> int:
    """Delete every trash entry ``move_aside`` left in ``directory`` (unmounting first what
    a crash left mounted inside); how many there were."""
    count = 0
    try:
        entries = [e for e in os.scandir(directory) if e.name.startswith(PREFIX)]
    except FileNotFoundError:
        return 0
    for entry in entries:
        remove_unmounted(Path(entry.path))
        count += 1
    return count


class Trash:
    """One background thread running deletions, in the order they were given."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pending = 0
        self._idle = threading.Condition(self._lock)

    def move_aside(self, path: Path, remove: Callable[[Path], None] = remove_tree
                   ) -> Path | None:
        """Rename ``path`` to a trash name and queue ``remove`` of it; the new path (None if
        ``path`` did not exist)."""
        target = trash_name(path)
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return None
        self.submit(lambda: remove(target))
        return target

    def submit(self, work: Callable[[], None]) -> None:
        """Queue ``work`` (the deletion of something already out of the way)."""
        with self._lock:
            self._pending += 1
            if self._thread is None:
                # A daemon thread: what it has not deleted at exit is swept at the next start.
                self._thread = threading.Thread(target=self._run, name="trash", daemon=True)
                self._thread.start()
        self._queue.put(work)

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is deleted; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        while True:
            work = self._queue.get()
            try:
                work()
            except Exception:  # never let one failure stop later deletions
                log.exception("background deletion failed")
            with self._idle:
                self._pending -= 1
                if self._pending == 0:
                    self._idle.notify_all()
