"""Bytes and inodes a directory tree takes on disk (the CRI's filesystem figures)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class FilesystemUsage:
    """What a tree uses on its filesystem."""

    mountpoint: str  # the tree's root directory
    used_bytes: int  # blocks allocated to it (directories included)
    inodes_used: int  # files and directories in it (itself included)
    timestamp_ns: int  # when it was measured


def measure(root: str) -> FilesystemUsage:
    """Walk ``root`` without following links (blocking); a missing tree measures 0."""
    used = inodes = 0
    try:
        st = os.lstat(root)
        used, inodes = st.st_blocks * 512, 1
    except OSError:
        return FilesystemUsage(root, 0, 0, time.time_ns())
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            inodes += 1
            used += st.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
    return FilesystemUsage(root, used, inodes, time.time_ns())
