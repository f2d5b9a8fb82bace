"""The build cache: each step's resulting state, by the digest of everything it depends on.

Entries live in the metadata store's ``build_cache`` table (migration 5), so they survive
daemon restarts. An entry names the layer blobs its state uses and its top layer's chain
ID: the garbage collector keeps those (``roots``) until the entry is pruned. Keys are made
by ``Key``: a step's key is the digest of its parent state's key and what the step reads
(the instruction after substitution, RUN's environment and mounts, COPY's file contents).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from servin.engine.build.state import State


class Database(Protocol):
    """What the cache needs of the metadata store."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]: ...

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...


class Key:
    """Builds a cache key: feed it the parts, read ``digest``."""

    def __init__(self, kind: str, parent: str = "") -> None:
        self._hash = hashlib.sha256()
        self.add("servin-build-v1", kind, parent)

    def add(self, *parts: object) -> Key:
        """Add parts (strings, numbers, lists, dicts: as JSON, so boundaries are kept)."""
        for part in parts:
            data = json.dumps(part, sort_keys=True, separators=(",", ":")).encode()
            self._hash.update(len(data).to_bytes(8, "big"))
            self._hash.update(data)
        return self

    @property
    def digest(self) -> str:
        """The key (64 hex digits)."""
        return self._hash.hexdigest()


@dataclass(frozen=True)
class PruneReport:
    """What ``prune`` dropped."""

    entries: int
    reclaimed: int  # bytes the garbage collection then freed


@dataclass(frozen=True)
class Entry:
    """One cache entry (for listings and ``roots``)."""

    key: str
    description: str
    size: int
    created_ns: int
    last_used_ns: int


class BuildCache:
    """The ``build_cache`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, key: str) -> State | None:
        """The state stored under ``key``, or None (``touch`` records its use)."""
        rows = self.db.query("SELECT state FROM build_cache WHERE key = ?", (key,))
        if not rows:
            return None
        return State.from_json(rows[0]["state"], key)

    def touch(self, keys: list[str]) -> None:
        """Record that entries were used now (one transaction for a build's hits)."""
        if not keys:
            return
        now = time.time_ns()
        with self.db.transaction() as db:
            db.executemany("UPDATE build_cache SET last_used_ns = ? WHERE key = ?",
                           [(now, key) for key in keys])

    def put(self, key: str, state: State, *, description: str, chain: str, size: int) -> None:
        """Store (or replace) the state reached under ``key``."""
        now = time.time_ns()
        blobs = json.dumps(sorted({layer.blob for layer in state.layers}))
        with self.db.transaction() as db:
            db.execute(
                "INSERT INTO build_cache (key, state, blobs, chain, description, size, "
                "created_ns, last_used_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET state = excluded.state, blobs = excluded.blobs, "
                "chain = excluded.chain, description = excluded.description, "
                "size = excluded.size, last_used_ns = excluded.last_used_ns",
                (key, state.to_json(), blobs, chain, description[:500], size, now, now))

    def drop(self, key: str) -> None:
        """Forget one entry (its layers went missing)."""
        with self.db.transaction() as db:
            db.execute("DELETE FROM build_cache WHERE key = ?", (key,))

    def entries(self) -> Iterator[Entry]:
        """Every entry, oldest first."""
        for row in self.db.query("SELECT key, description, size, created_ns, last_used_ns "
                                 "FROM build_cache ORDER BY created_ns"):
            yield Entry(row["key"], row["description"], row["size"], row["created_ns"],
                        row["last_used_ns"])

    def prune(self, unused_for_ns: int = 0) -> int:
        """Drop every entry (``unused_for_ns`` 0) or those unused for that long; return how
        many went. The caller collects garbage afterwards."""
        with self.db.transaction() as db:
            if unused_for_ns > 0:
                cursor = db.execute("DELETE FROM build_cache WHERE last_used_ns < ?",
                                    (time.time_ns() - unused_for_ns,))
            else:
                cursor = db.execute("DELETE FROM build_cache")
            return int(cursor.rowcount)

    def usage(self) -> tuple[int, int]:
        """(entries, bytes of the entries' own layers)."""
        rows = self.db.query("SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes "
                             "FROM build_cache")
        return int(rows[0]["n"]), int(rows[0]["bytes"])

    def roots(self) -> tuple[set[str], set[str]]:
        """(blob digests, chain IDs) every entry uses: garbage-collection roots."""
        blobs: set[str] = set()
        chains: set[str] = set()
        for row in self.db.query("SELECT blobs, chain FROM build_cache"):
            blobs.update(json.loads(row["blobs"]))
            if row["chain"]:
                chains.add(row["chain"])
        return blobs, chains
