"""Where the snapshotter keeps things on disk, and the small atomic operations on them.

```
<root>/                     (the engine passes <root>/snapshots)
  layers/<n>/fs/            layer n unpacked in overlay lower form (whiteouts, opaque xattrs)
  layers/<n>/info.json      {"chain", "parent", "diff_id", "blob", "size"}
  chains/<chain hex>        symlink -> "<n>": the index, and the mark that layer n is complete
  containers/<key>/         info.json {"driver", "parent", "chains", "mounts"}
                            overlay: upper/ and work/; copy: fs/ (the whole rootfs)
  tmp/                      layers being unpacked, things being deleted (emptied by repair)
  locks/<chain hex>         flock files: one unpack per chain across processes
  empty/                    the lower of a container without image layers
```

Layer directories get short numbers so that overlay's ``lowerdir=`` list stays within the
one page the kernel accepts as mount data.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servin.errors import InvalidArgument

_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_key(key: str) -> str:
    """Return ``key`` if it can name a container snapshot, else raise InvalidArgument."""
    if not _KEY_RE.match(key):
        raise InvalidArgument(f"invalid snapshot key {key!r}")
    return key


@dataclass(frozen=True)
class Layout:
    """The snapshotter's paths under ``root``."""

    root: Path

    @property
    def layers(self) -> Path:
        return self.root / "layers"

    @property
    def chains(self) -> Path:
        return self.root / "chains"

    @property
    def containers(self) -> Path:
        return self.root / "containers"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    @property
    def empty(self) -> Path:
        return self.root / "empty"

    def create(self) -> None:
        """Make the directory skeleton (idempotent)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        for d in (self.layers, self.chains, self.containers, self.tmp, self.locks, self.empty):
            d.mkdir(exist_ok=True, mode=0o700)
        self.empty.chmod(0o755)

    def layer_dir(self, number: int) -> Path:
        return self.layers / str(number)

    def layer_fs(self, number: int) -> Path:
        return self.layers / str(number) / "fs"

    def chain_link(self, chain: str) -> Path:
        return self.chains / chain.removeprefix("sha256:")

    def lock_file(self, chain: str) -> Path:
        return self.locks / chain.removeprefix("sha256:")

    def container_dir(self, key: str) -> Path:
        return self.containers / check_key(key)

    def scratch(self, prefix: str) -> Path:
        """A fresh, not yet existing path in tmp/ (removed by repair if left behind)."""
        return self.tmp / f"{prefix}-{uuid.uuid4().hex[:16]}"

    # -- the chain index ------------------------------------------------------------------

    def read_index(self, chain: str) -> int | None:
        """The layer number a chain is committed as, or None."""
        try:
            target = os.readlink(self.chain_link(chain))
        except FileNotFoundError:
            return None
        return int(target) if target.isdigit() else None

    def write_index(self, chain: str, number: int) -> None:
        """Publish ``chain -> number``; symlink(2) is atomic, so it is there whole or not at all."""
        link = self.chain_link(chain)
        with contextlib.suppress(FileNotFoundError):
            link.unlink()  # a dangling entry whose layer is gone
        os.symlink(str(number), link)
        fsync_dir(self.chains)

    def indexed_chains(self) -> Iterator[tuple[str, int | None]]:
        """Every (chain, number) in the index; number is None for a malformed entry."""
        for entry in os.scandir(self.chains):
            try:
                target = os.readlink(entry.path)
            except OSError:
                target = ""
            yield "sha256:" + entry.name, int(target) if target.isdigit() else None


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file."""
    with open(path, "rb") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def write_json(path: Path, data: dict[str, Any], *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, rename); ``durable`` also fsyncs
    the file before and its directory after the rename (survives a power cut)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    with open(tmp, "x") as f:
        json.dump(data, f, separators=(",", ":"))
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.rename(tmp, path)
    if durable:
        fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename or link inside it is durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class NamedLocks:
    """One threading lock per name, made on first use."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def get(self, name: str) -> threading.Lock:
        """The lock for ``name``."""
        with self._guard:
            lock = self._locks.get(name)
            if lock is None:
                lock = self._locks[name] = threading.Lock()
            return lock


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (created if needed).

    The file may be unlinked by whoever holds it (when its layer is removed); a waiter that
    then gets the lock on the unlinked inode notices the path moved on and tries again.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)
