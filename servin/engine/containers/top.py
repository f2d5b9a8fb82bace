"""``top``: a container's processes as the host's ``ps`` shows them.

The host's ``ps`` runs with the caller's options (``-ef`` by default) and only the rows whose
PID is in the container's cgroup are kept, so the columns are whatever those options ask for.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from servin.engine.containers.model import Container
from servin.engine.containers.stats import cgroup_path_of
from servin.engine.linux.cgroups import CgroupDriver, detect_driver
from servin.errors import Conflict, InvalidArgument, Unavailable

DEFAULT_PS_ARGS = ("-ef",)
PS_TIMEOUT = 20.0
# Wide enough that ps never truncates a command line.
PS_COLUMNS = 131072


@dataclass(frozen=True)
class TopResult:
    """The ``ps`` header and the container's rows, split into columns."""

    titles: list[str]
    processes: list[list[str]]


def run_ps(args: Sequence[str]) -> str:
    """The output of the host's ``ps ARGS``; InvalidArgument with its complaint on failure."""
    binary = shutil.which("ps")
    if binary is None:
        raise Unavailable("ps is not installed on the daemon's host")
    try:
        proc = subprocess.run(
            [binary, *args],
            capture_output=True,
            timeout=PS_TIMEOUT,
            stdin=subprocess.DEVNULL,
            # A COLUMNS the daemon inherited would cut the command column short.
            env={**os.environ, "COLUMNS": str(PS_COLUMNS)},
        )
    except subprocess.TimeoutExpired:
        raise Unavailable(f"ps {' '.join(args)} did not answer in {PS_TIMEOUT:g}s") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.decode(errors="replace").splitlines()]
        reason = next((ln for ln in lines if ln), f"exit status {proc.returncode}")
        raise InvalidArgument(f"ps {' '.join(args)} failed: {reason}")
    return proc.stdout.decode(errors="replace")


def filter_ps_output(output: str, pids: Iterable[int]) -> TopResult:
    """Keep the header and the rows of ``output`` whose PID column is one of ``pids``.

    The last column (the command) may contain spaces; the others may not.
    """
    lines = [ln for ln in output.splitlines() if ln.strip()]
    if not lines:
        raise InvalidArgument("ps printed nothing")
    titles = lines[0].split()
    try:
        pid_column = titles.index("PID")
    except ValueError:
        raise InvalidArgument(
            "ps output has no PID column: include pid in the ps options"
        ) from None
    wanted = set(pids)
    rows: list[list[str]] = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) <= pid_column:
            continue
        try:
            pid = int(fields[pid_column])
        except ValueError:
            continue
        if pid in wanted:
            rows.append(fields)
    return TopResult(titles, rows)


def top(pids: Iterable[int], ps_args: Sequence[str]) -> TopResult:
    """The container's processes (``pids``, from its cgroup) as ``ps ps_args`` shows them.

    Blocking: run it in a worker thread.
    """
    args = list(ps_args) or list(DEFAULT_PS_ARGS)
    return filter_ps_output(run_ps(args), pids)


def container_top(
    c: Container,
    bundle_config: Path,
    ps_args: Sequence[str],
    driver: CgroupDriver | None = None,
) -> TopResult:
    """``top`` for container ``c`` (its bundle's config.json names its cgroup). Blocking."""
    if not c.state.running or not c.state.pid:
        raise Conflict(f"container {c.id} is not running")
    cgroup = (driver or detect_driver()).open(cgroup_path_of(bundle_config, c.id))
    return top(cgroup.pids(), ps_args)
