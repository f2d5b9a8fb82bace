"""The engine's one Container model; servin.v1, CRI and the Docker API translate onto it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from servin.api.servin.v1 import containers_pb2

# Docker's container states.
CREATED = "created"
RUNNING = "running"
PAUSED = "paused"
RESTARTING = "restarting"
REMOVING = "removing"
EXITED = "exited"
DEAD = "dead"
ACTIVE = frozenset({RUNNING, PAUSED, RESTARTING})


@dataclass
class ContainerState:
    """What the container is doing now; persisted as JSON."""

    status: str = CREATED
    pid: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    error: str = ""
    started_at_ns: int = 0
    finished_at_ns: int = 0
    restart_count: int = 0
    monitor_pid: int = 0
    rootfs_mounted: bool = False
    # Set by a user's stop or kill, cleared by start: restart policies hold off meanwhile.
    manually_stopped: bool = False
    health_status: str = ""  # "", starting, healthy, unhealthy
    failing_streak: int = 0
    # The last health probes: {"start_ns", "end_ns", "exit_code", "output"}.
    health_log: list[dict[str, Any]] = field(default_factory=list)
    # Host ports published while running: {"container_port", "protocol", "host_ip", "host_port"}.
    ports: list[dict[str, Any]] = field(default_factory=list)
    # Durable intents, so the start after a crash knows what was half done: a create not yet
    # whole (removed), a freeze made by commit (thawed).
    creating: bool = False
    frozen_by_commit: bool = False

    def to_json(self) -> str:
        """The state as stored."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ContainerState:
        """Parse a stored state, ignoring fields a newer Servin may have added."""
        data: dict[str, Any] = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def running(self) -> bool:
        """Whether a process is alive (running or paused)."""
        return self.status in ACTIVE


@dataclass
class Container:
    """One container."""

    id: str
    name: str
    image_ref: str
    image_id: str
    spec: containers_pb2.ContainerSpec
    created_ns: int
    state: ContainerState = field(default_factory=ContainerState)
    snapshot_chain: str = ""

    @property
    def short_id(self) -> str:
        """The 12-digit form docker prints."""
        return self.id[:12]

    @property
    def runtime(self) -> str:
        """The OCI runtime that runs it."""
        return self.spec.runtime or "native"


@dataclass(frozen=True)
class ContainerPaths:
    """Where a container's files live."""

    dir: Path  # persistent: bundle (config.json), etc files, logs
    state_dir: Path  # volatile: the monitor's socket, pid and exit record
    rootfs: Path  # the mounted root filesystem

    @classmethod
    def of(cls, root: Path, exec_root: Path, container_id: str) -> ContainerPaths:
        """The paths of a container under the daemon's roots."""
        state_dir = exec_root / "containers" / container_id
        return cls(root / "containers" / container_id, state_dir, state_dir / "rootfs")

    @property
    def log_path(self) -> Path:
        """The json-file log (Docker's name for it)."""
        return self.dir / f"{self.dir.name}-json.log"

    @property
    def etc_files(self) -> dict[str, Path]:
        """The per-container /etc files bind-mounted into the rootfs."""
        return {
            "/etc/hostname": self.dir / "hostname",
            "/etc/hosts": self.dir / "hosts",
            "/etc/resolv.conf": self.dir / "resolv.conf",
        }
