"""Volume records in the metadata store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from servin.engine.store.metadata import MetadataStore
from servin.engine.volumes.model import Volume
from servin.errors import NotFound

_COLUMNS = "name, driver, created_ns, labels, options, anonymous"


class VolumeStore:
    """Queries and updates of volume records; ``mountpoint`` is derived from ``root``."""

    def __init__(self, meta: MetadataStore, root: Path) -> None:
        self.meta = meta
        self.root = root

    def _volume(self, row: Any) -> Volume:
        return Volume(
            name=row["name"],
            driver=row["driver"],
            created_ns=row["created_ns"],
            mountpoint=str(self.root / row["name"] / "_data"),
            labels=json.loads(row["labels"]),
            options=json.loads(row["options"]),
            anonymous=bool(row["anonymous"]),
        )

    def add(self, v: Volume) -> None:
        """Record a new volume."""
        with self.meta.transaction() as db:
            db.execute(
                f"INSERT INTO volumes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (v.name, v.driver, v.created_ns, json.dumps(v.labels), json.dumps(v.options),
                 int(v.anonymous)),
            )

    def find(self, name: str) -> Volume | None:
        """A volume by name, or None."""
        row = self.meta.query_one(f"SELECT {_COLUMNS} FROM volumes WHERE name = ?", (name,))
        return self._volume(row) if row is not None else None

    def get(self, name: str) -> Volume:
        """A volume by name; NotFound otherwise."""
        found = self.find(name)
        if found is None:
            raise NotFound(f"get {name}: no such volume")
        return found

    def list(self) -> list[Volume]:
        """Every volume, by name."""
        rows = self.meta.query(f"SELECT {_COLUMNS} FROM volumes ORDER BY name")
        return [self._volume(r) for r in rows]

    def delete(self, name: str) -> None:
        """Forget a volume."""
        with self.meta.transaction() as db:
            db.execute("DELETE FROM volumes WHERE name = ?", (name,))
