"""Samples and their summary (median, min-max spread), and a timer."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Measure:
    """Samples of one quantity in one unit (``ms``, ``MB``, ``s``, ``%``...)."""

    unit: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    def add(self, value: float) -> None:
        self.samples.append(value)

    def to_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "median": self.median if self.samples else None,
            "min": self.low if self.samples else None,
            "max": self.high if self.samples else None,
            "samples": self.samples,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measure:
        return cls(data["unit"], list(data["samples"]))


class CommandFailed(RuntimeError):
    """A benchmarked command exited non-zero: its first error line says why."""


def first_line(text: str) -> str:
    """The first non-empty line of ``text`` (for one-line error notes)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def run(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    stdout: Any = subprocess.DEVNULL,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run a command; raise CommandFailed with its error line when it fails."""
    proc = subprocess.run(
        list(argv),
        env=env,
        timeout=timeout,
        stdout=stdout,
        stderr=subprocess.PIPE,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        err = first_line(proc.stderr.decode(errors="replace"))
        raise CommandFailed(f"{' '.join(argv[:6])}... exited {proc.returncode}: {err}")
    return proc


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn()`` took (wall clock, monotonic)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_command(argv: Sequence[str], *, env: dict[str, str] | None = None, **kw: Any) -> float:
    """Seconds a command took to run to completion (it must succeed)."""
    return timed(lambda: run(argv, env=env, **kw))
