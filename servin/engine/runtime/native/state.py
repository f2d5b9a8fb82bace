"""The native runtime's on-disk state: one directory per container under the state root.

``<state-root>/<id>/state.json`` records what ``state``, ``kill`` and ``delete`` need after
the creating process is gone (the daemon restarted, or another process asks). The init's
start time is stored with its PID so a recycled PID is never mistaken for the container.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from servin.errors import InvalidArgument, NotFound

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
STATE_FILE = "state.json"
START_SOCKET = "start.sock"


@dataclass
class RecordedState:
    """What the runtime remembers about one container."""

    id: str
    pid: int
    start_time: int  # field 22 of /proc/PID/stat: identifies this process among PID reuses
    bundle: str
    rootfs: str
    created: float
    cgroups_path: str | None
    own_pid_namespace: bool
    started: bool = False


def check_id(container_id: str) -> None:
    """Refuse ids that could escape the state root or confuse a path."""
    if not _ID.match(container_id):
        raise InvalidArgument(f"invalid container id {container_id!r}")


def write_state(directory: Path, state: RecordedState) -> None:
    """Write state.json atomically (a reader never sees half a file)."""
    tmp = directory / (STATE_FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as file:
        json.dump(asdict(state), file)
    os.replace(tmp, directory / STATE_FILE)


def read_state(directory: Path, container_id: str) -> RecordedState:
    """Read a container's state; NotFound when the runtime does not know it."""
    try:
        with open(directory / STATE_FILE, encoding="utf-8") as file:
            raw = json.load(file)
    except FileNotFoundError:
        raise NotFound(f"container {container_id} does not exist") from None
    return RecordedState(**raw)


def process_start_time(pid: int) -> int | None:
    """The start time of ``pid`` (clock ticks since boot), or None if it no longer runs.

    A zombie counts as not running: it has exited and only waits to be reaped.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            data = file.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its end.
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def is_alive(state: RecordedState) -> bool:
    """Whether the recorded init still runs (same PID and same start time)."""
    return process_start_time(state.pid) == state.start_time
