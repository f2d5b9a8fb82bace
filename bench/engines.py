"""The engines under test, driven through their command lines.

Servin, docker and podman share docker's command grammar (``run --rm``, ``ps -a``, ``logs``),
so one ``CliEngine`` drives each: only the argv prefix and environment differ.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.measure import run, time_command

# Every engine runs its containers without a network (``--network none``): the benchmarks
# compare the engines' own work, not bridge setup, and leave the host's networking untouched.
NO_NET = ("--network", "none")


@dataclass
class CliEngine:
    """One engine's CLI: ``argv`` is the prefix (binary and global flags)."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    image: str = "busybox"

    def cmd(self, *args: str) -> list[str]:
        return [*self.argv, *args]

    def run(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
        """Run ``ENGINE ARGS`` (it must succeed)."""
        return run(self.cmd(*args), env=self.env, **kw)

    def output(self, *args: str, **kw: Any) -> str:
        """Stdout of ``ENGINE ARGS`` (it must succeed)."""
        return self.run(*args, stdout=subprocess.PIPE, **kw).stdout.decode()

    def time(self, *args: str, **kw: Any) -> float:
        """Seconds ``ENGINE ARGS`` took."""
        return time_command(self.cmd(*args), env=self.env, **kw)

    def run_rm(self, *command: str) -> float:
        """Seconds ``run --rm --network none busybox COMMAND`` took."""
        return self.time("run", "--rm", *NO_NET, self.image, *command)

    def run_detached(self, name: str, *command: str, extra: Sequence[str] = ()) -> str:
        """Start ``busybox COMMAND`` in the background; returns the container ID."""
        out = self.output("run", "-d", "--name", name, *NO_NET, *extra, self.image, *command)
        return out.strip().splitlines()[-1]

    def remove_all(self) -> None:
        """Force-remove every container of this engine."""
        ids = self.output("ps", "-aq").split()
        for start in range(0, len(ids), 200):
            self.run("rm", "-f", *ids[start : start + 200], timeout=900)


def servin_command() -> list[str]:
    """How a user runs ``servin``: the installed script next to this Python (``python -m
    servin`` when there is none, e.g. a source checkout without an install)."""
    script = os.path.join(os.path.dirname(sys.executable), "servin")
    if os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-m", "servin"]


def servin_engine(host: str) -> CliEngine:
    """The ``servin`` CLI (the installed script) against the daemon at ``host``."""
    env = dict(os.environ)
    env.pop("SERVIN_HOST", None)  # the daemon is named explicitly
    return CliEngine("servin", [*servin_command(), "-H", host], env)
