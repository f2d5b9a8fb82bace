"""The metadata store: one SQLite database in WAL mode with versioned migrations.

All engine metadata (images, containers, volumes, networks, pods, IPAM) lives here. Writes are
serialised through one connection guarded by a lock; callers run store calls in worker
threads (``asyncio.to_thread``) so the event loop never waits on disk.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from servin.engine.permissions import create_private_file
from servin.engine.store.migrations import MIGRATIONS


class MetadataStore:
    """A thread-safe wrapper around the engine's SQLite database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # SQLite creates the file 0644 and its -wal/-shm with the file's mode: make it 0600
        # first, so the WAL (every container's env) is never readable by others.
        create_private_file(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()

    @property
    def schema_version(self) -> int:
        """The schema version the database is at."""
        row = self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def _migrate(self) -> None:
        with self._lock:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            )
            current = self.schema_version
            if current > len(MIGRATIONS):
                raise RuntimeError(
                    f"{self.path} has schema version {current}, newer than this Servin "
                    f"({len(MIGRATIONS)}): upgrade Servin"
                )
            for version, step in enumerate(MIGRATIONS[current:], start=current + 1):
                with self.transaction() as db:
                    if callable(step):
                        step(db)
                    else:
                        for statement in _split_sql(step):
                            db.execute(statement)
                    db.execute("INSERT INTO schema_version(version) VALUES (?)", (version,))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed on success, rolled back on any exception."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def serialized(self) -> Iterator[None]:
        """Hold the store's lock across a transaction and what must follow its commit in the
        same order as the commits (an in-memory view of the rows); transactions nest inside."""
        with self._lock:
            yield

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a read query and return all rows."""
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        """Run a read query and return its first row, or None."""
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, params).fetchone()
            return row

    def close(self) -> None:
        """Checkpoint the WAL and close the database."""
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._db.close()


def _split_sql(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
