"""What the core answers about containers: list rows and inspect details.

A door turns these into its wire format (servin.v1 messages, the Docker API's JSON through
``servin.engine.semantics``, CRI statuses); everything in them comes from the core's model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from servin.engine.containers.model import Container, ContainerPaths, Mount
from servin.engine.networks.model import Endpoint, Network


@dataclass(frozen=True)
class Created:
    """A new container, and what docker warns about it (it is made all the same)."""

    container: Container
    warnings: list[str]


@dataclass(frozen=True)
class ContainerListing:
    """One row of a container list."""

    container: Container
    command: list[str]  # entrypoint + cmd as it runs (the image's when the container has none)
    networks: list[str]  # names of the networks it has an endpoint on
    size_rw: int | None = None  # bytes in the writable layer (asked for with ``size``)
    size_root_fs: int | None = None  # writable layer + image
    version: int = 0  # the container's version in the in-memory view (see cache.py)


@dataclass(frozen=True)
class NetworkAttachment:
    """A container's endpoint on one network, with the network."""

    network: Network
    endpoint: Endpoint
    active: bool  # the container runs: the address is configured on a link


@dataclass(frozen=True)
class ContainerDetails:
    """Everything ``inspect`` shows of a container."""

    container: Container
    image: dict[str, Any]  # the image's config section (Env, Cmd, Labels, ...)
    path: str  # the process's program and its arguments (from the bundle once started)
    args: list[str]
    paths: ContainerPaths
    networks: list[NetworkAttachment]
    # The resolved mounts, each volume's ``source`` replaced by the host directory holding
    # its data (as docker's inspect shows it).
    mounts: list[Mount]
    exec_ids: list[str] = field(default_factory=list)
    driver: str = ""  # the storage driver
    size_rw: int | None = None
    size_root_fs: int | None = None
