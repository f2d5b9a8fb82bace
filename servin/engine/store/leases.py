"""Leases: what an operation in progress holds, so garbage collection leaves it alone.

An import, load or pull writes blobs and unpacks layers before any image record points at
them; a container create unpacks layers before its snapshot records them. Between those
moments nothing on disk says the new things are wanted, and a garbage collection running
then would delete them. Each such operation therefore opens a lease and names in it every
blob digest and layer chain ID it is about to write or reuse; the collector keeps whatever
any open lease names.

The contract (both sides hold ``LeaseManager.lock`` for their step):

- An operation adds a digest (or chain) to its lease *before* it checks whether the thing
  exists or writes it. Then either the collector already deleted it (the operation sees it
  missing and writes it again) or the collector sees the lease and keeps it.
- The collector decides and unpublishes under the lock, reading leases and then the image
  and container records; an operation records its image *before* it closes its lease, so
  something leased a moment ago is by then referenced by a record the collector reads.

Leases live in memory: they belong to operations of this daemon process, and at start (when
no operation runs) the repair collects everything no record references. Blobs still being
written sit in ``content/ingest/``, which the collector never looks at.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Lease:
    """The blobs and layers one operation holds."""

    id: int
    purpose: str
    manager: LeaseManager
    blobs: set[str] = field(default_factory=set)
    chains: set[str] = field(default_factory=set)

    def add_blob(self, digest: str) -> None:
        """Hold a blob (call before checking that it exists or writing it)."""
        with self.manager.lock:
            self.blobs.add(digest)

    def add_chain(self, chain: str) -> None:
        """Hold an unpacked layer by chain ID (call before ensuring it)."""
        with self.manager.lock:
            self.chains.add(chain)


class LeaseManager:
    """The open leases of this process."""

    def __init__(self) -> None:
        # Held by lease updates (short) and by the collector while it decides and unpublishes.
        self.lock = threading.RLock()
        self._leases: dict[int, Lease] = {}
        self._ids = itertools.count(1)

    @contextmanager
    def lease(self, purpose: str) -> Iterator[Lease]:
        """Open a lease for the ``with`` block; it is released however the block ends."""
        with self.lock:
            held = Lease(next(self._ids), purpose, self)
            self._leases[held.id] = held
        try:
            yield held
        finally:
            with self.lock:
                self._leases.pop(held.id, None)

    def held_blobs(self) -> set[str]:
        """Every blob some open lease holds (call with ``lock`` held for a stable answer)."""
        with self.lock:
            return set().union(*(lease.blobs for lease in self._leases.values()))

    def held_chains(self) -> set[str]:
        """Every layer chain some open lease holds."""
        with self.lock:
            return set().union(*(lease.chains for lease in self._leases.values()))

    def open_leases(self) -> list[str]:
        """The purposes of the open leases (for logs and tests)."""
        with self.lock:
            return [lease.purpose for lease in self._leases.values()]
