"""Unix sockets of the front doors: a stale socket file is replaced, a live one refused, and
the bound socket gets mode 0660 and the daemon's group."""

from __future__ import annotations

import grp
import os
import socket
from pathlib import Path

from servin.errors import Conflict, InvalidArgument

SOCKET_MODE = 0o660


def _socket_in_use(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        try:
            s.connect(str(path))
        except OSError:
            return False
        return True


def prepare_unix_socket(path: Path) -> None:
    """Make the socket's directory and remove a stale socket file; refuse a live one."""
    if len(str(path)) > 107:
        raise InvalidArgument(f"socket path {path} is longer than 107 bytes")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o711)
    if path.exists() or path.is_symlink():
        if _socket_in_use(path):
            raise Conflict(f"socket {path} is in use by another daemon")
        path.unlink()


def secure_unix_socket(path: Path, group: str) -> None:
    """Mode 0660, owned by ``group`` when that group exists."""
    os.chmod(path, SOCKET_MODE)
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        return
    os.chown(path, -1, gid)
