"""Switching a process's user and groups, with errors that name the ids involved."""

from __future__ import annotations

import os
from collections.abc import Sequence


def set_groups(gids: Sequence[int]) -> None:
    """setgroups(2): make ``gids`` the supplementary groups (empty clears them)."""
    try:
        os.setgroups(list(gids))
    except OSError as exc:
        raise OSError(exc.errno, f"setgroups {list(gids)}: {os.strerror(exc.errno or 0)}") from None


def set_ids(uid: int, gid: int) -> None:
    """Set real, effective and saved gid then uid (gid first: afterwards it may not be allowed)."""
    try:
        os.setresgid(gid, gid, gid)
    except OSError as exc:
        raise OSError(exc.errno, f"setresgid {gid}: {os.strerror(exc.errno or 0)}") from None
    try:
        os.setresuid(uid, uid, uid)
    except OSError as exc:
        raise OSError(exc.errno, f"setresuid {uid}: {os.strerror(exc.errno or 0)}") from None
