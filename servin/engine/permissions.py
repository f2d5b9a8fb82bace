"""Modes of the daemon's own files: nothing in its roots is reachable for other users.

The database (its WAL holds every container's environment, secrets included), container
bundles and logs, image content, unpacked layers and volume data all live under the root. A
local user who can traverse into a volume's ``_data`` can open a device node a container made
there (``mknod``, ``chmod 666``), so the root itself is closed to other users (0710, as docker
keeps its own) and every directory below that holds data is private (0700) too, in case the
root is ever opened up by hand.

``secure_roots`` runs at every start (before the database is opened, and again once every
service made its directories): whatever is wider than the table allows is narrowed, with a
warning naming it. Code that creates these paths uses the same modes, so a fresh root needs no
repair.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# The root: owner full, group may traverse (docker's 0710), others nothing.
ROOT_MODE = 0o710
# The exec root holds the API socket (0660, group servin): others may traverse to it, no more.
EXEC_ROOT_MODE = 0o711
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

DB_FILES = ("servin.db", "servin.db-wal", "servin.db-shm")
# Directories directly under the root that hold data (images, containers, volumes).
ROOT_DATA_DIRS = ("content", "snapshots", "containers", "volumes")
ROOT_PRIVATE_FILES = (*DB_FILES, "engine-id", "servin.lock")
# Directories under the exec root: container state (and mounted root filesystems), the
# monitor zygote, the runtimes' state.
EXEC_DATA_DIRS = ("containers", "monitor", "runtime")


@dataclass(frozen=True)
class Repair:
    """One path whose mode was narrowed."""

    path: Path
    old: int
    new: int


def _narrow(path: Path, allowed: int, repairs: list[Repair]) -> None:
    """Take away every permission bit of ``path`` outside ``allowed`` (never follows links)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        return
    old = stat.S_IMODE(st.st_mode)
    new = old & allowed
    if new == old:
        return
    os.chmod(path, new)
    repairs.append(Repair(path, old, new))


def _children(directory: Path) -> list[Path]:
    try:
        with os.scandir(directory) as it:
            return [Path(e.path) for e in it if e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []


def secure_roots(root: Path, exec_root: Path | None = None) -> list[Repair]:
    """Narrow every mode of the daemon's roots that is wider than allowed; log each repair.

    Returns what was repaired (empty for a root Servin created itself).
    """
    repairs: list[Repair] = []
    _narrow(root, ROOT_MODE, repairs)
    for name in ROOT_PRIVATE_FILES:
        _narrow(root / name, PRIVATE_FILE, repairs)
    for name in ROOT_DATA_DIRS:
        _narrow(root / name, PRIVATE_DIR, repairs)
    # One private directory per volume and per container (a volume's _data keeps its own mode:
    # it is the volume's root inside containers).
    for parent in (root / "volumes", root / "containers"):
        for child in _children(parent):
            _narrow(child, PRIVATE_DIR, repairs)
    if exec_root is not None:
        _narrow(exec_root, EXEC_ROOT_MODE, repairs)
        for name in EXEC_DATA_DIRS:
            _narrow(exec_root / name, PRIVATE_DIR, repairs)
        for child in _children(exec_root / "containers"):
            _narrow(child, PRIVATE_DIR, repairs)
    for r in repairs:
        log.warning(
            "narrowed the mode of a path other users could reach",
            extra={"path": str(r.path), "old": f"{r.old:04o}", "new": f"{r.new:04o}"},
        )
    return repairs


def create_private_file(path: Path) -> None:
    """Create ``path`` (mode 0600) if it does not exist, so a library that creates it with
    its own default mode (SQLite: 0644) finds it private already."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, PRIVATE_FILE)
    os.close(fd)
