"""What a build is asked to do: the options every front door maps its request onto."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Secret:
    """A secret for ``RUN --mount=type=secret,id=ID`` (never stored, never in a cache key)."""

    id: str
    data: bytes

    def __repr__(self) -> str:  # keep the data out of logs and tracebacks
        return f"Secret(id={self.id!r}, data=<{len(self.data)} bytes>)"


@dataclass(frozen=True)
class Limits:
    """Resource limits of every RUN step's container (0 / "" / () for none)."""

    memory: int = 0
    memory_swap: int = 0
    cpu_shares: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    shm_size: int = 0
    ulimits: tuple[tuple[str, int, int], ...] = ()  # (name, soft, hard)


@dataclass(frozen=True)
class BuildOptions:
    """One build's options (docker's ``build`` flags)."""

    dockerfile: bytes = b""  # the Dockerfile's text; empty: read dockerfile_path from the context
    dockerfile_path: str = ""  # in the context (default "Dockerfile")
    tags: tuple[str, ...] = ()
    build_args: tuple[tuple[str, str], ...] = ()
    target: str = ""  # the stage to build (default: the last)
    no_cache: bool = False
    pull: bool = False  # pull every base image even when it is local
    cache_from: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    platform: str = ""  # os/arch[/variant]; empty: this machine's
    network: str = ""  # of RUN steps: "default", "none", "host" or a network's name
    extra_hosts: tuple[str, ...] = ()  # host:ip
    secrets: tuple[Secret, ...] = ()
    limits: Limits = field(default_factory=Limits)
    output: str = ""  # "" records an image; "tar" streams the result's files back
    context_trimmed: bool = False  # the client sent only the files the Dockerfile reads
    dockerignore: tuple[str, ...] = ()  # the patterns the client applied already

    @property
    def name(self) -> str:
        """How events and logs name the build: its first tag, else ``""``."""
        return self.tags[0] if self.tags else ""
