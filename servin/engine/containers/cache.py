"""The in-memory, versioned view of every container record (what listings read).

The SQLite store stays the source of truth; ``ContainerStore`` fills this view when it opens
and applies each of its writes here right after the write commits, under one lock that also
serialises the writes, so the view changes in the order the database did. Listings (``ps -a``,
the Docker API's ``/containers/json``, the CRI's ListContainers, which the kubelet sends every
second) read it without touching SQLite or decoding JSON.

Every entry holds a private copy decoded from the document that was written (never the
writer's object, which its caller keeps mutating) and a version taken from one counter: it
changes whenever the container's document, state or name changes, so a door may cache what it
builds from an entry (the CRI's serialized messages) under (ID, version).
Entries are shared, read-only snapshots: callers must not mutate them.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from servin.engine.containers.model import Container


@dataclass(frozen=True, slots=True)
class ViewEntry:
    """One container as last written, and the version of that write."""

    container: Container
    version: int


class ContainerView:
    """Container ID -> ``ViewEntry``, newest first on demand; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, ViewEntry] = {}
        self._versions = itertools.count(1)
        # The entries newest first, rebuilt on the first read after a write.
        self._ordered: tuple[ViewEntry, ...] | None = ()

    def fill(self, containers: Iterable[Container]) -> None:
        """Replace the whole view (at start, from the store)."""
        with self._lock:
            self._entries = {c.id: ViewEntry(c, next(self._versions)) for c in containers}
            self._ordered = None

    def put(self, c: Container) -> None:
        """Record ``c`` (a private copy the caller no longer touches) with a new version."""
        with self._lock:
            self._entries[c.id] = ViewEntry(c, next(self._versions))
            self._ordered = None

    def remove(self, container_id: str) -> None:
        """Forget a container."""
        with self._lock:
            if self._entries.pop(container_id, None) is not None:
                self._ordered = None

    def entries(self) -> tuple[ViewEntry, ...]:
        """Every entry, newest first (by creation time, then ID, as the store orders)."""
        with self._lock:
            if self._ordered is None:
                self._ordered = tuple(sorted(
                    self._entries.values(),
                    key=lambda e: (e.container.created_ns, e.container.id), reverse=True))
            return self._ordered

    def get(self, container_id: str) -> ViewEntry | None:
        """One entry by full ID (the store derives the next copy from its container)."""
        with self._lock:
            return self._entries.get(container_id)
