"""What the container services need from the rest of the core, as protocols.

The engine passes the network and volume services in at construction; these protocols name
the part of them the container services use (and what a test double must provide).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from servin.engine.containers.model import Container, PublishedPort


class ContainerNetworking(Protocol):
    """Container endpoints, links, published ports and DNS names (NetworkService)."""

    def validate(self, c: Container, image: dict[str, Any]) -> None:
        """Refuse at create what attaching would refuse at start (blocking)."""

    def allocate(self, c: Container) -> object:
        """Give a new container its addresses (blocking); all or none."""

    def addressing(self, c: Container) -> tuple[str, str]:
        """The primary address and the embedded DNS server (blocking)."""

    async def attach(self, c: Container, pid: int,
                     image: dict[str, Any]) -> list[PublishedPort]:
        """Links, ports and names for a just-spawned container; the ports it publishes."""

    async def detach(self, c: Container) -> None:
        """The container stopped: let its links, ports and names go."""

    async def restore(self, c: Container) -> None:
        """At daemon start, for a container still running: its ports and names again."""

    async def renamed(self, old: Container, new: Container) -> None:
        """A running container has a new name."""


class VolumeRecord(Protocol):
    """What the container services read of a volume."""

    name: str
    mountpoint: str
    anonymous: bool


class ContainerVolumes(Protocol):
    """Named and anonymous volumes as containers use them (blocking calls: VolumeManager)."""

    def create(self, name: str = "", driver: str = "", options: dict[str, str] | None = None,
               labels: dict[str, str] | None = None, *, anonymous: bool = False) -> Any:
        """Create a volume, or return the existing one of that name."""

    def remove(self, name: str, *, force: bool = False) -> None:
        """Delete a volume no container uses."""

    def find(self, name: str) -> VolumeRecord | None:
        """A volume by name, or None."""

    def in_use(self, name: str) -> list[Any]:
        """The containers referencing the volume."""

    def acquire(self, name: str) -> Path:
        """The host directory to bind for a starting container."""

    def release(self, names: list[str], stopping: str) -> None:
        """Container ``stopping`` stopped: unmount volumes nobody else runs with."""

    def is_empty(self, name: str) -> bool:
        """Whether the volume holds no files."""


class PodMembership(Protocol):
    """What the container services ask of pods (blocking calls: pods.members.PodMembers)."""

    def member_request(self, request: Any) -> Any:
        """The ``CreateRequest`` of a pod member with the pod's namespaces, cgroup parent,
        hostname and DNS filled in; InvalidArgument for options a member cannot have,
        NotFound for an unknown pod."""

    def infra_of(self, pod_id: str) -> str:
        """The pod's infra container ID ('' for none or no such pod)."""

    def check_remove(self, c: Container) -> None:
        """Conflict if ``c`` is the infra of a pod that is not being removed."""

    def ensure_cgroup(self, pod_id: str) -> None:
        """Make the pod's cgroup (with its limits) if it is missing (after a reboot)."""
