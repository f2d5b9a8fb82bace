"""Per-container coordination shared by the container services (one event loop, no threads).

A container's lock serialises state changes (start, exit, pause, update, remove); its exit
event is set each time its process ends, so stop, wait and remove can wait for the monitor's
report; the last exit state is kept so a waiter still learns the exit code of a container
removed right away (``--rm``).
"""

from __future__ import annotations

import asyncio

from servin.engine.containers.model import ContainerState


class ContainerLocks:
    """Locks, exit events and last exits, by container ID."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._exited: dict[str, asyncio.Event] = {}
        self._last_exit: dict[str, ContainerState] = {}

    def lock(self, container_id: str) -> asyncio.Lock:
        """The lock that serialises the container's state changes."""
        return self._locks.setdefault(container_id, asyncio.Lock())

    def exit_event(self, container_id: str) -> asyncio.Event:
        """Set when the container's process has ended (cleared when it starts)."""
        return self._exited.setdefault(container_id, asyncio.Event())

    def record_exit(self, container_id: str, state: ContainerState) -> None:
        """Remember the state a container had when it exited, and wake its waiters."""
        self._last_exit[container_id] = state.copy()
        self.exit_event(container_id).set()

    def last_exit(self, container_id: str) -> ContainerState | None:
        """The state at the container's last exit, if it exited since the daemon started."""
        return self._last_exit.get(container_id)

    def forget(self, container_id: str) -> None:
        """Drop a removed container's lock and event (its last exit stays for waiters)."""
        self._locks.pop(container_id, None)
        self._exited.pop(container_id, None)
